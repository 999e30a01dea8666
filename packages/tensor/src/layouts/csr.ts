// Compressed sparse rows: indptr[r]..indptr[r+1] delimit row r's entries in indices (columns,
// strictly increasing) and values. The layout spmm kernels and most sparse libraries expect.

import { allocStorage, DType, Storage } from '../dtype.js';
import { ShapeError } from '../errors.js';
import { Tensor, zeros } from '../tensor.js';
import type { CSRLayout } from './types.js';
import { checkArray, checkCompressedRows, checkLayoutBase, isZeroRaw, layoutFail, matrixInput } from './util.js';

const MAX_INT32 = 0x7fffffff;

/** CSR layout of a 2-D dense tensor of any strides; exact zeros (±0) are dropped. */
export function toCSR<D extends DType>(dense: Tensor<D>): CSRLayout<D> {
  const [t, rows, cols] = matrixInput(dense, 'toCSR');
  const { data: src, dtype, offset } = t;
  const [s0, s1] = t.stride as [number, number];
  const indptr = new Int32Array(rows + 1);
  let nnz = 0;
  for (let i = 0; i < rows; i++) {
    const base = offset + i * s0;
    for (let j = 0; j < cols; j++) if (!isZeroRaw(dtype, src[base + j * s1]!)) nnz++;
    if (nnz > MAX_INT32) throw new ShapeError(`toCSR: more than 2^31 - 1 non-zeros do not fit Int32 indptr`);
    indptr[i + 1] = nnz;
  }
  const indices = new Int32Array(nnz);
  const values = allocStorage(dtype, nnz) as Storage<D>;
  let k = 0;
  for (let i = 0; i < rows; i++) {
    const base = offset + i * s0;
    for (let j = 0; j < cols; j++) {
      const raw = src[base + j * s1]!;
      if (!isZeroRaw(dtype, raw)) {
        indices[k] = j;
        values[k++] = raw;
      }
    }
  }
  return { format: 'csr', shape: [rows, cols], dtype, indptr, indices, values };
}

/**
 * Throws LayoutError naming the field and index unless the CSR layout is consistent: indptr has rows + 1
 * entries, starts at 0, never decreases and ends at nnz; indices lie in [0, cols) and increase within each row.
 */
export function validateCSR(layout: CSRLayout): void {
  const where = 'validateCSR';
  checkLayoutBase(layout, 'csr', where, 2);
  checkArray(where, 'indptr', layout.indptr, Int32Array);
  checkArray(where, 'indices', layout.indices, Int32Array);
  checkCompressedRows(where, layout.indptr, layout.indices, layout.shape[0], layout.shape[1], 'row', 'column');
  if (layout.values.length !== layout.indices.length) {
    layoutFail(where, `values has ${layout.values.length} entries but indices has ${layout.indices.length}`);
  }
}

/** Dense contiguous tensor of a CSR layout (validates first). */
export function fromCSR<D extends DType>(layout: CSRLayout<D>): Tensor<D> {
  validateCSR(layout);
  const [rows, cols] = layout.shape;
  const out = zeros([rows, cols], layout.dtype);
  const dst = out.data;
  const { indptr, indices, values } = layout;
  for (let r = 0; r < rows; r++) {
    for (let p = indptr[r]!; p < indptr[r + 1]!; p++) dst[r * cols + indices[p]!] = values[p]!;
  }
  return out;
}

/** Bytes of the layout's arrays (indptr + indices + values). */
export function csrByteLength(layout: CSRLayout): number {
  return layout.indptr.byteLength + layout.indices.byteLength + layout.values.byteLength;
}
