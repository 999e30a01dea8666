import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesPerElement } from '../dtype.js';
import { LayoutError, ShapeError } from '../errors.js';
import { copy, get, tensor, Tensor } from '../tensor.js';
import { csrByteLength, fromCSR, toCSR, validateCSR } from './csr.js';
import type { CSRLayout } from './types.js';
import { expectedDropZeros, isZero, matrixArb, sameRaw, stridedMatrixArb, thrown } from './__fixtures__/arbitraries.js';

/** CSR arrays by brute force: walk rows and columns through get(), keep the non-zeros. */
function bruteCSR(t: Tensor) {
  const [rows, cols] = t.shape as [number, number];
  const indptr = [0];
  const indices: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = get(t, i, j);
      if (!isZero(t.dtype, v)) {
        indices.push(j);
        values.push(v);
      }
    }
    indptr.push(indices.length);
  }
  return { indptr, indices, values };
}

describe('CSR', () => {
  it('matches the brute-force arrays and round-trips exactly (every dtype, sparsity, 0/1 sides)', () => {
    fc.assert(
      fc.property(matrixArb(), (t) => {
        const l = toCSR(t);
        const want = bruteCSR(t);
        expect(l.format).toBe('csr');
        expect(l.dtype).toBe(t.dtype);
        expect(l.shape).toEqual(t.shape);
        expect([...l.indptr]).toEqual(want.indptr);
        expect([...l.indices]).toEqual(want.indices);
        expect(sameRaw(l.values, want.values)).toBe(true);
        validateCSR(l);
        const back = fromCSR(l);
        expect(back.dtype).toBe(t.dtype);
        expect(back.shape).toEqual(t.shape);
        expect(back.stride).toEqual([t.shape[1], 1]);
        expect(sameRaw(back.data, expectedDropZeros(t))).toBe(true);
        expect(csrByteLength(l)).toBe(
          (t.shape[0]! + 1) * 4 + want.indices.length * 4 + want.indices.length * bytesPerElement(t.dtype),
        );
      }),
    );
  });

  it('gives the same layout for a strided/transposed/reversed view as for its contiguous copy', () => {
    fc.assert(
      fc.property(stridedMatrixArb(), (v) => {
        const a = toCSR(v);
        const b = toCSR(copy(v));
        expect([...a.indptr]).toEqual([...b.indptr]);
        expect([...a.indices]).toEqual([...b.indices]);
        expect(sameRaw(a.values, b.values)).toBe(true);
        expect(sameRaw(fromCSR(a).data, expectedDropZeros(v))).toBe(true);
      }),
    );
  });

  it('rejects non-matrices', () => {
    expect(() => toCSR(tensor(new Float32Array(8), [2, 2, 2]))).toThrow(ShapeError);
    expect(() => toCSR({} as Tensor)).toThrow(/asTensor/);
  });
});

describe('validateCSR', () => {
  // [[1, 0, 2], [0, 0, 0], [0, 3, 4]]
  const good = (): CSRLayout<'float32'> => ({
    format: 'csr',
    shape: [3, 3],
    dtype: 'float32',
    indptr: Int32Array.from([0, 2, 2, 4]),
    indices: Int32Array.from([0, 2, 1, 2]),
    values: Float32Array.from([1, 2, 3, 4]),
  });
  const corruptions: Array<[string, (l: CSRLayout<'float32'>) => void, RegExp]> = [
    ['indptr[0] != 0', (l) => (l.indptr[0] = 1), /indptr\[0\]/],
    ['indptr decreasing', (l) => (l.indptr[2] = 1), /indptr\[2\] = 1 is less than indptr\[1\]/],
    ['indptr end != nnz', (l) => (l.indptr = Int32Array.from([0, 2, 2, 3])), /indptr\[3\] = 3/],
    ['indptr past indices', (l) => (l.indptr = Int32Array.from([0, 2, 2, 5])), /indptr\[3\] = 5 exceeds/],
    ['indptr too short', (l) => (l.indptr = Int32Array.from([0, 2, 4])), /indptr has 3 entries/],
    ['column out of range', (l) => (l.indices[3] = 3), /indices\[3\] = 3 is outside \[0, 3\) \(row 2\)/],
    ['negative column', (l) => (l.indices[0] = -1), /indices\[0\] = -1/],
    ['unsorted row', (l) => (l.indices[2] = 2) && (l.indices[3] = 1), /indices\[3\] = 1 is not greater/],
    ['duplicate column', (l) => (l.indices[1] = 0), /indices\[1\] = 0 is not greater/],
    ['values too short', (l) => (l.values = l.values.subarray(0, 3)), /values has 3 entries/],
    ['values of the wrong storage', (l) => ((l as unknown as { values: Float64Array }).values = new Float64Array(4)), /values must be the storage/],
    ['indptr of the wrong type', (l) => ((l as unknown as { indptr: Uint32Array }).indptr = Uint32Array.from([0, 2, 2, 4])), /indptr must be a Int32Array/],
    ['indices missing', (l) => delete (l as Partial<CSRLayout>).indices, /indices must be a Int32Array/],
    ['wrong format', (l) => ((l as unknown as { format: string }).format = 'coo'), /format must be 'csr'/],
    ['unknown dtype', (l) => ((l as unknown as { dtype: string }).dtype = 'float8'), /dtype "float8"/],
    ['bad shape', (l) => (l.shape = [3, -1] as [number, number]), /shape\[1\]/],
    ['rank-3 shape', (l) => ((l as unknown as { shape: number[] }).shape = [3, 3, 1]), /shape must have 2 entries/],
  ];

  it('accepts the valid layout', () => {
    expect(() => validateCSR(good())).not.toThrow();
    expect(Array.from(fromCSR(good()).data)).toEqual([1, 0, 2, 0, 0, 0, 0, 3, 4]);
  });

  it.each(corruptions)('rejects %s with a LayoutError naming the field', (_, corrupt, message) => {
    const l = good();
    corrupt(l);
    const err = thrown(() => validateCSR(l));
    expect(err?.code).toBe('LAYOUT');
    expect(err?.message).toMatch(message);
    expect(() => fromCSR(l)).toThrow(LayoutError);
  });

  it('rejects any out-of-range column written into a random valid layout', () => {
    fc.assert(
      fc.property(matrixArb({ rows: fc.integer({ min: 1, max: 6 }), cols: fc.integer({ min: 1, max: 6 }) }), fc.nat(), fc.integer({ min: 0, max: 5 }), (t, pick, extra) => {
        const l = toCSR(t);
        fc.pre(l.indices.length > 0);
        const p = pick % l.indices.length;
        l.indices[p] = t.shape[1]! + extra;
        expect(thrown(() => validateCSR(l))?.message).toMatch(new RegExp(`indices\\[${p}\\]`));
      }),
    );
  });
});
