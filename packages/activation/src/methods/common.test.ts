import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepOf, markTopK, quantileRank, thresholdKeep } from './common.js';

describe('selection helpers', () => {
  it('markTopK marks the k largest (NaN as +Infinity, ties to the lower index), as sorting does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constant(Number.NaN), fc.constant(Infinity), fc.constant(-Infinity)), { maxLength: 300 }),
        fc.integer({ min: 0, max: 320 }),
        fc.integer({ min: 0, max: 3 }),
        (values, k, off) => {
          const n = values.length;
          const scores = Float64Array.from([...Array(off).fill(99), ...values]);
          const keep = new Uint8Array(off + n);
          markTopK(scores, off, n, k, keep, new Float64Array(n));
          const key = (v: number) => (Number.isNaN(v) ? Infinity : v);
          const order = [...Array(n).keys()].sort((a, b) => (key(values[a]!) === key(values[b]!) ? a - b : key(values[b]!) > key(values[a]!) ? 1 : -1));
          const expected = new Set(order.slice(0, k));
          expect(Array.from(keep.subarray(0, off))).toEqual(Array(off).fill(0));
          for (let j = 0; j < n; j++) expect(keep[off + j]).toBe(expected.has(j) ? 1 : 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('markTopK on many equal values (a long run of ties) keeps the first ones', () => {
    const n = 5000;
    const scores = Float64Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 2 : 1));
    const keep = new Uint8Array(n);
    markTopK(scores, 0, n, 1000, keep, new Float64Array(n));
    // Every 2 (i % 7 === 0), then the first 1s in index order until 1000 are kept.
    let ones = 1000 - Math.ceil(n / 7);
    for (let i = 0; i < n; i++) {
      const expected = i % 7 === 0 ? 1 : ones-- > 0 ? 1 : 0;
      expect(keep[i]).toBe(expected);
    }
  });

  it('quantileRank is floor(q n) in exact arithmetic for q = a / b', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10000 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 1000 }), (n, b, a) => {
        fc.pre(a <= b);
        expect(quantileRank(n, a / b)).toBe(Math.min(n - 1, Math.floor((a * n) / b)));
      }),
      { numRuns: 1000 },
    );
  });

  it('keepOf and thresholdKeep', () => {
    expect(keepOf(10, 0.3)).toBe(7);
    expect(keepOf(10, 0)).toBe(10);
    expect(keepOf(3, 0.99)).toBe(0);
    expect(Array.from(thresholdKeep(Float32Array.from([0.5, -1, 1, NaN, 0]), 1))).toEqual([0, 1, 1, 1, 0]);
  });
});
