import { applyMask } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, toArray, type Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nmMask } from './mask.js';
import { applyColumnPermutation, searchChannelPermutation } from './permutation.js';
import { searchStripeGroupPermutation, stripePartitionCount } from './stripe.js';

/** Independent reference: kept |W| of the row-axis N:M mask. */
const keptMagnitude = (w: Tensor, n: number, m: number) => toArray(applyMask(nmMask(w, { n, m }), w)).reduce((a, x) => a + Math.abs(x), 0);

/** Brute force over every permutation of the columns (kept sum by sorting each group's |w|). */
function bestOverAllPermutations(w: Tensor, n: number, m: number): number {
  const [rows, cols] = w.shape as [number, number];
  const kept = (p: number[]) => {
    let t = 0;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < cols; g += m) {
        const vals = p.slice(g, g + m).map((j) => Math.abs(w.data[r * cols + j]!)).sort((a, b) => b - a);
        for (let q = 0; q < n; q++) t += vals[q]!;
      }
    }
    return t;
  };
  let best = -Infinity;
  const perm: number[] = [];
  const used = new Array<boolean>(cols).fill(false);
  const rec = () => {
    if (perm.length === cols) return void (best = Math.max(best, kept(perm)));
    for (let j = 0; j < cols; j++) if (!used[j]) [used[j] = true, perm.push(j), rec(), perm.pop(), used[j] = false];
  };
  rec();
  return best;
}

describe('searchStripeGroupPermutation', () => {
  it('never lowers the kept magnitude, is >= the greedy swap search, and reports what masking the permuted weight keeps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom([2, 4], [1, 4], [1, 2]), (seed, [n, m]) => {
        const w = randomTensor([5, m! * 4], new Random(seed), { dist: 'normal' });
        const r = searchStripeGroupPermutation(w, { n: n!, m: m! });
        const greedy = searchChannelPermutation(w, { n: n!, m: m! });
        expect(r.method).toBe('stripe-group');
        expect(r.keptGreedy).toBeCloseTo(greedy.keptAfter, 6);
        expect(r.keptAfter).toBeGreaterThanOrEqual(r.keptGreedy - 1e-9);
        expect(r.keptAfter).toBeGreaterThanOrEqual(r.keptBefore);
        expect(r.keptBefore).toBeCloseTo(keptMagnitude(w, n!, m!), 4);
        expect(r.keptAfter).toBeCloseTo(keptMagnitude(applyColumnPermutation(w, r.permutation), n!, m!), 4);
        expect([...r.permutation].sort((a, b) => a - b)).toEqual([...Array(m! * 4).keys()]);
      }),
      { numRuns: 30 },
    );
  });

  it('finds the global optimum when one stripe group covers all columns (brute force over all permutations)', () => {
    for (const [seed, n, m, k] of [[1, 2, 4, 2], [2, 1, 4, 2], [3, 1, 2, 3], [4, 2, 4, 2], [5, 1, 2, 4]] as const) {
      const w = randomTensor([4, m * k], new Random(seed), { dist: 'normal' });
      const r = searchStripeGroupPermutation(w, { n, m, stripesPerGroup: k });
      expect(r.keptAfter).toBeCloseTo(bestOverAllPermutations(w, n, m), 4);
      // Asking for more stripes than there are repartitions all of them together.
      if (seed === 1) expect(searchStripeGroupPermutation(w, { n, m, stripesPerGroup: 5 }).keptAfter).toBeCloseTo(r.keptAfter, 6);
    }
  });

  it('beats the swap search on a case where single swaps are stuck', () => {
    let strictlyBetter = 0;
    for (let seed = 0; seed < 30; seed++) {
      const w = randomTensor([6, 16], new Random(100 + seed), { dist: 'normal' });
      const r = searchStripeGroupPermutation(w, { n: 2, m: 4 });
      if (r.keptAfter > r.keptGreedy + 1e-6) strictlyBetter++;
    }
    expect(strictlyBetter).toBeGreaterThan(0);
  });

  it('falls back to the swap search when the exhaustive step is too large, and validates options', () => {
    const w = randomTensor([4, 16], new Random(7), { dist: 'normal' });
    const r = searchStripeGroupPermutation(w, { n: 2, m: 4, maxPartitions: 10 });
    expect(r.method).toBe('swap');
    expect(Array.from(r.permutation)).toEqual(Array.from(searchChannelPermutation(w, { n: 2, m: 4 }).permutation));
    expect(stripePartitionCount(2, 4)).toBe(35);
    expect(stripePartitionCount(3, 4)).toBe(5775);
    expect(stripePartitionCount(3, 2)).toBe(15);
    expect(() => searchStripeGroupPermutation(w, { n: 2, m: 4, stripesPerGroup: 1 })).toThrow(ArgumentError);
    expect(() => searchStripeGroupPermutation(randomTensor([2, 6], new Random(1)), { n: 2, m: 4 })).toThrow(/multiple of m/);
  });
});
