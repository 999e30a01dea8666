// Block-sparse rows: CSR over a grid of [br, bc] blocks, each stored block dense and row-major.
// What block-sparse kernels (and block-sparse attention) consume; any block shape, edge blocks padded.

import { allocStorage, DType, Storage } from '../dtype.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { Tensor, zeros } from '../tensor.js';
import type { BSRLayout } from './types.js';
import { checkArray, checkCompressedRows, checkLayoutBase, isZeroRaw, layoutFail, matrixInput } from './util.js';

export interface ToBSROptions {
  /** Block shape [br, bc], positive integers; the matrix sides need not be multiples of it. */
  blockShape: readonly [number, number] | readonly number[];
}

function isBlockShape(blockShape: unknown): blockShape is [number, number] {
  return Array.isArray(blockShape) && blockShape.length === 2 && blockShape.every((d) => Number.isSafeInteger(d) && d > 0);
}

/**
 * BSR layout of a 2-D dense tensor of any strides. A block is stored when any entry in it is non-zero
 * (±0 count as zero); stored blocks keep their zeros, and edge blocks are zero past the matrix.
 */
export function toBSR<D extends DType>(dense: Tensor<D>, opts: ToBSROptions): BSRLayout<D> {
  const [t, rows, cols] = matrixInput(dense, 'toBSR');
  const blockShape = opts?.blockShape;
  if (!isBlockShape(blockShape)) {
    throw new ArgumentError(`toBSR: blockShape must be two positive integers, got ${JSON.stringify(blockShape)}`);
  }
  const [br, bc] = blockShape;
  const { data: src, dtype, offset } = t;
  const [s0, s1] = t.stride as [number, number];
  const R = Math.ceil(rows / br);
  const C = Math.ceil(cols / bc);
  const indptr = new Int32Array(R + 1);
  const kept: number[] = [];
  const hit = new Uint8Array(C);
  for (let bi = 0; bi < R; bi++) {
    hit.fill(0);
    for (let i = bi * br; i < Math.min(rows, (bi + 1) * br); i++) {
      const base = offset + i * s0;
      for (let j = 0; j < cols; j++) if (!isZeroRaw(dtype, src[base + j * s1]!)) hit[(j / bc) | 0] = 1;
    }
    for (let bj = 0; bj < C; bj++) if (hit[bj]) kept.push(bj);
    if (kept.length > 0x7fffffff) throw new ShapeError('toBSR: more than 2^31 - 1 blocks do not fit Int32 indptr');
    indptr[bi + 1] = kept.length;
  }
  const indices = Int32Array.from(kept);
  const area = br * bc;
  const values = allocStorage(dtype, kept.length * area) as Storage<D>;
  for (let bi = 0; bi < R; bi++) {
    for (let p = indptr[bi]!; p < indptr[bi + 1]!; p++) {
      const c0 = indices[p]! * bc;
      const jEnd = Math.min(cols, c0 + bc);
      for (let a = 0; a < br; a++) {
        const i = bi * br + a;
        if (i >= rows) break;
        const base = offset + i * s0;
        const out = p * area + a * bc - c0;
        for (let j = c0; j < jEnd; j++) values[out + j] = src[base + j * s1]!;
      }
    }
  }
  return { format: 'bsr', shape: [rows, cols], blockShape: [br, bc], dtype, indptr, indices, values };
}

/**
 * Throws LayoutError naming the field and index unless the BSR layout is consistent: positive blockShape,
 * CSR rules over the block grid, values of nnzb * br * bc entries, and zeros past the matrix in edge blocks.
 */
export function validateBSR(layout: BSRLayout): void {
  const where = 'validateBSR';
  checkLayoutBase(layout, 'bsr', where, 2);
  if (!isBlockShape(layout.blockShape)) {
    layoutFail(where, `blockShape must be two positive integers, got ${JSON.stringify(layout.blockShape)}`);
  }
  const [br, bc] = layout.blockShape;
  checkArray(where, 'indptr', layout.indptr, Int32Array);
  checkArray(where, 'indices', layout.indices, Int32Array);
  const [rows, cols] = layout.shape;
  const R = Math.ceil(rows / br);
  const C = Math.ceil(cols / bc);
  checkCompressedRows(where, layout.indptr, layout.indices, R, C, 'block row', 'block column');
  const area = br * bc;
  const { values, indices, indptr, dtype } = layout;
  if (values.length !== indices.length * area) {
    layoutFail(where, `values has ${values.length} entries but ${indices.length} blocks of ${br}x${bc} need ${indices.length * area}`);
  }
  // Padding of edge blocks must be zero, or the layout would claim entries outside the matrix.
  if (rows % br === 0 && cols % bc === 0) return;
  for (let bi = 0; bi < R; bi++) {
    for (let p = indptr[bi]!; p < indptr[bi + 1]!; p++) {
      const c0 = indices[p]! * bc;
      for (let a = 0; a < br; a++) {
        for (let b = 0; b < bc; b++) {
          if (bi * br + a < rows && c0 + b < cols) continue;
          const q = p * area + a * bc + b;
          if (!isZeroRaw(dtype, values[q]!)) {
            layoutFail(where, `values[${q}] (block ${p}, entry [${a}, ${b}]) lies outside the ${rows}x${cols} matrix but is not zero`);
          }
        }
      }
    }
  }
}

/** Dense contiguous tensor of a BSR layout (validates first). */
export function fromBSR<D extends DType>(layout: BSRLayout<D>): Tensor<D> {
  validateBSR(layout);
  const [rows, cols] = layout.shape;
  const [br, bc] = layout.blockShape;
  const out = zeros([rows, cols], layout.dtype);
  const dst = out.data;
  const { indptr, indices, values } = layout;
  const area = br * bc;
  const R = Math.ceil(rows / br);
  for (let bi = 0; bi < R; bi++) {
    for (let p = indptr[bi]!; p < indptr[bi + 1]!; p++) {
      const c0 = indices[p]! * bc;
      const jEnd = Math.min(cols, c0 + bc);
      for (let a = 0; a < br && bi * br + a < rows; a++) {
        const row = (bi * br + a) * cols;
        const src = p * area + a * bc - c0;
        for (let j = c0; j < jEnd; j++) dst[row + j] = values[src + j]!;
      }
    }
  }
  return out;
}

/** Bytes of the layout's arrays (indptr + indices + values). */
export function bsrByteLength(layout: BSRLayout): number {
  return layout.indptr.byteLength + layout.indices.byteLength + layout.values.byteLength;
}
