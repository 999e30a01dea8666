import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keepOf, markTopK, quantileRank, thresholdApply, thresholdKeep, TopKSelector } from './common.js';

describe('selection helpers', () => {
  it('TopKSelector keeps per token the k largest |x|·scale (ties to the lower index) as sorting does, and apply zeroes exactly what keep drops', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 26 }),
        fc.boolean(),
        fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 24 * 4, maxLength: 24 * 4 }),
        (features, tokens, k, scaled, raw) => {
          const x = Float32Array.from(raw.slice(0, features * tokens), (v) => v / 2);
          const scale = scaled ? Float64Array.from({ length: features }, (_, j) => 1 + (j % 3)) : undefined;
          const sel = new TopKSelector(features, k, scale);
          const keep = sel.keep(x, tokens);
          for (let t = 0; t < tokens; t++) {
            const score = (j: number) => Math.abs(x[t * features + j]!) * (scale ? scale[j]! : 1);
            const order = [...Array(features).keys()].sort((a, b) => score(b) - score(a) || a - b);
            const want = new Set(order.slice(0, Math.min(k, features)));
            for (let j = 0; j < features; j++) expect(keep[t * features + j], `token ${t} feature ${j}`).toBe(want.has(j) ? 1 : 0);
          }
          const y = Float32Array.from(x);
          const kept = sel.apply(y, tokens);
          expect(kept).toBe(tokens * Math.min(k, features));
          expect(Array.from(y)).toEqual(Array.from(x, (v, i) => (keep[i] ? v : 0)));
        },
      ),
    );
  });

  it('thresholdApply zeroes exactly what thresholdKeep drops', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: -3, max: 3, noNaN: true }), fc.constant(Number.NaN)), { maxLength: 50 }), fc.double({ min: 0, max: 2, noNaN: true }), (values, t) => {
        const x = Float32Array.from(values);
        const keep = thresholdKeep(x, t);
        const y = Float32Array.from(x);
        const kept = thresholdApply(y, t);
        expect(kept).toBe(keep.reduce((a, b) => a + b, 0));
        expect(Array.from(y)).toEqual(Array.from(x, (v, i) => (keep[i] ? v : 0)));
      }),
    );
  });

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
