import type { DType, Storage } from '../dtype.js';

/**
 * Sparse layouts. Each is a plain object of typed arrays plus metadata, so it can cross package
 * boundaries and be saved to safetensors as named parts. `values` use the layout's dtype storage.
 */

/** Packed bit mask (LSB-first within each byte, row-major over the flat index) plus the kept values in order. */
export interface BitmaskLayout<D extends DType = DType> {
  format: 'bitmask';
  shape: number[];
  dtype: D;
  bits: Uint8Array;
  values: Storage<D>;
}

/** Compressed sparse rows of a matrix. */
export interface CSRLayout<D extends DType = DType> {
  format: 'csr';
  shape: [number, number];
  dtype: D;
  indptr: Int32Array;
  indices: Int32Array;
  values: Storage<D>;
}

/**
 * Block-sparse rows (BSR) with any block shape [br, bc]. Edge blocks of a matrix whose sides are not
 * multiples of the block shape are stored full size with the out-of-range part zero.
 * `values` holds each stored block row-major, blocks in indptr order.
 */
export interface BSRLayout<D extends DType = DType> {
  format: 'bsr';
  shape: [number, number];
  blockShape: [number, number];
  dtype: D;
  indptr: Int32Array;
  indices: Int32Array;
  values: Storage<D>;
}

/**
 * N:M compressed matrix: each row is split into groups of M consecutive columns (cols % M === 0);
 * each group keeps exactly N values. `values` is [rows, cols/M*N] row-major; `indices` holds, for each
 * kept value in the same order, its position inside its group (0..M-1), packed LSB-first at
 * `indexBits = ceil(log2(M))` bits each (2 bits for 2:4), so metadata costs what hardware formats cost.
 */
export interface NMLayout<D extends DType = DType> {
  format: 'nm';
  shape: [number, number];
  n: number;
  m: number;
  dtype: D;
  indexBits: number;
  values: Storage<D>;
  indices: Uint8Array;
}

/** Coordinate list with delta-coded flat (row-major) indices: deltas[0] is the first index, then gaps. */
export interface COOLayout<D extends DType = DType> {
  format: 'coo';
  shape: number[];
  dtype: D;
  deltas: Uint32Array;
  values: Storage<D>;
}

export type SparseLayout<D extends DType = DType> = BitmaskLayout<D> | CSRLayout<D> | BSRLayout<D> | NMLayout<D> | COOLayout<D>;

export type SparseFormat = SparseLayout['format'];
