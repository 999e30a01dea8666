// Argument validators shared by every implementation of a kernel. A native kernel calls the same
// function before handing pointers to C++, so a bad call fails with the same typed error everywhere.
import { ArgumentError, DTypeError, LayoutError, ShapeError } from '../errors.js';
import { indexBitsFor, packedByteLength, readPacked } from '../layouts/packed.js';
import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';
import type { GemmArgs, SpmmBlockArgs, SpmmCSRArgs, SpmmDenseArgs, SpmmNMArgs } from './types.js';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}

function checkArgsObject(kernel: string, args: unknown): asserts args is Record<string, unknown> {
  if (typeof args !== 'object' || args === null) {
    throw new ArgumentError(`${kernel}: expected an argument object, got ${describe(args)}`);
  }
}

function checkDim(kernel: string, name: string, value: unknown): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new ShapeError(`${kernel}: ${name} must be a non-negative integer, got ${describe(value)}`);
  }
}

function checkOffset(kernel: string, name: string, value: unknown): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new ShapeError(`${kernel}: ${name} must be a non-negative integer, got ${describe(value)}`);
  }
}

function checkFloat32(kernel: string, name: string, value: unknown): asserts value is Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new DTypeError(`${kernel}: ${name} must be a Float32Array, got ${describe(value)}`);
  }
}

function checkScalar(kernel: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new ArgumentError(`${kernel}: ${name} must be a number, got ${describe(value)}`);
  }
}

function checkFlag(kernel: string, name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new ArgumentError(`${kernel}: ${name} must be a boolean, got ${describe(value)}`);
  }
}

/** BLAS rule: the leading dimension covers a full stored row and is at least 1 even for empty matrices. */
function checkLeadingDim(kernel: string, name: string, ld: unknown, cols: number, what: string): asserts ld is number {
  const min = Math.max(1, cols);
  if (!Number.isInteger(ld) || (ld as number) < min) {
    throw new ShapeError(`${kernel}: ${name} must be an integer >= max(1, ${cols}) = ${min} (${what}), got ${describe(ld)}`);
  }
}

/** The last element a row-major [rows, cols] matrix at (offset, ld) touches must lie inside the array. */
function checkExtent(kernel: string, name: string, array: Float32Array, offset: number, ld: number, rows: number, cols: number): void {
  if (rows === 0 || cols === 0) return;
  const end = offset + (rows - 1) * ld + cols;
  if (end > array.length) {
    throw new ShapeError(
      `${kernel}: ${name} has length ${array.length} but a [${rows}, ${cols}] matrix at offset ${offset} with leading dimension ${ld} needs ${end}`,
    );
  }
}

/** Validates gemm arguments; throws ShapeError, DTypeError or ArgumentError naming the argument. */
export function validateGemmArgs(args: GemmArgs): void {
  const k = 'gemm';
  checkArgsObject(k, args);
  checkFlag(k, 'transA', args.transA);
  checkFlag(k, 'transB', args.transB);
  checkDim(k, 'm', args.m);
  checkDim(k, 'n', args.n);
  checkDim(k, 'k', args.k);
  checkScalar(k, 'alpha', args.alpha);
  checkScalar(k, 'beta', args.beta);
  checkFloat32(k, 'a', args.a);
  checkFloat32(k, 'b', args.b);
  checkFloat32(k, 'c', args.c);
  checkOffset(k, 'aOffset', args.aOffset);
  checkOffset(k, 'bOffset', args.bOffset);
  checkOffset(k, 'cOffset', args.cOffset);
  const { m, n, k: inner, transA, transB } = args;
  const [aRows, aCols] = transA ? [inner, m] : [m, inner];
  const [bRows, bCols] = transB ? [n, inner] : [inner, n];
  checkLeadingDim(k, 'lda', args.lda, aCols, transA ? 'A is stored [k, m] when transA is true' : 'A is stored [m, k]');
  checkLeadingDim(k, 'ldb', args.ldb, bCols, transB ? 'B is stored [n, k] when transB is true' : 'B is stored [k, n]');
  checkLeadingDim(k, 'ldc', args.ldc, n, 'C is [m, n]');
  // With alpha = 0 A and B are never read, but BLAS still requires them to be well-formed; so do we.
  checkExtent(k, 'a', args.a, args.aOffset, args.lda, aRows, aCols);
  checkExtent(k, 'b', args.b, args.bOffset, args.ldb, bRows, bCols);
  checkExtent(k, 'c', args.c, args.cOffset, args.ldc, m, n);
}

function checkMatrixShape(kernel: string, shape: unknown): asserts shape is [number, number] {
  if (!Array.isArray(shape) || shape.length !== 2) {
    throw new ShapeError(`${kernel}: a.shape must be [rows, cols], got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : describe(shape)}`);
  }
  checkDim(kernel, 'a.shape[0]', shape[0]);
  checkDim(kernel, 'a.shape[1]', shape[1]);
}

function checkLayoutHead(kernel: string, a: unknown, format: string): asserts a is Record<string, unknown> {
  if (typeof a !== 'object' || a === null) throw new LayoutError(`${kernel}: a must be a ${format} layout, got ${describe(a)}`);
  const layout = a as { format?: unknown; dtype?: unknown; values?: unknown; shape?: unknown };
  if (layout.format !== format) {
    throw new LayoutError(`${kernel}: a.format must be '${format}', got ${JSON.stringify(layout.format)}`);
  }
  if (layout.dtype !== 'float32') throw new DTypeError(`${kernel}: a.dtype must be 'float32', got ${JSON.stringify(layout.dtype)}`);
  checkFloat32(kernel, 'a.values', layout.values);
  checkMatrixShape(kernel, layout.shape);
}

/** indptr of `rows` compressed rows over `indices`: starts at 0, never decreases, ends inside indices. */
function checkIndptr(kernel: string, indptr: unknown, rows: number, indices: Int32Array): number {
  if (!(indptr instanceof Int32Array)) throw new LayoutError(`${kernel}: a.indptr must be an Int32Array, got ${describe(indptr)}`);
  if (indptr.length !== rows + 1) {
    throw new LayoutError(`${kernel}: a.indptr has length ${indptr.length}, expected ${rows + 1} (rows + 1)`);
  }
  if (indptr[0] !== 0) throw new LayoutError(`${kernel}: a.indptr[0] must be 0, got ${indptr[0]}`);
  for (let r = 0; r < rows; r++) {
    if (indptr[r + 1]! < indptr[r]!) {
      throw new LayoutError(`${kernel}: a.indptr decreases at ${r + 1} (${indptr[r]} -> ${indptr[r + 1]})`);
    }
  }
  const nnz = indptr[rows]!;
  if (nnz > indices.length) {
    throw new LayoutError(`${kernel}: a.indptr[${rows}] = ${nnz} exceeds a.indices.length = ${indices.length}`);
  }
  return nnz;
}

function checkIndices(kernel: string, indices: unknown): asserts indices is Int32Array {
  if (!(indices instanceof Int32Array)) throw new LayoutError(`${kernel}: a.indices must be an Int32Array, got ${describe(indices)}`);
}

function checkIndexRange(kernel: string, indices: Int32Array, count: number, limit: number, what: string): void {
  for (let p = 0; p < count; p++) {
    const j = indices[p]!;
    if (j < 0 || j >= limit) throw new LayoutError(`${kernel}: a.indices[${p}] = ${j} is outside [0, ${limit}) (${what})`);
  }
}

/** Checks a CSR layout's structure in O(rows + nnz): pointer monotonicity, lengths, column range. */
function validateCSRLayout(a: CSRLayout<'float32'>, kernel: string): void {
  checkLayoutHead(kernel, a, 'csr');
  const [rows, cols] = a.shape;
  checkIndices(kernel, a.indices);
  if (a.values.length !== a.indices.length) {
    throw new LayoutError(`${kernel}: a.values has length ${a.values.length} but a.indices has ${a.indices.length}`);
  }
  const nnz = checkIndptr(kernel, a.indptr, rows, a.indices);
  checkIndexRange(kernel, a.indices, nnz, cols, 'column');
}

/** Checks an N:M layout: 1 <= n < m, cols % m === 0, value and metadata lengths, in-group positions < m. */
function validateNMLayout(a: NMLayout<'float32'>, kernel: string): void {
  checkLayoutHead(kernel, a, 'nm');
  const [rows, cols] = a.shape;
  const { n, m } = a;
  if (!Number.isInteger(m) || m < 2 || m > 1 << 24) throw new LayoutError(`${kernel}: a.m must be an integer in [2, 2^24], got ${describe(m)}`);
  if (!Number.isInteger(n) || n < 1 || n >= m) throw new LayoutError(`${kernel}: a.n must be an integer with 1 <= n < m = ${m}, got ${describe(n)}`);
  if (cols % m !== 0) throw new LayoutError(`${kernel}: a.shape[1] = ${cols} is not a multiple of m = ${m}`);
  const bits = indexBitsFor(m);
  if (a.indexBits !== bits) throw new LayoutError(`${kernel}: a.indexBits must be ${bits} for m = ${m}, got ${describe(a.indexBits)}`);
  const count = rows * (cols / m) * n;
  if (a.values.length !== count) {
    throw new LayoutError(`${kernel}: a.values has length ${a.values.length}, expected rows * cols / m * n = ${count}`);
  }
  if (!(a.indices instanceof Uint8Array)) throw new LayoutError(`${kernel}: a.indices must be a Uint8Array, got ${describe(a.indices)}`);
  const bytes = packedByteLength(count, bits);
  if (a.indices.length < bytes) {
    throw new LayoutError(`${kernel}: a.indices has ${a.indices.length} bytes, ${count} positions at ${bits} bits need ${bytes}`);
  }
  // Only when m is not a power of two can a packed position reach m or beyond.
  if (1 << bits !== m) {
    for (let q = 0; q < count; q++) {
      const pos = readPacked(a.indices, bits, q);
      if (pos >= m) throw new LayoutError(`${kernel}: group position ${q} is ${pos}, outside [0, ${m})`);
    }
  }
}

/** Checks a BSR layout: positive block shape, block-row pointers, block-column range, value length. */
function validateBSRLayout(a: BSRLayout<'float32'>, kernel: string): void {
  checkLayoutHead(kernel, a, 'bsr');
  const [rows, cols] = a.shape;
  const bs = a.blockShape as unknown;
  if (!Array.isArray(bs) || bs.length !== 2 || !bs.every((d) => Number.isInteger(d) && d > 0)) {
    throw new LayoutError(`${kernel}: a.blockShape must be two positive integers, got ${Array.isArray(bs) ? `[${bs.join(', ')}]` : describe(bs)}`);
  }
  const [br, bc] = a.blockShape;
  checkIndices(kernel, a.indices);
  if (a.values.length !== a.indices.length * br * bc) {
    throw new LayoutError(
      `${kernel}: a.values has length ${a.values.length}, expected a.indices.length * ${br} * ${bc} = ${a.indices.length * br * bc}`,
    );
  }
  const nnzb = checkIndptr(kernel, a.indptr, Math.ceil(rows / br), a.indices);
  checkIndexRange(kernel, a.indices, nnzb, Math.ceil(cols / bc), 'block column');
}

function validateSpmmDense(kernel: string, args: SpmmDenseArgs, rows: number, inner: number): void {
  checkDim(kernel, 'n', args.n);
  checkScalar(kernel, 'alpha', args.alpha);
  checkScalar(kernel, 'beta', args.beta);
  checkFloat32(kernel, 'b', args.b);
  checkFloat32(kernel, 'c', args.c);
  checkOffset(kernel, 'bOffset', args.bOffset);
  checkOffset(kernel, 'cOffset', args.cOffset);
  checkLeadingDim(kernel, 'ldb', args.ldb, args.n, 'B is [a.shape[1], n]');
  checkLeadingDim(kernel, 'ldc', args.ldc, args.n, 'C is [a.shape[0], n]');
  checkExtent(kernel, 'b', args.b, args.bOffset, args.ldb, inner, args.n);
  checkExtent(kernel, 'c', args.c, args.cOffset, args.ldc, rows, args.n);
}

/** Validates spmmCSR arguments (layout structure included). */
export function validateSpmmCSRArgs(args: SpmmCSRArgs): void {
  checkArgsObject('spmmCSR', args);
  validateCSRLayout(args.a, 'spmmCSR');
  validateSpmmDense('spmmCSR', args, args.a.shape[0], args.a.shape[1]);
}

/** Validates spmmNM arguments (layout structure included). */
export function validateSpmmNMArgs(args: SpmmNMArgs): void {
  checkArgsObject('spmmNM', args);
  validateNMLayout(args.a, 'spmmNM');
  validateSpmmDense('spmmNM', args, args.a.shape[0], args.a.shape[1]);
}

/** Validates spmmBlock arguments (layout structure included). */
export function validateSpmmBlockArgs(args: SpmmBlockArgs): void {
  checkArgsObject('spmmBlock', args);
  validateBSRLayout(args.a, 'spmmBlock');
  validateSpmmDense('spmmBlock', args, args.a.shape[0], args.a.shape[1]);
}
