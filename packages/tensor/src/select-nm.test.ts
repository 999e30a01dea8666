import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeError } from './errors.js';
import { encodeFloat16, fromBFloat16, fromFloat16 } from './float16.js';
import { nmRanksAbove, selectNM, selectNMGroup, type NMRank } from './select-nm.js';
import { tensor, type Tensor } from './tensor.js';

// The reference: sort a group's positions by (NaN first, then larger value, then lower position) with
// plain comparisons, and keep the first n. Written without nmRanksAbove, so it checks it.
function refOrder(values: number[], rank: NMRank): number[] {
  const key = values.map((v) => (rank === 'magnitude' ? Math.abs(v) : v));
  const nanFirst = (a: number, b: number) => Number(Number.isNaN(key[b]!)) - Number(Number.isNaN(key[a]!));
  const larger = (a: number, b: number) => (key[a]! > key[b]! ? -1 : key[a]! < key[b]! ? 1 : 0);
  return values.map((_, q) => q).sort((a, b) => nanFirst(a, b) || larger(a, b) || a - b);
}

/** Scores with many ties, NaN, ±Infinity and ±0. */
const scoreArb = fc.oneof(
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, 0, -0),
);

/** m of both code paths (up to 32: word of taken bits; above: position sort). */
const mArb = fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 30, max: 40 }));

const rankArb = fc.constantFrom<NMRank>('value', 'magnitude');

describe('nmRanksAbove', () => {
  it('NaN above everything, +Infinity above numbers, equal values rank neither way', () => {
    expect(nmRanksAbove(Number.NaN, Infinity)).toBe(true);
    expect(nmRanksAbove(Infinity, Number.NaN)).toBe(false);
    expect(nmRanksAbove(Number.NaN, Number.NaN)).toBe(false);
    expect(nmRanksAbove(Infinity, 1e308)).toBe(true);
    expect(nmRanksAbove(-0, 0)).toBe(false);
    expect(nmRanksAbove(0, -0)).toBe(false);
    expect(nmRanksAbove(-Infinity, -1e308)).toBe(false);
  });
});

describe('selectNMGroup', () => {
  it('gives the first n of the reference order (best first) for any offset and stride', () => {
    const arb = fc
      .tuple(mArb, fc.integer({ min: -3, max: 3 }), fc.integer({ min: 0, max: 5 }), rankArb)
      .chain(([m, stride, pad, rank]) =>
        fc.tuple(
          fc.constant(m),
          fc.integer({ min: 0, max: m }),
          fc.constant(stride),
          fc.constant(rank),
          fc.array(scoreArb, { minLength: Math.abs(stride) * (m - 1) + 1 + pad, maxLength: Math.abs(stride) * (m - 1) + 1 + pad }),
          fc.integer({ min: 0, max: pad }),
        ),
      );
    fc.assert(
      fc.property(arb, ([m, n, stride, rank, values, shift]) => {
        // A negative stride starts at the far end.
        const offset = shift + (stride < 0 ? -stride * (m - 1) : 0);
        const group = Array.from({ length: m }, (_, q) => values[offset + q * stride]!);
        const out = new Int32Array(n + 2).fill(-7);
        const ret = selectNMGroup(values, n, m, out, { rank, offset, stride });
        expect(ret).toBe(out);
        expect([...out.subarray(0, n)]).toEqual(refOrder(group, rank).slice(0, n));
        expect([...out.subarray(n)]).toEqual([-7, -7]);
      }),
      { numRuns: 400 },
    );
  });

  it('keeps NaN over +Infinity and the lower position among equals', () => {
    const out = new Int32Array(2);
    expect([...selectNMGroup([1, Infinity, Number.NaN, 1], 2, 4, out)]).toEqual([2, 1]);
    expect([...selectNMGroup([Number.NaN, 5, Number.NaN, Number.NaN], 2, 4, out)]).toEqual([0, 2]);
    expect([...selectNMGroup([-3, 3, -0, 0], 2, 4, out, { rank: 'magnitude' })]).toEqual([0, 1]);
    expect([...selectNMGroup([-3, 3, -0, 0], 2, 4, out)]).toEqual([1, 2]);
  });

  it('rejects bad counts, groups outside the values, a short out and an unknown rank', () => {
    const out = new Int32Array(4);
    expect(() => selectNMGroup([1, 2], 3, 2, out)).toThrow(ArgumentError);
    expect(() => selectNMGroup([1, 2], 1, 0, out)).toThrow(ArgumentError);
    expect(() => selectNMGroup([1, 2, 3], 1, 2, out, { offset: 2 })).toThrow(/does not lie inside/);
    expect(() => selectNMGroup([1, 2, 3], 1, 2, out, { offset: 0, stride: -1 })).toThrow(/does not lie inside/);
    expect(() => selectNMGroup([1, 2, 3, 4, 5], 3, 4, new Int32Array(2))).toThrow(/out must be/);
    expect(() => selectNMGroup([1, 2], 1, 2, out, { rank: 'abs' as NMRank })).toThrow(/rank/);
  });
});

type Dt = 'float32' | 'float64' | 'float16' | 'bfloat16';

/** A [rows, cols] view (row-major, or a transposed view of a [cols, rows] buffer, with an offset) and its decoded values. */
const matrixArb = fc
  .tuple(
    fc.constantFrom<Dt>('float32', 'float64', 'float16', 'bfloat16'),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 36 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.constantFrom<'row' | 'column'>('row', 'column'),
    rankArb,
    fc.boolean(),
    fc.integer({ min: 0, max: 3 }),
  )
  .chain(([dtype, m, n0, lines, groups, axis, rank, transposed, offset]) => {
    const [rows, cols] = axis === 'row' ? [lines, groups * m] : [groups * m, lines];
    const size = rows * cols;
    const raw = dtype === 'float16' || dtype === 'bfloat16' ? fc.integer({ min: 0, max: 0xffff }) : scoreArb;
    return fc.array(raw, { minLength: size + offset, maxLength: size + offset }).map((data) => ({ dtype, m, n: n0 % (m + 1), rows, cols, axis, rank, transposed, offset, data }));
  });

function build(c: { dtype: Dt; rows: number; cols: number; transposed: boolean; offset: number; data: number[] }): { t: Tensor; at: (i: number, j: number) => number } {
  const { dtype, rows, cols, transposed, offset, data } = c;
  const store = dtype === 'float32' ? Float32Array.from(data) : dtype === 'float64' ? Float64Array.from(data) : Uint16Array.from(data);
  const stride = transposed ? [1, rows] : [cols, 1];
  const t = tensor(store, [rows, cols], { dtype, stride, offset });
  const decode = dtype === 'float16' ? fromFloat16 : dtype === 'bfloat16' ? fromBFloat16 : (x: number) => x;
  return { t, at: (i, j) => decode(store[offset + i * stride[0]! + j * stride[1]!]!) };
}

describe('selectNM', () => {
  it('keeps exactly the reference choice in every group, for any dtype, strides, axis and rank', () => {
    fc.assert(
      fc.property(matrixArb, (c) => {
        const { t, at } = build(c);
        const { rows, cols, n, m, axis, rank } = c;
        const sel = selectNM(t, n, m, { axis, rank });
        expect(sel.shape).toEqual([rows, cols]);
        expect(sel.bits.length).toBe(Math.ceil((rows * cols) / 32));
        const want = new Uint8Array(rows * cols);
        const lines = axis === 'row' ? rows : cols;
        for (let line = 0; line < lines; line++) {
          for (let k = 0; k < (axis === 'row' ? cols : rows); k += m) {
            const idx = (q: number): [number, number] => (axis === 'row' ? [line, k + q] : [k + q, line]);
            const group = Array.from({ length: m }, (_, q) => at(...idx(q)));
            for (const q of refOrder(group, rank).slice(0, n)) {
              const [i, j] = idx(q);
              want[i * cols + j] = 1;
            }
          }
        }
        const got = Uint8Array.from({ length: rows * cols }, (_, i) => (sel.bits[i >>> 5]! >>> (i & 31)) & 1);
        expect([...got]).toEqual([...want]);
        // padding bits past the last entry stay zero
        const used = (rows * cols) % 32;
        if (used !== 0) expect(sel.bits[sel.bits.length - 1]! >>> used).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('decodes 16-bit floats before ranking (NaN above Infinity there too)', () => {
    // Undecoded, the bits of -2 (0xc000) would be the largest; decoded, NaN beats Infinity.
    const data = encodeFloat16([Infinity, Number.NaN, -2, 1]);
    const sel = selectNM(tensor(data, [1, 4], { dtype: 'float16' }), 1, 4, { rank: 'magnitude' });
    expect(sel.bits[0]).toBe(0b0010);
  });

  it('reads bool storage as its values: every non-zero byte is 1, so they tie', () => {
    const sel = selectNM(tensor(Uint8Array.from([0, 1, 7, 2]), [1, 4], { dtype: 'bool' }), 2, 4);
    expect(sel.bits[0]).toBe(0b0110);
  });

  it('rejects non-matrices, bad counts, a grouped dimension not divisible by m and unknown options', () => {
    const t = tensor(new Float32Array(8), [2, 4]);
    expect(() => selectNM(tensor(new Float32Array(4), [4]), 1, 2)).toThrow(ShapeError);
    expect(() => selectNM(t, 5, 4)).toThrow(ArgumentError);
    expect(() => selectNM(t, 1, 3)).toThrow(ShapeError);
    expect(() => selectNM(t, 1, 4, { axis: 'column' })).toThrow(/row count 2/);
    expect(() => selectNM(t, 1, 2, { axis: 'diagonal' as 'row' })).toThrow(/axis/);
    expect(() => selectNM(t, 1, 2, { rank: 'abs' as NMRank })).toThrow(/rank/);
  });
});
