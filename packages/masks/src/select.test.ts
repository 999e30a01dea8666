import { ArgumentError, Random, selectRank, ShapeError, tensor, transpose, type Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { count, countPerColumn, countPerRow, maskToBooleans } from './mask.js';
import {
  globalTopKMasks,
  keepCount,
  maskBySparsity,
  perColumnTopKMask,
  perRowTopKMask,
  thresholdMask,
  topKMask,
  topKMaskBySparsity,
} from './select.js';

/** The sort-based reference: indices ordered by (score desc, index asc), or (score asc, index asc). */
function bruteTopK(values: number[], k: number, largest = true): boolean[] {
  const order = values.map((_, i) => i).sort((x, y) => (largest ? values[y]! - values[x]! : values[x]! - values[y]!) || x - y);
  const keep = new Array<boolean>(values.length).fill(false);
  for (const i of order.slice(0, k)) keep[i] = true;
  return keep;
}

const asBools = (m: { shape: number[]; bits: Uint32Array }) => Array.from(maskToBooleans(m), (x) => x === 1);

// Small integer scores make ties frequent; they are exact in float32.
const scoresArb = (minLength = 0, maxLength = 80) => fc.array(fc.integer({ min: -6, max: 6 }), { minLength, maxLength });
const f32 = (v: number[], shape = [v.length]) => tensor(Float32Array.from(v), shape);

describe('selectRank', () => {
  it('returns the element of a given rank of the sorted array, also on adversarial and tie-heavy input', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 200 }), fc.nat(), (v, r) => {
        const rank = r % v.length;
        const sorted = Float64Array.from(v).sort();
        expect(selectRank(Float64Array.from(v), rank) === sorted[rank]).toBe(true); // === : -0 and +0 are the same score
      }),
    );
    const n = 50_000;
    for (const make of [(i: number) => i, (i: number) => n - i, (i: number) => Math.min(i, n - i), (i: number) => i % 3, () => 7]) {
      const v = Float32Array.from({ length: n }, (_, i) => make(i));
      const sorted = v.slice().sort();
      for (const rank of [0, 1, n >> 1, n - 2, n - 1]) expect(selectRank(v.slice(), rank)).toBe(sorted[rank]);
    }
  });
});

describe('topKMask', () => {
  it('equals the sort-based brute force for every k, largest and smallest, ties to the lower index', () => {
    fc.assert(
      fc.property(scoresArb(), fc.nat(), fc.boolean(), (v, kSeed, largest) => {
        const k = kSeed % (v.length + 1);
        const m = topKMask(f32(v), k, { largest });
        expect(asBools(m)).toEqual(bruteTopK(v, k, largest));
        expect(count(m)).toBe(k);
      }),
    );
  });

  it('works on float64 and strided views, and on large inputs with many ties', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 60 }), fc.nat(), (v, kSeed) => {
        const k = kSeed % (v.length + 1);
        expect(asBools(topKMask(tensor(Float64Array.from(v), [v.length]), k))).toEqual(bruteTopK(v, k));
      }),
    );
    const t = tensor(Float32Array.from([5, 1, 3, 3, 0, 9]), [2, 3]);
    const view = transpose(t); // [3, 2] = [[5, 3], [1, 0], [3, 9]]
    expect(asBools(topKMask(view, 3))).toEqual(bruteTopK([5, 3, 1, 0, 3, 9], 3));
    const rng = new Random(11);
    const big = Array.from({ length: 100_000 }, () => rng.int(0, 50));
    const m = topKMask(f32(big), 31_337);
    expect(asBools(m)).toEqual(bruteTopK(big, 31_337));
  });

  it('topKMaskBySparsity keeps exactly round((1 - s) n) entries', () => {
    fc.assert(
      fc.property(scoresArb(0, 300), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (v, s) => {
        const m = topKMaskBySparsity(f32(v), s);
        const k = Math.round((1 - s) * v.length);
        expect(count(m)).toBe(k);
        expect(keepCount(v.length, s)).toBe(k);
        expect(asBools(m)).toEqual(bruteTopK(v, k));
      }),
    );
    expect(count(topKMaskBySparsity(f32(new Array(10).fill(1)), 0.3))).toBe(7);
    expect(count(topKMaskBySparsity(f32(new Array(5).fill(1)), 0.5))).toBe(3); // 2.5 rounds up
  });

  it('rejects NaN scores with their index, a sparsity outside [0, 1) and a k out of range', () => {
    expect(() => topKMask(f32([1, 2, 3, NaN], [2, 2]), 1)).toThrow(/scores\[1, 1\] \(flat index 3\) is NaN/);
    expect(() => topKMaskBySparsity(f32([1, 2]), 1)).toThrow(/sparsity must be a number in \[0, 1\), got 1/);
    expect(() => topKMaskBySparsity(f32([1, 2]), -0.1)).toThrow(ArgumentError);
    expect(() => topKMask(f32([1, 2]), 3)).toThrow(/k must be an integer in \[0, 2\]/);
  });
});

describe('per-row and per-column top-k', () => {
  const matArb = fc.record({ rows: fc.integer({ min: 1, max: 6 }), cols: fc.integer({ min: 1, max: 12 }) }).chain(({ rows, cols }) =>
    fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      v: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: rows * cols, maxLength: rows * cols }),
      k: fc.nat(),
      largest: fc.boolean(),
    }),
  );

  it('keep exactly k per row / column, equal to brute force per row / column', () => {
    fc.assert(
      fc.property(matArb, ({ rows, cols, v, k, largest }) => {
        const kr = k % (cols + 1);
        const mr = perRowTopKMask(f32(v, [rows, cols]), kr, { largest });
        const expectedRows = Array.from({ length: rows }, (_, r) => bruteTopK(v.slice(r * cols, (r + 1) * cols), kr, largest)).flat();
        expect(asBools(mr)).toEqual(expectedRows);
        expect(Array.from(countPerRow(mr)).every((c) => c === kr)).toBe(true);

        const kc = k % (rows + 1);
        const mc = perColumnTopKMask(f32(v, [rows, cols]), kc, { largest });
        const expectedCols = new Array<boolean>(rows * cols).fill(false);
        for (let c = 0; c < cols; c++) {
          const col = Array.from({ length: rows }, (_, r) => v[r * cols + c]!);
          bruteTopK(col, kc, largest).forEach((b, r) => (expectedCols[r * cols + c] = b));
        }
        expect(asBools(mc)).toEqual(expectedCols);
        expect(Array.from(countPerColumn(mc)).every((c) => c === kc)).toBe(true);
      }),
    );
  });

  it('maskBySparsity applies keepCount at the requested granularity', () => {
    const v = f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4]);
    expect(count(maskBySparsity(v, 0.5))).toBe(6);
    expect(Array.from(countPerRow(maskBySparsity(v, 0.5, 'row')))).toEqual([2, 2, 2]);
    expect(Array.from(countPerColumn(maskBySparsity(v, 0.4, 'column')))).toEqual([2, 2, 2, 2]);
    expect(() => maskBySparsity(f32([1, 2]), 0.5, 'row')).toThrow(ShapeError);
  });
});

describe('globalTopKMasks', () => {
  it('equals top-k over the concatenation (ties: earlier tensor, then lower index)', () => {
    fc.assert(
      fc.property(fc.array(scoresArb(0, 30), { minLength: 1, maxLength: 4 }), fc.nat(), (parts, kSeed) => {
        const all = parts.flat();
        const k = kSeed % (all.length + 1);
        const masks = globalTopKMasks(
          parts.map((p) => f32(p)),
          { k },
        );
        const expected = bruteTopK(all, k);
        let off = 0;
        masks.forEach((m, i) => {
          expect(m.shape).toEqual([parts[i]!.length]);
          expect(asBools(m)).toEqual(expected.slice(off, off + parts[i]!.length));
          off += parts[i]!.length;
        });
      }),
    );
  });

  it('takes a global sparsity and mixes float32 and float64 tensors of any shape', () => {
    const a = f32([1, 9, 2, 8], [2, 2]);
    const b: Tensor = tensor(Float64Array.from([7, 3, 6]), [3]);
    const [ma, mb] = globalTopKMasks([a, b], { sparsity: 3 / 7 });
    expect(asBools(ma!)).toEqual([false, true, false, true]);
    expect(asBools(mb!)).toEqual([true, false, true]);
    expect(() => globalTopKMasks([a], { k: 5 })).toThrow(/budget.k/);
    expect(() => globalTopKMasks([a, f32([NaN])], { k: 1 })).toThrow(/scores\[1\]\[0\]/);
  });
});

describe('thresholdMask', () => {
  it('keeps scores above / below a threshold, strictly or inclusively', () => {
    fc.assert(
      fc.property(scoresArb(), fc.integer({ min: -6, max: 6 }), fc.boolean(), fc.boolean(), (v, t, inclusive, below) => {
        const m = thresholdMask(f32(v), t, { inclusive, below });
        expect(asBools(m)).toEqual(v.map((x) => (below ? (inclusive ? x <= t : x < t) : inclusive ? x >= t : x > t)));
      }),
    );
    expect(() => thresholdMask(f32([1]), NaN)).toThrow(ArgumentError);
  });
});
