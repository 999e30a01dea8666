import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import type { AdapterState } from '../types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { sparseAdapterVariant } from './variant.js';
import { describeVariantContract, randn } from '../helpers/sparse-testing.js';

function refDelta(state: AdapterState): Float64Array {
  const s = state as IndexedAdapterState<{ r: number; alpha: number; rslora: boolean }>;
  const [out, inp] = s.shape;
  const { r, alpha } = s.config;
  const a = new Float64Array(r * inp);
  const b = new Float64Array(out * r);
  s.indices.posA!.forEach((p, t) => (a[p] = s.params.sa_A!.data[t]!));
  s.indices.posB!.forEach((p, t) => (b[p] = s.params.sa_B!.data[t]!));
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) for (let t = 0; t < r; t++) d[i * inp + j] += (alpha / r) * b[i * r + t]! * a[t * inp + j]!;
  return d;
}

const closedForm = ([out, inp]: readonly [number, number], c: Record<string, unknown>) => {
  const keep = 1 - (c.sparsity as number);
  return Math.round(keep * (c.r as number) * inp) + Math.round(keep * out * (c.r as number));
};

describeVariantContract({
  name: 'sparse-adapter',
  config: { r: 4, alpha: 8, sparsity: 0.5 },
  closedForm,
  referenceDelta: refDelta,
  densifyChangesMask: true,
  badConfigs: [[{ sparsity: 1 }, /sparsity/], [{ selection: 'snip' }, /selection/], [{ r: 0 }, /r/]],
});

describe('sparse-adapter selection', () => {
  it("keeps A's largest |A| at init, and with scores G keeps B's largest |G Aᵀ| (brute force)", () => {
    const base = randn(new Random(1), [6, 10]);
    const G = randn(new Random(2), [6, 10]);
    // The same stream gives the same A, so A's full init can be recovered with sparsity 0.
    const full = sparseAdapterVariant.init(base, { r: 2, sparsity: 0 }, new Random(3));
    const s = sparseAdapterVariant.initWithScores(base, { r: 2, sparsity: 0.5 }, new Random(3), G);
    const A = full.params.sa_A!.data; // all 20 entries, flat order
    const expectA = Array.from(A, (v, q) => [Math.abs(v), q] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, 10).map((e) => e[1]).sort((x, y) => x - y);
    expect(Array.from(s.indices.posA!)).toEqual(expectA);
    expect(Array.from(s.params.sa_A!.data)).toEqual(expectA.map((q) => A[q]!));
    const gat = Array.from({ length: 12 }, (_, q) => {
      const [i, t] = [Math.floor(q / 2), q % 2];
      let v = 0;
      for (let j = 0; j < 10; j++) v += G.data[i * 10 + j]! * A[t * 10 + j]!;
      return [Math.abs(v), q] as const;
    });
    const expectB = gat.sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, 6).map((e) => e[1]).sort((x, y) => x - y);
    expect(Array.from(s.indices.posB!)).toEqual(expectB);
    expect(s.params.sa_B!.data.every((v) => v === 0)).toBe(true);
  });
});
