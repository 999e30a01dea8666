import { applyMask } from '@sparse/masks';
import { ArgumentError, matmul, Random, randomTensor, tensor, toArray } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nmMask } from './mask.js';
import { applyColumnPermutation, applyRowPermutation, invertPermutation, searchChannelPermutation } from './permutation.js';

/** Independent reference: kept |W| of the row-axis N:M mask (via nmMask and applyMask). */
function keptMagnitude(w: Parameters<typeof nmMask>[0], n: number, m: number): number {
  return toArray(applyMask(nmMask(w, { n, m }), w)).reduce((a, x) => a + Math.abs(x), 0);
}

describe('searchChannelPermutation', () => {
  it('never lowers the kept magnitude, and its reported numbers match masking the permuted weight', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom([2, 4], [1, 4], [1, 2], [2, 8]), (seed, [n, m]) => {
        const w = randomTensor([6, m! * 3], new Random(seed), { dist: 'normal' });
        const r = searchChannelPermutation(w, { n: n!, m: m! });
        expect(r.keptAfter).toBeGreaterThanOrEqual(r.keptBefore);
        expect(r.keptBefore).toBeCloseTo(keptMagnitude(w, n!, m!), 4);
        expect(r.keptAfter).toBeCloseTo(keptMagnitude(applyColumnPermutation(w, r.permutation), n!, m!), 4);
        expect([...r.permutation].sort((a, b) => a - b)).toEqual([...Array(m! * 3).keys()]);
      }),
      { numRuns: 40 },
    );
  });

  it('finds the separating permutation when two large weights share a group', () => {
    // 1:2 on [9, 8, 0, 1]: identity keeps 9 + 1; putting 9 and 8 in different groups keeps 17.
    const w = tensor(Float32Array.from([9, 8, 0, 1]), [1, 4]);
    const r = searchChannelPermutation(w, { n: 1, m: 2 });
    expect(r.keptBefore).toBe(10);
    expect(r.keptAfter).toBe(17);
    expect(r.swaps).toBe(1);
  });

  it('rejects bad shapes and options', () => {
    expect(() => searchChannelPermutation(randomTensor([2, 6], new Random(1)), { n: 2, m: 4 })).toThrow(/multiple of m/);
    expect(() => searchChannelPermutation(randomTensor([2, 8], new Random(1)), { n: 2, m: 4, maxSwaps: -1 })).toThrow(ArgumentError);
  });
});

describe('co-permutation of coupled layers', () => {
  it('leaves a 2-layer MLP y = W2 relu(W1 x + b1) unchanged before masking', () => {
    const rng = new Random(11);
    const [din, hidden, dout, batch] = [5, 16, 3, 7];
    const w1 = randomTensor([hidden, din], rng, { dist: 'normal' });
    const b1 = randomTensor([hidden], rng, { dist: 'normal' });
    const w2 = randomTensor([dout, hidden], rng, { dist: 'normal' });
    const x = randomTensor([din, batch], rng, { dist: 'normal' });
    const mlp = (a: typeof w1, bias: typeof b1, b: typeof w2) => {
      const h = matmul(a, x);
      for (let i = 0; i < hidden; i++) for (let j = 0; j < batch; j++) h.data[i * batch + j] = Math.max(0, h.data[i * batch + j]! + bias.data[i]!);
      return toArray(matmul(b, h));
    };
    const { permutation, keptAfter, keptBefore } = searchChannelPermutation(w2, { n: 2, m: 4 });
    expect(keptAfter).toBeGreaterThan(keptBefore);
    const y = mlp(w1, b1, w2);
    const yp = mlp(applyRowPermutation(w1, permutation), applyRowPermutation(b1, permutation), applyColumnPermutation(w2, permutation));
    yp.forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-5));
  });

  it('inverts and validates permutations', () => {
    const w = randomTensor([3, 4], new Random(2));
    const p = Int32Array.from([2, 0, 3, 1]);
    expect(toArray(applyColumnPermutation(applyColumnPermutation(w, p), invertPermutation(p)))).toEqual(toArray(w));
    expect(() => applyColumnPermutation(w, [0, 0, 1, 2])).toThrow(ArgumentError);
    expect(() => applyRowPermutation(w, [0, 1])).toThrow(/expected 3/);
  });
});
