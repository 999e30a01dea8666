import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LayoutError } from '../errors.js';
import { copy, isContiguous, Tensor, toArray } from '../tensor.js';
import { bitmaskByteLength, toBitmask } from './bitmask.js';
import { bsrByteLength, toBSR } from './bsr.js';
import { cooByteLength, toCOO } from './coo.js';
import { csrByteLength, toCSR } from './csr.js';
import { isSparseLayout, layoutByteLength, nnz, nnzFraction, storedCount, toDense, validateLayout } from './generic.js';
import { nmByteLength, toNM } from './nm.js';
import type { SparseLayout } from './types.js';
import { dtypeArb, filledArb, isZero, matrixArb, sameRaw, sparsityArb, stridedTensorArb } from './__fixtures__/arbitraries.js';

/** Every format built from one matrix whose columns are a multiple of 4 (for 2:4). */
function allFormats(t: Tensor): SparseLayout[] {
  return [toBitmask(t), toCSR(t), toBSR(t, { blockShape: [2, 3] }), toNM(t, { n: 2, m: 4 }), toCOO(t)];
}

const matrix4Arb = fc
  .tuple(dtypeArb, fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 3 }), sparsityArb)
  .chain(([dtype, r, g, sp]) => filledArb(dtype, [r, 4 * g], sp));

describe('generic layout functions', () => {
  it('dispatch on format: validate passes, byte lengths equal the per-format ones, toDense is contiguous with the same dtype and shape', () => {
    fc.assert(
      fc.property(matrix4Arb, (t) => {
        const specific = [bitmaskByteLength, csrByteLength, bsrByteLength, nmByteLength, cooByteLength] as Array<(l: never) => number>;
        allFormats(t).forEach((l, i) => {
          expect(isSparseLayout(l)).toBe(true);
          validateLayout(l);
          expect(layoutByteLength(l)).toBe(specific[i]!(l as never));
          const d = toDense(l);
          expect(d.dtype).toBe(t.dtype);
          expect(d.shape).toEqual(t.shape);
          expect(isContiguous(d) && d.offset === 0).toBe(true);
        });
      }),
    );
  });

  it('nnz counts the non-zeros of the dense tensor, storedCount the stored values', () => {
    fc.assert(
      fc.property(matrix4Arb, (t) => {
        const want = toArray(t).filter((x) => !isZero(t.dtype, x)).length;
        for (const l of [toBitmask(t), toCSR(t), toBSR(t, { blockShape: [2, 3] }), toCOO(t)]) {
          expect(nnz(l)).toBe(want);
          expect(nnzFraction(l)).toBe(t.data.length === 0 ? 0 : want / t.data.length);
        }
        const nm = toNM(t, { n: 2, m: 4 });
        expect(storedCount(nm)).toBe(t.data.length / 2);
        expect(nnz(nm)).toBe(toArray(toDense(nm)).filter((x) => !isZero(t.dtype, x)).length);
        expect(storedCount(toCSR(t))).toBe(want);
      }),
    );
  });

  it('round-trips every zero-dropping format through toDense', () => {
    fc.assert(
      fc.property(matrixArb(), (t) => {
        const want = toArray(t).map((x) => (isZero(t.dtype, x) ? 0 : x));
        for (const l of [toBitmask(t), toCSR(t), toCOO(t)]) expect(sameRaw(toDense(l).data, want)).toBe(true);
      }),
    );
  });

  it('rejects unknown formats with a LayoutError', () => {
    const bogus = { format: 'dia', shape: [1], dtype: 'float32', values: new Float32Array(1) } as unknown as SparseLayout;
    expect(isSparseLayout(bogus)).toBe(false);
    expect(isSparseLayout(null)).toBe(false);
    expect(() => validateLayout(bogus)).toThrow(LayoutError);
    expect(() => toDense(bogus)).toThrow(/unknown layout format "dia"/);
    expect(() => layoutByteLength(bogus)).toThrow(LayoutError);
    expect(() => nnz(bogus)).toThrow(LayoutError);
  });
});

describe('test fixtures', () => {
  it('the strided-view generator really produces offsets, negative strides and permuted axes', () => {
    const views = fc.sample(stridedTensorArb({ minRank: 2, maxRank: 3, side: fc.integer({ min: 2, max: 4 }) }), 200);
    expect(views.some((v) => v.offset > 0)).toBe(true);
    expect(views.some((v) => v.stride.some((s) => s < 0))).toBe(true);
    expect(views.some((v) => v.stride[0]! < v.stride[1]!)).toBe(true);
    expect(views.every((v) => !isContiguous(v))).toBe(true);
    for (const v of views) expect(toArray(copy(v))).toEqual(toArray(v));
  });
});
