import { fisherScores, maskIndices, topKMask } from '@sparse/masks';
import { Random, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { rosaVariant } from './variant.js';
import { describeVariantContract, prune24, randn } from '../helpers/sparse-testing.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';

const scaling = (c: Record<string, unknown>) => (c.alpha as number) / (c.rslora ? Math.sqrt(c.r as number) : (c.r as number));

describeVariantContract({
  name: 'rosa',
  config: { r: 2, alpha: 4, density: 0.05 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp) + Math.round((c.density as number) * out * inp),
  referenceDelta(state) {
    const s = state as IndexedAdapterState;
    const [out, inp] = s.shape;
    const r = s.params.lora_A!.shape[0]!;
    const d = new Float64Array(out * inp);
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
      let v = 0;
      for (let t = 0; t < r; t++) v += s.params.lora_B!.data[i * r + t]! * s.params.lora_A!.data[t * inp + j]!;
      d[i * inp + j] = scaling(s.config as Record<string, unknown>) * v;
    }
    s.indices.support!.forEach((p, t) => (d[p] += s.params.rosa_values!.data[t]!));
    return d;
  },
  densifyChangesMask: true,
  badConfigs: [[{ r: 0 }, /r/], [{ density: 0 }, /density/], [{ density: 1.5 }, /density/], [{ score: 'grad' }, /score/], [{ rank: 2 }, /rank/]],
});

describe('rosa support selection', () => {
  it('picks the largest |W| among the base nonzeros, stored as sorted indices + values', () => {
    const rng = new Random(1);
    const base = randn(rng, [8, 16]);
    const s = rosaVariant.init(base, { density: 0.1 }, rng);
    const k = Math.round(0.1 * 128);
    // Brute force: sort |W| descending, take the first k, sort the indices.
    const expected = Array.from(base.data, (v, q) => [Math.abs(v), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((e) => e[1]).sort((a, b) => a - b);
    expect(Array.from(s.indices.support!)).toEqual(expected);
    expect(s.params.rosa_values!.shape).toEqual([k]);
  });

  it('initWithScores follows the given scores (e.g. Fisher) and never selects pruned entries', () => {
    const rng = new Random(2);
    const base = randn(rng, [8, 16]);
    const mask = prune24(base);
    const grads = [randn(rng, [8, 16]), randn(rng, [8, 16])];
    const fisher = fisherScores(grads);
    const s = rosaVariant.initWithScores(base, { density: 0.2 }, rng, fisher);
    const restricted = tensor(Float32Array.from(fisher.data, (v, q) => (base.data[q] === 0 ? -1 : v)), [8, 16]);
    expect(Array.from(s.indices.support!)).toEqual(Array.from(maskIndices(topKMask(restricted, Math.round(0.2 * 128)))));
    for (const p of s.indices.support!) expect(base.data[p]).not.toBe(0);
    void mask;
    expect(() => rosaVariant.initWithScores(base, { density: 0.6 }, rng, fisher)).toThrow(/density asks for 77 entries but the base has only 64 nonzeros/);
    expect(() => rosaVariant.initWithScores(base, {}, rng, randn(rng, [8, 8]))).toThrow(/scores are \[8, 8\]/);
  });

  it("score: 'random' is reproducible from the seed and differs between seeds", () => {
    const base = randn(new Random(3), [8, 16]);
    const a = rosaVariant.init(base, { score: 'random', density: 0.1 }, new Random(5)).indices.support!;
    const b = rosaVariant.init(base, { score: 'random', density: 0.1 }, new Random(5)).indices.support!;
    const c = rosaVariant.init(base, { score: 'random', density: 0.1 }, new Random(6)).indices.support!;
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
});
