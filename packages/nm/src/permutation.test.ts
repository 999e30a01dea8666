import { applyMask } from '@sparse/masks';
import { ArgumentError, matmul, Random, randomTensor, tensor, toArray } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nmMask } from './mask.js';
import { applyColumnPermutation, applyRowPermutation, DEFAULT_PERMUTATION_WORK, invertPermutation, searchChannelPermutation, type PermutationSearchProgress } from './permutation.js';

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

  it('respects maxEvaluations and maxSwaps, and a budget-limited result still never keeps less', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 30 }), (seed, maxEvaluations, maxSwaps) => {
        const w = randomTensor([12, 64], new Random(seed), { dist: 'normal' });
        const r = searchChannelPermutation(w, { n: 2, m: 4, maxEvaluations, maxSwaps });
        expect(r.evaluations).toBeLessThanOrEqual(maxEvaluations);
        expect(r.swaps).toBeLessThanOrEqual(maxSwaps);
        expect(['converged', 'maxEvaluations', 'maxSwaps']).toContain(r.stopped);
        expect(r.keptAfter).toBeGreaterThanOrEqual(r.keptBefore);
        expect(r.keptAfter).toBeCloseTo(keptMagnitude(applyColumnPermutation(w, r.permutation), 2, 4), 4);
      }),
      { numRuns: 30 },
    );
    const w = randomTensor([12, 64], new Random(3), { dist: 'normal' });
    const r = searchChannelPermutation(w, { n: 2, m: 4, maxEvaluations: 16 * 5 });
    expect(r.evaluations).toBe(80);
    expect(r.stopped).toBe('maxEvaluations');
  });

  it('stops at a local optimum when unbounded: no single swap of two columns raises the kept score', () => {
    for (const [n, m, seed] of [[2, 4, 1], [1, 4, 2], [1, 2, 3], [3, 8, 4]] as const) {
      const cols = m * 4;
      const w = randomTensor([5, cols], new Random(seed), { dist: 'normal' });
      const r = searchChannelPermutation(w, { n, m, maxEvaluations: 1e9, maxSwaps: 1e9 });
      expect(r.stopped).toBe('converged');
      const base = applyColumnPermutation(w, r.permutation);
      const kept = keptMagnitude(base, n, m);
      for (let a = 0; a < cols; a++) {
        for (let b = a + 1; b < cols; b++) {
          if (Math.floor(a / m) === Math.floor(b / m)) continue;
          const p = Int32Array.from({ length: cols }, (_, j) => j);
          [p[a], p[b]] = [b, a];
          expect(keptMagnitude(applyColumnPermutation(base, p), n, m)).toBeLessThanOrEqual(kept + 1e-9);
        }
      }
    }
  });

  it('a time budget of 0 ms evaluates nothing and returns the identity', () => {
    const w = randomTensor([8, 32], new Random(5), { dist: 'normal' });
    const r = searchChannelPermutation(w, { n: 2, m: 4, timeBudgetMs: 0 });
    expect(r.stopped).toBe('time');
    expect(r.evaluations).toBe(0);
    expect([...r.permutation]).toEqual([...Array(32).keys()]);
    expect(r.keptAfter).toBeCloseTo(r.keptBefore, 9);
  });

  it('reports progress, ending with why it stopped, and sizes the default budget by the work per evaluation', () => {
    const rows = 1024;
    const w = randomTensor([rows, 64], new Random(6), { dist: 'normal' });
    const reports: PermutationSearchProgress[] = [];
    const r = searchChannelPermutation(w, { n: 2, m: 4, onProgress: (p) => reports.push(p), progressIntervalMs: 0 });
    expect(reports.length).toBeGreaterThan(1);
    const last = reports.at(-1)!;
    expect(last.stopped).toBe(r.stopped);
    expect(last.evaluations).toBe(r.evaluations);
    expect(last.kept).toBe(r.keptAfter);
    expect(last.maxEvaluations).toBe(Math.floor(DEFAULT_PERMUTATION_WORK / (2 * rows * 4)));
    for (let i = 1; i < reports.length; i++) expect(reports[i]!.kept).toBeGreaterThanOrEqual(reports[i - 1]!.kept - 1e-9);
    expect(reports.slice(0, -1).every((p) => p.stopped === undefined)).toBe(true);
  });

  it('rejects bad shapes and options', () => {
    expect(() => searchChannelPermutation(randomTensor([2, 6], new Random(1)), { n: 2, m: 4 })).toThrow(/multiple of m/);
    expect(() => searchChannelPermutation(randomTensor([2, 8], new Random(1)), { n: 2, m: 4, maxSwaps: -1 })).toThrow(ArgumentError);
    expect(() => searchChannelPermutation(randomTensor([2, 8], new Random(1)), { n: 2, m: 4, maxEvaluations: 1.5 })).toThrow(/maxEvaluations must be an integer/);
    expect(() => searchChannelPermutation(randomTensor([2, 8], new Random(1)), { n: 2, m: 4, timeBudgetMs: -1 })).toThrow(/timeBudgetMs must be a number >= 0/);
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
