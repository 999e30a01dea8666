// The pruning kernels' references: rowTopKScaledAbs against a sort-based brute force (ties, zero and -0
// scales, k = 0 and k = cols, odd widths whose rows share mask words, out apart or in place), and
// columnMomentsF32 against per-column sums taken one column at a time; both reject bad arguments with
// typed errors and report the first non-finite entry without writing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { rng } from './__fixtures__/dense.js';
import { columnMomentsF32Reference } from './reference/column-moments.js';
import { selectRank } from '../select-rank.js';
import { rowTopKScaledAbsReference } from './reference/row-topk.js';

/** Kept flags by sorting each row's (score, column) pairs: score descending, then column ascending. */
function bruteForceKeep(w: Float32Array, wOffset: number, ldw: number, rows: number, cols: number, scale: Float64Array, k: number): boolean[] {
  const keep = new Array<boolean>(rows * cols).fill(false);
  for (let i = 0; i < rows; i++) {
    const order = Array.from({ length: cols }, (_, j) => ({ j, s: Math.abs(w[wOffset + i * ldw + j]!) * scale[j]! }));
    order.sort((a, b) => b.s - a.s || a.j - b.j);
    for (const { j } of order.slice(0, k)) keep[i * cols + j] = true;
  }
  return keep;
}

const bit = (mask: Uint32Array, i: number) => ((mask[Math.floor(i / 32)]! >>> (i % 32)) & 1) === 1;

/** Weights on a coarse grid (many ties), or uniform. */
function weights(n: number, next: () => number, grid: boolean): Float32Array {
  return Float32Array.from({ length: n }, () => (grid ? Math.round(next() * 4 - 2) / 2 : next() * 2 - 1));
}

describe('rowTopKScaledAbs (reference)', () => {
  it('keeps the k largest |w| * scale of every row, ties to the lower column (sort-based brute force)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 70 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1e6 }),
        (rows, cols, frac, grid, seed) => {
          const next = rng(seed);
          const k = Math.round(frac * cols);
          const wOffset = 3;
          const ldw = cols + 2;
          const w = weights(wOffset + rows * ldw, next, grid);
          // equal, zero and -0 scales among ordinary ones
          const scale = Float64Array.from({ length: cols }, (_, j) => (j % 5 === 0 ? 1 : j % 7 === 0 ? 0 : j % 11 === 0 ? -0 : grid ? 2 : next() * 10));
          const words = Math.ceil((rows * cols) / 32);
          const mask = new Uint32Array(words).fill(0xffffffff);
          const out = new Float32Array(rows * cols).fill(Number.NaN);
          expect(rowTopKScaledAbsReference({ rows, cols, w, wOffset, ldw, scale, k, mask, out })).toBe(-1);
          const ref = bruteForceKeep(w, wOffset, ldw, rows, cols, scale, k);
          for (let i = 0; i < rows * cols; i++) {
            expect(bit(mask, i)).toBe(ref[i]);
            const src = w[wOffset + Math.floor(i / cols) * ldw + (i % cols)]!;
            expect(out[i]).toBe(ref[i] ? src : 0);
          }
          // bits past rows * cols in the last word are cleared
          for (let i = rows * cols; i < words * 32; i++) expect(bit(mask, i)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writes out in place (out = w, same offset and leading dimension) and leaves padding alone', () => {
    const next = rng(7);
    const rows = 5;
    const cols = 13;
    const ld = 16;
    const w = weights(2 + rows * ld, next, true);
    const before = w.slice();
    const scale = Float64Array.from({ length: cols }, () => next());
    const mask = new Uint32Array(Math.ceil((rows * cols) / 32));
    expect(rowTopKScaledAbsReference({ rows, cols, w, wOffset: 2, ldw: ld, scale, k: 6, mask, out: w, outOffset: 2, ldo: ld })).toBe(-1);
    const ref = bruteForceKeep(before, 2, ld, rows, cols, scale, 6);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < ld; j++) {
        const p = 2 + i * ld + j;
        if (j < cols) expect(w[p]).toBe(ref[i * cols + j] ? before[p] : 0);
        else if (p < w.length) expect(w[p]).toBe(before[p]);
      }
    }
  });

  it('reports the lowest non-finite weight as a flat index', () => {
    const w = new Float32Array(4 * 6).fill(1);
    w[2 * 6 + 4] = Number.NaN;
    w[3 * 6 + 1] = Number.POSITIVE_INFINITY;
    const args = { rows: 4, cols: 6, w, wOffset: 0, ldw: 6, scale: new Float64Array(6).fill(1), k: 3, mask: new Uint32Array(1) };
    expect(rowTopKScaledAbsReference(args)).toBe(2 * 6 + 4);
  });

  it('handles empty matrices', () => {
    expect(rowTopKScaledAbsReference({ rows: 0, cols: 5, w: new Float32Array(0), wOffset: 0, ldw: 5, scale: new Float64Array(5), k: 2, mask: new Uint32Array(0) })).toBe(-1);
    expect(rowTopKScaledAbsReference({ rows: 3, cols: 0, w: new Float32Array(0), wOffset: 0, ldw: 1, scale: new Float64Array(0), k: 0, mask: new Uint32Array(0) })).toBe(-1);
  });

  it('rejects bad arguments with typed errors naming them', () => {
    const base = () => ({ rows: 2, cols: 4, w: new Float32Array(8), wOffset: 0, ldw: 4, scale: new Float64Array(4), k: 2, mask: new Uint32Array(1) });
    const call = (patch: object) => () => rowTopKScaledAbsReference({ ...base(), ...patch } as never);
    expect(call({ k: 5 })).toThrow(ArgumentError);
    expect(call({ k: 5 })).toThrow(/k must be an integer in \[0, cols = 4\]/);
    expect(call({ k: 1.5 })).toThrow(/k must be/);
    expect(call({ scale: Float64Array.of(1, Number.NaN, 1, 1) })).toThrow(/scale\[1\] is NaN/);
    expect(call({ scale: Float64Array.of(1, 1, -2, 1) })).toThrow(/scale\[2\] is -2/);
    expect(call({ scale: Float64Array.of(1, 1, 1, Number.POSITIVE_INFINITY) })).toThrow(/scale\[3\] is Infinity/);
    expect(call({ scale: new Float64Array(3) })).toThrow(ShapeError);
    expect(call({ scale: new Float32Array(4) })).toThrow(DTypeError);
    expect(call({ w: new Float32Array(7) })).toThrow(/w has length 7/);
    expect(call({ ldw: 3 })).toThrow(/ldw/);
    expect(call({ mask: new Uint32Array(0) })).toThrow(/mask has 0 words/);
    expect(call({ mask: new Int32Array(1) })).toThrow(DTypeError);
    expect(call({ out: new Float32Array(7) })).toThrow(/out has length 7/);
    expect(call({ outOffset: 1 })).toThrow(/need an out array/);
    const shared = new Float32Array(20);
    expect(call({ w: shared.subarray(0, 8), out: shared.subarray(4, 12) })).toThrow(/w overlaps out/);
    const buf = new ArrayBuffer(64);
    expect(call({ w: new Float32Array(buf, 0, 8), mask: new Uint32Array(buf, 28, 1) })).toThrow(/mask overlaps w/);
  });
});

describe('selectRank', () => {
  it('returns the element of each rank of a sorted copy, with many ties', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 60 }), fc.nat(), (values, r) => {
        const rank = r % values.length;
        const sorted = Float64Array.from(values).sort();
        expect(selectRank(Float64Array.from(values), rank)).toBe(sorted[rank]);
      }),
    );
  });
});

describe('columnMomentsF32 (reference)', () => {
  /** Per column, one column at a time: Σx² added to the old value, the mean, Σ(x - mean)². */
  function bruteForce(x: Float32Array, off: number, ld: number, rows: number, cols: number, oldSumSq: Float64Array) {
    const sumSquares = oldSumSq.slice();
    const mean = new Float64Array(cols);
    const m2 = new Float64Array(cols);
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let i = 0; i < rows; i++) {
        const v = x[off + i * ld + j]!;
        sumSquares[j]! += v * v;
        s += v;
      }
      mean[j] = s / rows;
      let d = 0;
      for (let i = 0; i < rows; i++) d += (x[off + i * ld + j]! - mean[j]!) ** 2;
      m2[j] = d;
    }
    return { sumSquares, mean, m2 };
  }

  it('matches per-column sums in the same order exactly, over offsets and leading dimensions', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 37 }), fc.integer({ min: 0, max: 1e6 }), (rows, cols, seed) => {
        const next = rng(seed);
        const off = 5;
        const ld = cols + 3;
        const x = Float32Array.from({ length: off + rows * ld }, () => (next() * 2 - 1) * 10 ** (3 * next()));
        const sumSquares = Float64Array.from({ length: cols }, () => next() * 100);
        const expected = bruteForce(x, off, ld, rows, cols, sumSquares);
        const mean = new Float64Array(cols).fill(Number.NaN);
        const m2 = new Float64Array(cols).fill(Number.NaN);
        expect(columnMomentsF32Reference({ rows, cols, x, xOffset: off, ldx: ld, sumSquares, mean, m2 })).toBe(-1);
        expect(sumSquares).toEqual(expected.sumSquares);
        expect(mean).toEqual(expected.mean);
        expect(m2).toEqual(expected.m2);
      }),
      { numRuns: 100 },
    );
  });

  it('writes nothing for zero rows or a non-finite entry, whose flat index it returns', () => {
    const sumSquares = Float64Array.of(1, 2, 3);
    const mean = Float64Array.of(4, 5, 6);
    const m2 = Float64Array.of(7, 8, 9);
    const x = Float32Array.from({ length: 12 }, (_, i) => i);
    expect(columnMomentsF32Reference({ rows: 0, cols: 3, x, xOffset: 0, ldx: 3, sumSquares, mean, m2 })).toBe(-1);
    x[7] = Number.NEGATIVE_INFINITY;
    x[10] = Number.NaN;
    expect(columnMomentsF32Reference({ rows: 4, cols: 3, x, xOffset: 0, ldx: 3, sumSquares, mean, m2 })).toBe(7);
    expect([...sumSquares, ...mean, ...m2]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('rejects bad arguments with typed errors naming them', () => {
    const base = () => ({ rows: 2, cols: 3, x: new Float32Array(6), xOffset: 0, ldx: 3, sumSquares: new Float64Array(3), mean: new Float64Array(3), m2: new Float64Array(3) });
    const call = (patch: object) => () => columnMomentsF32Reference({ ...base(), ...patch } as never);
    expect(call({ x: new Float32Array(5) })).toThrow(ShapeError);
    expect(call({ x: new Float64Array(6) })).toThrow(DTypeError);
    expect(call({ mean: new Float64Array(2) })).toThrow(/mean has length 2/);
    expect(call({ rows: -1 })).toThrow(/rows must be a non-negative integer/);
    const shared = new Float64Array(5);
    expect(call({ mean: shared.subarray(0, 3), m2: shared.subarray(2, 5) })).toThrow(/mean overlaps m2/);
  });
});
