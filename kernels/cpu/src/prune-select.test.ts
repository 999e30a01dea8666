// The native pruning selection kernels against the reference kernels of @sparse/tensor (which are
// checked against brute force there): rowTopKScaledAbs must give the very same mask and pruned copy (ties
// on a coarse grid of weights and equal scales, zero and -0 scales, k = 0 and k = cols, widths that are
// not multiples of 32 so rows share mask words across the threads' row ranges, out apart or in place),
// columnMomentsF32 the very same float64 sums (same order of additions); both report the lowest
// non-finite entry as the reference does, and bad arguments get the reference's typed errors.
import { ArgumentError, DTypeError, REFERENCE_BACKEND, ShapeError, getKernel, type RowTopKScaledAbsArgs } from '@sparse/tensor';
import { expect, it } from 'vitest';
import { rng } from './__fixtures__/gemm-cases.js';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { columnMomentsF32KernelFrom, rowTopKScaledAbsKernelFrom } from './prune-select.js';

const suite = nativeSuite(status.available && typeof status.addon.rowTopKScaledAbs !== 'function' ? 'this addon build has no rowTopKScaledAbs' : undefined);

/** [rows, cols] shapes: empty, tiny, odd widths, several threads' worth, one wide row. */
/** The first index where two arrays differ (Object.is, so -0 differs from 0 and NaN equals NaN), or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

const SHAPES: Array<[number, number]> = [
  [0, 7],
  [5, 0],
  [1, 1],
  [3, 5],
  [7, 33],
  [64, 64],
  [97, 131],
  [301, 257],
  [256, 1000],
  [1, 5000],
];

suite('native pruning selection kernels', () => {
  const addon = status.available ? status.addon : undefined;
  const topk = () => rowTopKScaledAbsKernelFrom(addon!);
  const moments = () => columnMomentsF32KernelFrom(addon!);
  const refTopk = () => getKernel('rowTopKScaledAbs', REFERENCE_BACKEND);
  const refMoments = () => getKernel('columnMomentsF32', REFERENCE_BACKEND);

  /** Uniform weights, or a coarse grid (many equal |w|) with equal scales: many tied scores. */
  function layer(rows: number, cols: number, ld: number, offset: number, seed: number, ties: boolean) {
    const next = rng(seed);
    const w = Float32Array.from({ length: offset + rows * ld + 2 }, () => (ties ? Math.round(next() * 6 - 3) / 2 : next() * 2 - 1));
    const scale = Float64Array.from({ length: cols }, (_, j) => (j % 9 === 4 ? 0 : j % 13 === 6 ? -0 : ties ? 1 + (j % 2) : 10 ** (2 * next() - 1)));
    return { w, scale };
  }

  it.each(SHAPES)('rowTopKScaledAbs [%i, %i]: the same mask and pruned copy as the reference, for k from 0 to cols', (rows, cols) => {
    const ld = cols + 3;
    const offset = 2;
    const words = Math.ceil((rows * cols) / 32);
    for (const ties of [false, true]) {
      const { w, scale } = layer(rows, cols, ld, offset, rows * 1000 + cols + (ties ? 7 : 0), ties);
      const before = w.slice();
      for (const k of [...new Set([0, 1, Math.floor(cols / 2), Math.round(cols * 0.3), cols - 1, cols])].filter((v) => v >= 0 && v <= cols)) {
        const args = (mask: Uint32Array, out: Float32Array): RowTopKScaledAbsArgs => ({ rows, cols, w, wOffset: offset, ldw: ld, scale, k, mask, out, outOffset: 1, ldo: cols + 1 });
        const mask = new Uint32Array(words).fill(0xdeadbeef);
        const out = new Float32Array(1 + rows * (cols + 1)).fill(Number.NaN);
        const refMask = new Uint32Array(words);
        const refOut = out.slice();
        expect(topk()(args(mask, out))).toBe(-1);
        expect(refTopk()(args(refMask, refOut))).toBe(-1);
        expect(firstDiff(mask, refMask)).toBe(-1);
        expect(firstDiff(out, refOut)).toBe(-1);
        // kept count: exactly k per row
        let kept = 0;
        for (const word of mask) for (let b = word; b !== 0; b &= b - 1) kept++;
        expect(kept).toBe(rows * k);
        expect(firstDiff(w, before)).toBe(-1);
      }
    }
  });

  it('rowTopKScaledAbs in place (out = w) and with no out at all matches the reference', () => {
    const rows = 123;
    const cols = 77;
    const { w, scale } = layer(rows, cols, cols, 0, 99, true);
    const native = w.slice();
    const reference = w.slice();
    const words = Math.ceil((rows * cols) / 32);
    const m1 = new Uint32Array(words);
    const m2 = new Uint32Array(words);
    const m3 = new Uint32Array(words);
    expect(topk()({ rows, cols, w: native, wOffset: 0, ldw: cols, scale, k: 38, mask: m1, out: native })).toBe(-1);
    expect(refTopk()({ rows, cols, w: reference, wOffset: 0, ldw: cols, scale, k: 38, mask: m2, out: reference })).toBe(-1);
    expect(firstDiff(native, reference)).toBe(-1);
    expect(firstDiff(m1, m2)).toBe(-1);
    expect(topk()({ rows, cols, w, wOffset: 0, ldw: cols, scale, k: 38, mask: m3 })).toBe(-1);
    expect(firstDiff(m3, m2)).toBe(-1);
  });

  it('rowTopKScaledAbs reports the lowest non-finite weight as the reference does', () => {
    const rows = 300;
    const cols = 70;
    for (const [at, value] of [
      [5, Number.NaN],
      [250 * cols + 3, Number.NEGATIVE_INFINITY],
      [rows * cols - 1, Number.POSITIVE_INFINITY],
    ] as const) {
      const w = Float32Array.from({ length: rows * cols }, (_, i) => (i % 17) - 8);
      w[at] = value;
      if (at !== 5) w[at + 1 < rows * cols ? at + 1 : at] = value;
      const scale = new Float64Array(cols).fill(1);
      const mask = new Uint32Array(Math.ceil((rows * cols) / 32));
      expect(topk()({ rows, cols, w, wOffset: 0, ldw: cols, scale, k: 10, mask })).toBe(at);
      expect(refTopk()({ rows, cols, w, wOffset: 0, ldw: cols, scale, k: 10, mask })).toBe(at);
    }
  });

  it('rowTopKScaledAbs rejects bad arguments with the reference typed errors before native code runs', () => {
    const base = () => ({ rows: 2, cols: 4, w: new Float32Array(8), wOffset: 0, ldw: 4, scale: new Float64Array(4), k: 2, mask: new Uint32Array(1) });
    const call = (patch: object) => () => topk()({ ...base(), ...patch } as never);
    expect(call({ k: 5 })).toThrow(ArgumentError);
    expect(call({ scale: Float64Array.of(1, -1, 1, 1) })).toThrow(/scale\[1\] is -1/);
    expect(call({ w: new Float32Array(7) })).toThrow(ShapeError);
    expect(call({ mask: new Int32Array(1) })).toThrow(DTypeError);
    const shared = new Float32Array(16);
    expect(call({ w: shared.subarray(0, 8), out: shared.subarray(2, 10) })).toThrow(/overlaps/);
  });

  it.each(SHAPES)('columnMomentsF32 [%i, %i]: the same float64 sums as the reference, bit for bit', (rows, cols) => {
    const next = rng(rows * 31 + cols);
    const ld = cols + 5;
    const off = 3;
    const x = Float32Array.from({ length: off + rows * ld }, () => (next() * 2 - 1) * 10 ** (4 * next() - 2));
    const start = Float64Array.from({ length: cols }, () => next() * 50);
    const run = (kernel: typeof moments) => {
      const sumSquares = start.slice();
      const mean = new Float64Array(cols).fill(Number.NaN);
      const m2 = new Float64Array(cols).fill(Number.NaN);
      expect(kernel()({ rows, cols, x, xOffset: off, ldx: ld, sumSquares, mean, m2 })).toBe(-1);
      return { sumSquares, mean, m2 };
    };
    const native = run(moments);
    const reference = run(refMoments);
    expect(firstDiff(native.sumSquares, reference.sumSquares)).toBe(-1);
    expect(firstDiff(native.mean, reference.mean)).toBe(-1);
    expect(firstDiff(native.m2, reference.m2)).toBe(-1);
  });

  it('columnMomentsF32 reports the lowest non-finite entry and writes nothing, as the reference does', () => {
    const rows = 400;
    const cols = 300;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => ((i * 7) % 13) - 6);
    x[123 * cols + 250] = Number.NaN;
    x[300 * cols + 2] = Number.POSITIVE_INFINITY;
    for (const kernel of [moments, refMoments]) {
      const sumSquares = new Float64Array(cols).fill(1);
      const mean = new Float64Array(cols).fill(2);
      const m2 = new Float64Array(cols).fill(3);
      expect(kernel()({ rows, cols, x, xOffset: 0, ldx: cols, sumSquares, mean, m2 })).toBe(123 * cols + 250);
      expect([sumSquares.every((v) => v === 1), mean.every((v) => v === 2), m2.every((v) => v === 3)]).toEqual([true, true, true]);
    }
    // A non-finite running sum (not an entry) is carried along, as the reference carries it.
    const y = Float32Array.from({ length: 6 }, (_, i) => i);
    const a = Float64Array.of(Number.POSITIVE_INFINITY, 0, 0);
    const b = a.slice();
    const outs = () => [new Float64Array(3), new Float64Array(3)] as const;
    const [ma, va] = outs();
    const [mb, vb] = outs();
    expect(moments()({ rows: 2, cols: 3, x: y, xOffset: 0, ldx: 3, sumSquares: a, mean: ma, m2: va })).toBe(-1);
    expect(refMoments()({ rows: 2, cols: 3, x: y, xOffset: 0, ldx: 3, sumSquares: b, mean: mb, m2: vb })).toBe(-1);
    expect([a, ma, va]).toEqual([b, mb, vb]);
  });

  it('columnMomentsF32 rejects bad arguments with the reference typed errors', () => {
    const base = () => ({ rows: 2, cols: 3, x: new Float32Array(6), xOffset: 0, ldx: 3, sumSquares: new Float64Array(3), mean: new Float64Array(3), m2: new Float64Array(3) });
    const call = (patch: object) => () => moments()({ ...base(), ...patch } as never);
    expect(call({ x: new Float32Array(5) })).toThrow(ShapeError);
    expect(call({ m2: new Float32Array(3) })).toThrow(DTypeError);
    const shared = new Float64Array(4);
    expect(call({ sumSquares: shared.subarray(0, 3), mean: shared.subarray(1, 4) })).toThrow(/sumSquares overlaps mean/);
  });
});
