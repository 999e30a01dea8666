import { Random, svd } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { dseeVariant } from './variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeVariantContract, prune24, randn } from '../helpers/sparse-testing.js';

function loopDelta(s: IndexedAdapterState, values: string): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; alpha: number; rslora: boolean };
  const scale = c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let v = 0;
    for (let t = 0; t < c.r; t++) v += s.params.lora_B!.data[i * c.r + t]! * s.params.lora_A!.data[t * inp + j]!;
    d[i * inp + j] = scale * v;
  }
  s.indices.support!.forEach((p, t) => (d[p] += s.params[values]!.data[t]!));
  return d;
}

describeVariantContract({
  name: 'dsee',
  config: { r: 2, alpha: 2, rslora: true, density: 0.05, decompositionRank: 3 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp) + Math.round((c.density as number) * out * inp),
  referenceDelta: (s) => loopDelta(s as IndexedAdapterState, 'dsee_values'),
  densifyChangesMask: true,
  badConfigs: [[{ r: 1.5 }, /r/], [{ density: -0.1 }, /density/], [{ decompositionRank: -1 }, /decompositionRank/], [{ sparsity: 0.5 }, /sparsity/]],
});

describe('dsee support Ω', () => {
  it('is the largest |W − L| with L the exact rank-k SVD truncation of W (brute force)', () => {
    const rng = new Random(4);
    const base = randn(rng, [12, 20]);
    const k = 3;
    const { u, s, v } = svd(base);
    const resid = Array.from(base.data, (w, q) => {
      const [i, j] = [Math.floor(q / 20), q % 20];
      let l = 0;
      for (let t = 0; t < k; t++) l += u.data[i * 12 + t]! * s.data[t]! * v.data[j * 12 + t]!;
      return [Math.abs(w - l), q] as const;
    });
    const n = Math.round(0.1 * 240);
    const expected = resid.sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map((e) => e[1]).sort((a, b) => a - b);
    const st = dseeVariant.init(base, { density: 0.1, decompositionRank: k }, rng);
    expect(Array.from(st.indices.support!)).toEqual(expected);
  });

  it('decompositionRank 0 selects by |W|; Ω avoids pruned entries; a too-large rank or density names the field', () => {
    const rng = new Random(5);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const st = dseeVariant.init(base, { density: 0.25, decompositionRank: 0 }, rng);
    const expected = Array.from(base.data, (w, q) => [Math.abs(w), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 32).map((e) => e[1]).sort((a, b) => a - b);
    expect(Array.from(st.indices.support!)).toEqual(expected);
    for (const p of st.indices.support!) expect(base.data[p]).not.toBe(0);
    expect(() => dseeVariant.init(base, { decompositionRank: 9 }, rng)).toThrow(/decompositionRank 9 exceeds min\(out, in\) = 8/);
    expect(() => dseeVariant.init(base, { density: 0.75, decompositionRank: 2 }, rng)).toThrow(/density asks for 96 entries but the base has only 64/);
  });
});
