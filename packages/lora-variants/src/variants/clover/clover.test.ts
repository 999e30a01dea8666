import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { cloverVariant } from './variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeFamilyVariant, randn } from '../helpers/family-testing.js';

// Per weight (no coupled groups): [12, 16] in 3 row blocks, d = 4, k = min(4, 16) = 4.
describeFamilyVariant({
  name: 'clover',
  config: { heads: 3 },
  closedForm: () => 3 * 4,
  referenceDelta: (state) => {
    const s = state as IndexedAdapterState;
    const u = s.params.clover_U!.data;
    const v = s.params.clover_V!.data;
    const dl = s.params.clover_delta!.data;
    const out = new Float64Array(12 * 16);
    for (let h = 0; h < 3; h++) for (let i = 0; i < 4; i++) for (let j = 0; j < 16; j++) {
      let acc = 0;
      for (let t = 0; t < 4; t++) acc += u[(h * 4 + i) * 4 + t]! * dl[h * 4 + t]! * v[(h * 4 + t) * 16 + j]!;
      out[(s.indices.starts![h]! + i) * 16 + j] = acc;
    }
    return out;
  },
  badConfigs: [[{ heads: 0 }, /heads/], [{ coupled: 'yes' }, /coupled/]],
  perturbStd: 1,
});

describe('clover per weight', () => {
  it('each head is orthonormalized over its full spectrum: δ = −σ zeroes W, δ = σ doubles it', () => {
    const base = randn(new Random(2), [6, 5]);
    const s = cloverVariant.init(base, { heads: 2 }, new Random(1));
    expect(s.params.clover_U!.shape).toEqual([2, 3, 3]);
    expect(Array.from(s.indices.starts!)).toEqual([0, 3]);
    const u = s.params.clover_U!.data;
    const v = s.params.clover_V!.data;
    for (let h = 0; h < 2; h++) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) {
      let uu = 0;
      let vv = 0;
      for (let i = 0; i < 3; i++) uu += u[h * 9 + i * 3 + a]! * u[h * 9 + i * 3 + b]!;
      for (let j = 0; j < 5; j++) vv += v[h * 15 + a * 5 + j]! * v[h * 15 + b * 5 + j]!;
      expect(uu).toBeCloseTo(a === b ? 1 : 0, 5);
      expect(vv).toBeCloseTo(a === b ? 1 : 0, 5);
    }
    // σ_h from Uᵀ W V: set δ = σ and ΔW must equal W (the head's full reconstruction).
    for (let h = 0; h < 2; h++) for (let t = 0; t < 3; t++) {
      let sig = 0;
      for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) sig += u[h * 9 + i * 3 + t]! * base.data[(h * 3 + i) * 5 + j]! * v[h * 15 + t * 5 + j]!;
      expect(sig).toBeGreaterThanOrEqual(-1e-6);
      s.params.clover_delta!.data[h * 3 + t] = sig;
    }
    const d = cloverVariant.delta(s, base);
    for (let k = 0; k < 30; k++) expect(d.data[k]).toBeCloseTo(base.data[k]!, 5);
  });

  it('heads must divide out, and the error names heads', () => {
    expect(() => cloverVariant.init(randn(new Random(1), [6, 4]), { heads: 4 }, new Random(1))).toThrow(/clover.init: heads = 4 does not divide out = 6/);
    expect(() => cloverVariant.trainableCount([6, 4], { heads: 4 })).toThrow(/heads/);
  });
});
