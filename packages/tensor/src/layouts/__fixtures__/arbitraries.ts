// Test-only generators and brute-force helpers for the layout property tests.
import fc from 'fast-check';
import { allocStorage, DType, DTYPES, Storage } from '../../dtype.js';
import { SparseError } from '../../errors.js';
import { fromBFloat16, fromFloat16 } from '../../float16.js';
import { slice, sizeOf, tensor, Tensor, toArray, transpose } from '../../tensor.js';

export const dtypeArb: fc.Arbitrary<DType> = fc.constantFrom(...DTYPES);

/** Any raw storage element of a dtype: NaN, ±Infinity, ±0 and subnormals included for the floats. */
export function rawArb(dtype: DType): fc.Arbitrary<number> {
  switch (dtype) {
    case 'float32':
      return fc.float();
    case 'float64':
      return fc.double();
    case 'int32':
      return fc.integer({ min: -2147483648, max: 2147483647 });
    case 'int8':
      return fc.integer({ min: -128, max: 127 });
    case 'uint8':
      return fc.integer({ min: 0, max: 255 });
    case 'bool':
      return fc.integer({ min: 0, max: 1 });
    case 'float16':
    case 'bfloat16':
      return fc.integer({ min: 0, max: 0xffff });
  }
}

/** The raw zeros of a dtype (both signs where the dtype has them). */
export function zeroArb(dtype: DType): fc.Arbitrary<number> {
  if (dtype === 'float16' || dtype === 'bfloat16') return fc.constantFrom(0, 0x8000);
  if (dtype === 'float32' || dtype === 'float64') return fc.constantFrom(0, -0);
  return fc.constant(0);
}

export type Sparsity = 'dense' | 'empty' | 'sparse' | 'mixed';
export const sparsityArb: fc.Arbitrary<Sparsity> = fc.constantFrom('dense', 'empty', 'sparse', 'mixed');

export function entryArb(dtype: DType, sparsity: Sparsity): fc.Arbitrary<number> {
  switch (sparsity) {
    case 'dense':
      return rawArb(dtype);
    case 'empty':
      return zeroArb(dtype);
    case 'sparse':
      return fc.oneof({ arbitrary: zeroArb(dtype), weight: 4 }, { arbitrary: rawArb(dtype), weight: 1 });
    case 'mixed':
      return fc.oneof(zeroArb(dtype), rawArb(dtype));
  }
}

/** A contiguous tensor of the given shape with entries of the given sparsity. */
export function filledArb(dtype: DType, shape: number[], sparsity: Sparsity): fc.Arbitrary<Tensor> {
  const n = sizeOf(shape);
  return fc.array(entryArb(dtype, sparsity), { minLength: n, maxLength: n }).map((xs) => {
    const data = allocStorage(dtype, n) as Storage;
    xs.forEach((x, i) => (data[i] = x));
    return tensor(data, shape, { dtype });
  });
}

/** Side lengths favouring the edge cases 0 and 1. */
export const sideArb = fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 9 }));

export function matrixArb(opts: { rows?: fc.Arbitrary<number>; cols?: fc.Arbitrary<number>; dtype?: fc.Arbitrary<DType> } = {}) {
  return fc
    .tuple(opts.dtype ?? dtypeArb, opts.rows ?? sideArb, opts.cols ?? sideArb, sparsityArb)
    .chain(([dtype, r, c, sp]) => filledArb(dtype, [r, c], sp));
}

export function tensorArb(maxRank = 4) {
  return fc
    .tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: maxRank }), sparsityArb)
    .chain(([dtype, shape, sp]) => filledArb(dtype, shape, sp));
}

/**
 * A non-contiguous view of the given logical shape: a base tensor with every side 2d + 1 and axes in a
 * random order is sliced with step 2 (or -2, reversed) on every axis and transposed back, so the view
 * has an offset, strides > 1, negative strides and permuted axes.
 */
export function stridedArb(dtype: DType, shape: number[], sparsity: Sparsity): fc.Arbitrary<Tensor> {
  const rank = shape.length;
  const axes = [...Array(rank).keys()];
  return fc
    .tuple(fc.shuffledSubarray(axes, { minLength: rank, maxLength: rank }), fc.array(fc.boolean(), { minLength: rank, maxLength: rank }))
    .chain(([perm, reverse]) =>
      filledArb(dtype, perm.map((p) => 2 * shape[p]! + 1), sparsity).map((base) => {
        const specs = perm.map((p, a) => {
          const d = shape[p]!;
          return reverse[a] && d > 0 ? { start: 2 * d - 1, end: 0, step: -2 } : { start: 1, end: 2 * d + 1, step: 2 };
        });
        const inverse = new Array<number>(rank);
        perm.forEach((p, a) => (inverse[p] = a));
        return transpose(slice(base, ...specs), inverse);
      }),
    );
}

/** Strided views of random shapes (rank in [minRank, maxRank]) and dtypes. */
export function stridedTensorArb(opts: { minRank?: number; maxRank?: number; side?: fc.Arbitrary<number> } = {}) {
  const side = opts.side ?? fc.integer({ min: 0, max: 4 });
  return fc
    .tuple(dtypeArb, fc.array(side, { minLength: opts.minRank ?? 0, maxLength: opts.maxRank ?? 4 }), sparsityArb)
    .chain(([dtype, shape, sp]) => stridedArb(dtype, shape, sp));
}

/** Strided 2-D views with the given side generators. */
export function stridedMatrixArb(opts: { rows?: fc.Arbitrary<number>; cols?: fc.Arbitrary<number>; dtype?: fc.Arbitrary<DType> } = {}) {
  return fc
    .tuple(opts.dtype ?? dtypeArb, opts.rows ?? sideArb, opts.cols ?? sideArb, sparsityArb)
    .chain(([dtype, r, c, sp]) => stridedArb(dtype, [r, c], sp));
}

export function isZero(dtype: DType, raw: number): boolean {
  return dtype === 'float16' || dtype === 'bfloat16' ? raw === 0 || raw === 0x8000 : raw === 0;
}

/** |value| of a raw element, decoded (NaN stays NaN). */
export function refMagnitude(dtype: DType, raw: number): number {
  const v = dtype === 'float16' ? fromFloat16(raw) : dtype === 'bfloat16' ? fromBFloat16(raw) : dtype === 'bool' ? (raw ? 1 : 0) : raw;
  return Math.abs(v);
}

/** The reference N:M order of two magnitudes, descending with NaN first (above +Infinity); 0 when equal. */
export function refMagnitudeOrder(a: number, b: number): number {
  const nan = Number(Number.isNaN(b)) - Number(Number.isNaN(a));
  return nan || (a > b ? -1 : a < b ? 1 : 0);
}

/** Element-wise equality that tells -0 from +0 and treats NaN as equal to NaN (Object.is). */
export function sameRaw(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Row-major raw elements with every zero made +0 (what a zero-dropping layout gives back). */
export function expectedDropZeros(t: Tensor): number[] {
  return toArray(t).map((x) => (isZero(t.dtype, x) ? 0 : x));
}

/** Runs fn and returns the SparseError code and message it throws, or undefined. */
export function thrown(fn: () => unknown): { code: string; message: string } | undefined {
  try {
    fn();
  } catch (e) {
    if (SparseError.isInstance(e)) return { code: e.code, message: e.message };
    throw e;
  }
  return undefined;
}
