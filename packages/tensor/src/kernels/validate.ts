// Argument validators shared by every implementation of a kernel. A native kernel calls the same
// function before handing pointers to C++, so a bad call fails with the same typed error everywhere.
import { ArgumentError, DTypeError, LayoutError, ShapeError } from '../errors.js';
import { indexBitsFor, packedByteLength, readPacked } from '../layouts/packed.js';
import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';
import type {
  ActiveEntries,
  AttentionArgs,
  AttentionBitmapKVArgs,
  CholeskyF64Args,
  BlockSparseAttentionArgs,
  ActivationF32Args,
  ColumnMomentsF32Args,
  BlockSparseAttentionBackwardArgs,
  CSRPattern,
  GemmArgs,
  GemvSparseInputArgs,
  LinearCSRArgs,
  LinearCSRGradInputArgs,
  MaskedAdamArgs,
  MaskedSGDArgs,
  RowTopKScaledAbsArgs,
  SddmmCSRArgs,
  SpmmBlockArgs,
  SpmmCSRArgs,
  SpmmDenseArgs,
  SpmmNMArgs,
  TriangularInverseF64Args,
} from './types.js';

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
function checkExtent(kernel: string, name: string, array: Float32Array | Float64Array, offset: number, ld: number, rows: number, cols: number): void {
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

function checkMatrixShape(kernel: string, shape: unknown, name = 'a'): asserts shape is [number, number] {
  if (!Array.isArray(shape) || shape.length !== 2) {
    throw new ShapeError(`${kernel}: ${name}.shape must be [rows, cols], got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : describe(shape)}`);
  }
  checkDim(kernel, `${name}.shape[0]`, shape[0]);
  checkDim(kernel, `${name}.shape[1]`, shape[1]);
}

function checkLayoutHead(kernel: string, a: unknown, format: string, name = 'a'): asserts a is Record<string, unknown> {
  if (typeof a !== 'object' || a === null) throw new LayoutError(`${kernel}: ${name} must be a ${format} layout, got ${describe(a)}`);
  const layout = a as { format?: unknown; dtype?: unknown; values?: unknown; shape?: unknown };
  if (layout.format !== format) {
    throw new LayoutError(`${kernel}: ${name}.format must be '${format}', got ${JSON.stringify(layout.format)}`);
  }
  if (layout.dtype !== 'float32') throw new DTypeError(`${kernel}: ${name}.dtype must be 'float32', got ${JSON.stringify(layout.dtype)}`);
  checkFloat32(kernel, `${name}.values`, layout.values);
  checkMatrixShape(kernel, layout.shape, name);
}

/** indptr of `rows` compressed rows over `indices`: starts at 0, never decreases, ends inside indices. */
function checkIndptr(kernel: string, indptr: unknown, rows: number, indices: Int32Array, name = 'a'): number {
  if (!(indptr instanceof Int32Array)) throw new LayoutError(`${kernel}: ${name}.indptr must be an Int32Array, got ${describe(indptr)}`);
  if (indptr.length !== rows + 1) {
    throw new LayoutError(`${kernel}: ${name}.indptr has length ${indptr.length}, expected ${rows + 1} (rows + 1)`);
  }
  if (indptr[0] !== 0) throw new LayoutError(`${kernel}: ${name}.indptr[0] must be 0, got ${indptr[0]}`);
  for (let r = 0; r < rows; r++) {
    if (indptr[r + 1]! < indptr[r]!) {
      throw new LayoutError(`${kernel}: ${name}.indptr decreases at ${r + 1} (${indptr[r]} -> ${indptr[r + 1]})`);
    }
  }
  const nnz = indptr[rows]!;
  if (nnz > indices.length) {
    throw new LayoutError(`${kernel}: ${name}.indptr[${rows}] = ${nnz} exceeds ${name}.indices.length = ${indices.length}`);
  }
  return nnz;
}

function checkIndices(kernel: string, indices: unknown, name = 'a'): asserts indices is Int32Array {
  if (!(indices instanceof Int32Array)) throw new LayoutError(`${kernel}: ${name}.indices must be an Int32Array, got ${describe(indices)}`);
}

/**
 * Options of the sparse-layout validators. `indexRange: false` skips the O(nnz) checks that every
 * stored column index lies in range (CSR, BSR) and that every packed N:M position is below m (m not
 * a power of two), for a backend whose own entry point makes that check anyway
 * (the native kernels do it in C++ at a fraction of the cost) and that re-validates with it on when
 * its entry point refuses the indices, so the caller still gets this module's error.
 */
export interface LayoutCheckOptions {
  indexRange?: boolean;
}

function checkIndexRange(kernel: string, indices: Int32Array, count: number, limit: number, what: string, name = 'a'): void {
  for (let p = 0; p < count; p++) {
    const j = indices[p]!;
    if (j < 0 || j >= limit) throw new LayoutError(`${kernel}: ${name}.indices[${p}] = ${j} is outside [0, ${limit}) (${what})`);
  }
}

/** Checks a CSR layout's structure in O(rows + nnz): pointer monotonicity, lengths, column range. Returns nnz. */
function validateCSRLayout(a: CSRLayout<'float32'>, kernel: string, name = 'a', options: LayoutCheckOptions = {}): number {
  checkLayoutHead(kernel, a, 'csr', name);
  const [rows, cols] = a.shape;
  checkIndices(kernel, a.indices, name);
  if (a.values.length !== a.indices.length) {
    throw new LayoutError(`${kernel}: ${name}.values has length ${a.values.length} but ${name}.indices has ${a.indices.length}`);
  }
  const nnz = checkIndptr(kernel, a.indptr, rows, a.indices, name);
  if (options.indexRange !== false) checkIndexRange(kernel, a.indices, nnz, cols, 'column', name);
  return nnz;
}

/** Checks a CSR pattern (shape, indptr, indices; values are not looked at). Returns nnz. */
function validateCSRPattern(p: CSRPattern, kernel: string, name: string, options: LayoutCheckOptions = {}): number {
  if (typeof p !== 'object' || p === null) throw new LayoutError(`${kernel}: ${name} must be a CSR pattern { shape, indptr, indices }, got ${describe(p)}`);
  checkMatrixShape(kernel, p.shape, name);
  checkIndices(kernel, p.indices, name);
  const nnz = checkIndptr(kernel, p.indptr, p.shape[0], p.indices, name);
  if (options.indexRange !== false) checkIndexRange(kernel, p.indices, nnz, p.shape[1], 'column', name);
  return nnz;
}

/** Checks an N:M layout: 1 <= n < m, cols % m === 0, value and metadata lengths, in-group positions < m. */
function validateNMLayout(a: NMLayout<'float32'>, kernel: string, options: LayoutCheckOptions = {}): void {
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
  if (1 << bits !== m && options.indexRange !== false) {
    for (let q = 0; q < count; q++) {
      const pos = readPacked(a.indices, bits, q);
      if (pos >= m) throw new LayoutError(`${kernel}: group position ${q} is ${pos}, outside [0, ${m})`);
    }
  }
}

/** Checks a BSR layout: positive block shape, block-row pointers, block-column range, value length. */
function validateBSRLayout(a: BSRLayout<'float32'>, kernel: string, options: LayoutCheckOptions = {}): void {
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
  if (options.indexRange !== false) checkIndexRange(kernel, a.indices, nnzb, Math.ceil(cols / bc), 'block column');
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
export function validateSpmmCSRArgs(args: SpmmCSRArgs, options: LayoutCheckOptions = {}): void {
  checkArgsObject('spmmCSR', args);
  validateCSRLayout(args.a, 'spmmCSR', 'a', options);
  validateSpmmDense('spmmCSR', args, args.a.shape[0], args.a.shape[1]);
}

/** Validates spmmNM arguments (layout structure included). */
export function validateSpmmNMArgs(args: SpmmNMArgs, options: LayoutCheckOptions = {}): void {
  checkArgsObject('spmmNM', args);
  validateNMLayout(args.a, 'spmmNM', options);
  validateSpmmDense('spmmNM', args, args.a.shape[0], args.a.shape[1]);
}

/** Validates spmmBlock arguments (layout structure included). */
export function validateSpmmBlockArgs(args: SpmmBlockArgs, options: LayoutCheckOptions = {}): void {
  checkArgsObject('spmmBlock', args);
  validateBSRLayout(args.a, 'spmmBlock', options);
  validateSpmmDense('spmmBlock', args, args.a.shape[0], args.a.shape[1]);
}

/** Element range [first, end) of a row-major [rows, cols] matrix at (offset, ld); empty when it has no elements. */
function extent(offset: number, ld: number, rows: number, cols: number): [number, number] {
  return rows === 0 || cols === 0 ? [offset, offset] : [offset, offset + (rows - 1) * ld + cols];
}

/** Throws ArgumentError when two element ranges of 4-byte typed arrays share memory. */
function checkDisjoint(kernel: string, out: [string, Float32Array, [number, number]], inputs: Array<[string, Float32Array | Int32Array, [number, number]]>): void {
  const [outName, o, [o0, o1]] = out;
  if (o1 <= o0) return;
  const ob0 = o.byteOffset + o0 * 4;
  const ob1 = o.byteOffset + o1 * 4;
  for (const [name, x, [x0, x1]] of inputs) {
    if (x1 <= x0 || x.buffer !== o.buffer) continue;
    const xb0 = x.byteOffset + x0 * 4;
    const xb1 = x.byteOffset + x1 * 4;
    if (xb0 < ob1 && ob0 < xb1) throw new ArgumentError(`${kernel}: ${outName} overlaps ${name} (they share memory); pass separate arrays`);
  }
}

/**
 * The dense operands of the token-major sparse-layer kernels: an input [tokens, inCols] at
 * (inName, inName + 'Offset', ldIn) and an output [tokens, outCols] that must not overlap it, nor
 * the weight's arrays (which native code reads while it writes the output).
 */
function validateTokenMajor(
  kernel: string,
  args: Record<string, unknown>,
  input: [name: string, ld: string, cols: number],
  output: [name: string, ld: string, cols: number],
  w: CSRLayout<'float32'>,
  nnz: number,
): void {
  checkDim(kernel, 'tokens', args.tokens);
  checkScalar(kernel, 'alpha', args.alpha);
  checkScalar(kernel, 'beta', args.beta);
  const tokens = args.tokens;
  const ranges: Array<[string, Float32Array, [number, number]]> = [];
  for (const [name, ldName, cols] of [input, output]) {
    const array = args[name];
    const offset = args[`${name}Offset`];
    const ld = args[ldName];
    checkFloat32(kernel, name, array);
    checkOffset(kernel, `${name}Offset`, offset);
    checkLeadingDim(kernel, ldName, ld, cols, `${name} is [tokens, ${cols}]`);
    checkExtent(kernel, name, array, offset, ld, tokens, cols);
    ranges.push([name, array, extent(offset, ld, tokens, cols)]);
  }
  checkDisjoint(kernel, ranges[1]!, [ranges[0]!, ...patternRanges(w, nnz, 'w'), ['w.values', w.values, [0, nnz]]]);
}

/** The index arrays of a CSR pattern as disjointness ranges. */
function patternRanges(p: CSRPattern, nnz: number, name: string): Array<[string, Int32Array, [number, number]]> {
  return [
    [`${name}.indptr`, p.indptr, [0, p.indptr.length]],
    [`${name}.indices`, p.indices, [0, nnz]],
  ];
}

/** Validates linearCSR arguments (weight layout structure included). */
export function validateLinearCSRArgs(args: LinearCSRArgs, options: LayoutCheckOptions = {}): void {
  const k = 'linearCSR';
  checkArgsObject(k, args);
  const nnz = validateCSRLayout(args.w, k, 'w', options);
  const [out, inp] = args.w.shape;
  validateTokenMajor(k, args as unknown as Record<string, unknown>, ['x', 'ldx', inp], ['y', 'ldy', out], args.w, nnz);
}

/** Validates linearCSRGradInput arguments (weight layout structure included). */
export function validateLinearCSRGradInputArgs(args: LinearCSRGradInputArgs, options: LayoutCheckOptions = {}): void {
  const k = 'linearCSRGradInput';
  checkArgsObject(k, args);
  const nnz = validateCSRLayout(args.w, k, 'w', options);
  const [out, inp] = args.w.shape;
  validateTokenMajor(k, args as unknown as Record<string, unknown>, ['dy', 'lddy', out], ['dx', 'lddx', inp], args.w, nnz);
}

/** Validates sddmmCSR arguments (pattern structure included); returns the number of stored entries. */
export function validateSddmmCSRArgs(args: SddmmCSRArgs, options: LayoutCheckOptions = {}): number {
  const k = 'sddmmCSR';
  checkArgsObject(k, args);
  const nnz = validateCSRPattern(args.pattern, k, 'pattern', options);
  const [rows, cols] = args.pattern.shape;
  checkDim(k, 'tokens', args.tokens);
  checkScalar(k, 'alpha', args.alpha);
  checkScalar(k, 'beta', args.beta);
  const ranges: Array<[string, Float32Array, [number, number]]> = [];
  for (const [name, ldName, width] of [
    ['dy', 'lddy', rows],
    ['x', 'ldx', cols],
  ] as const) {
    const array = args[name];
    const offset = args[`${name}Offset`];
    const ld = args[ldName];
    checkFloat32(k, name, array);
    checkOffset(k, `${name}Offset`, offset);
    checkLeadingDim(k, ldName, ld, width, `${name} is [tokens, ${width}]`);
    checkExtent(k, name, array, offset, ld, args.tokens, width);
    ranges.push([name, array, extent(offset, ld, args.tokens, width)]);
  }
  checkFloat32(k, 'out', args.out);
  checkOffset(k, 'outOffset', args.outOffset);
  if (args.outOffset + nnz > args.out.length) {
    throw new ShapeError(`${k}: out has length ${args.out.length} but ${nnz} stored entries at offset ${args.outOffset} need ${args.outOffset + nnz}`);
  }
  checkDisjoint(k, ['out', args.out, [args.outOffset, args.outOffset + nnz]], [...ranges, ...patternRanges(args.pattern, nnz, 'pattern')]);
  return nnz;
}

/** Validates gemvSparseInput arguments (the gemm rules, with W as A and transA = transW). */
export function validateGemvSparseInputArgs(args: GemvSparseInputArgs): void {
  const k = 'gemvSparseInput';
  checkArgsObject(k, args);
  checkFlag(k, 'transW', args.transW);
  checkDim(k, 'rows', args.rows);
  checkDim(k, 'cols', args.cols);
  checkDim(k, 'n', args.n);
  checkScalar(k, 'alpha', args.alpha);
  checkScalar(k, 'beta', args.beta);
  checkFloat32(k, 'w', args.w);
  checkFloat32(k, 'x', args.x);
  checkFloat32(k, 'y', args.y);
  checkOffset(k, 'wOffset', args.wOffset);
  checkOffset(k, 'xOffset', args.xOffset);
  checkOffset(k, 'yOffset', args.yOffset);
  const { rows, cols, n, transW } = args;
  const [wRows, wCols] = transW ? [cols, rows] : [rows, cols];
  checkLeadingDim(k, 'ldw', args.ldw, wCols, transW ? 'W is stored [cols, rows] when transW is true' : 'W is stored [rows, cols]');
  checkLeadingDim(k, 'ldx', args.ldx, n, 'X is [cols, n]');
  checkLeadingDim(k, 'ldy', args.ldy, n, 'Y is [rows, n]');
  checkExtent(k, 'w', args.w, args.wOffset, args.ldw, wRows, wCols);
  checkExtent(k, 'x', args.x, args.xOffset, args.ldx, cols, n);
  checkExtent(k, 'y', args.y, args.yOffset, args.ldy, rows, n);
  checkDisjoint(k, ['y', args.y, extent(args.yOffset, args.ldy, rows, n)], [
    ['w', args.w, extent(args.wOffset, args.ldw, wRows, wCols)],
    ['x', args.x, extent(args.xOffset, args.ldx, cols, n)],
  ]);
}

function validateAttentionCommon(kernel: string, args: AttentionArgs): void {
  checkArgsObject(kernel, args);
  checkDim(kernel, 'heads', args.heads);
  checkDim(kernel, 'seq', args.seq);
  checkDim(kernel, 'headDim', args.headDim);
  checkFlag(kernel, 'causal', args.causal);
  if (args.scale !== undefined && (typeof args.scale !== 'number' || !Number.isFinite(args.scale))) {
    throw new ArgumentError(`${kernel}: scale must be a finite number when given, got ${describe(args.scale)}`);
  }
  const rows = args.heads * args.seq;
  const d = args.headDim;
  const ranges: Array<[string, Float32Array, [number, number]]> = [];
  for (const name of ['q', 'k', 'v', 'out'] as const) {
    const array = args[name];
    const offset = args[`${name}Offset`];
    checkFloat32(kernel, name, array);
    checkOffset(kernel, `${name}Offset`, offset);
    checkExtent(kernel, name, array, offset, Math.max(1, d), rows, d);
    ranges.push([name, array, extent(offset, Math.max(1, d), rows, d)]);
  }
  checkDisjoint(kernel, ranges[3]!, ranges.slice(0, 3));
}

/** Validates denseAttention arguments: [heads, seq, headDim] operands that fit, out apart from q, k, v. */
export function validateAttentionArgs(args: AttentionArgs): void {
  validateAttentionCommon('denseAttention', args);
}

/** What the validators of the block-sparse attention kernels learn about the masks. */
export interface TileMaskInfo {
  /** ceil(seq / blockSize). */
  nb: number;
  /** blockMask is [heads, nb, nb] (else [nb, nb]). */
  blockMaskPerHead: boolean;
  /** elementMask is [heads, seq, seq] (else [seq, seq] or absent). */
  elementMaskPerHead: boolean;
  /** Some tile is partial (value 2). */
  hasPartial: boolean;
}

function checkTileMasks(
  k: string,
  heads: number,
  seq: number,
  blockSize: unknown,
  blockMask: unknown,
  elementMask: unknown,
): TileMaskInfo {
  if (!Number.isInteger(blockSize) || (blockSize as number) < 1) {
    throw new ShapeError(`${k}: blockSize must be a positive integer, got ${describe(blockSize)}`);
  }
  if (!(blockMask instanceof Uint8Array)) throw new LayoutError(`${k}: blockMask must be a Uint8Array, got ${describe(blockMask)}`);
  const nb = Math.ceil(seq / (blockSize as number));
  const shared = nb * nb;
  if (blockMask.length !== shared && blockMask.length !== heads * shared) {
    throw new LayoutError(
      `${k}: blockMask has length ${blockMask.length}; expected ${shared} ([${nb}, ${nb}] tiles, nb = ceil(seq / blockSize)) or ${heads * shared} (one mask per head)`,
    );
  }
  const hasPartial = blockMask.indexOf(2) !== -1;
  let elementMaskPerHead = false;
  if (elementMask !== undefined) {
    if (!(elementMask instanceof Uint8Array)) throw new LayoutError(`${k}: elementMask must be a Uint8Array when given, got ${describe(elementMask)}`);
    const one = Math.ceil((seq * seq) / 8);
    const all = Math.ceil((heads * seq * seq) / 8);
    if (elementMask.length !== one && elementMask.length !== all) {
      throw new LayoutError(
        `${k}: elementMask has length ${elementMask.length}; expected ${one} bytes ([seq, seq] bits, shared) or ${all} ([heads, seq, seq] bits, one mask per head)`,
      );
    }
    elementMaskPerHead = elementMask.length !== one;
  } else if (hasPartial) {
    throw new ArgumentError(`${k}: elementMask is required when blockMask has partial tiles (value 2)`);
  }
  return { nb, blockMaskPerHead: blockMask.length !== shared, elementMaskPerHead, hasPartial };
}

function checkLse(k: string, name: string, lse: unknown, offset: unknown, heads: number, seq: number): [string, Float32Array, [number, number]] {
  checkFloat32(k, name, lse);
  checkOffset(k, `${name}Offset`, offset);
  checkExtent(k, name, lse, offset, Math.max(1, seq), heads, seq);
  return [name, lse, extent(offset, Math.max(1, seq), heads, seq)];
}

/**
 * Validates blockSparseAttention arguments; the block mask is [nb, nb] or [heads, nb, nb], nb =
 * ceil(seq / blockSize), the element mask (required with partial tiles) [seq, seq] or [heads, seq, seq] bits.
 */
export function validateBlockSparseAttentionArgs(args: BlockSparseAttentionArgs): TileMaskInfo {
  const k = 'blockSparseAttention';
  validateAttentionCommon(k, args);
  const info = checkTileMasks(k, args.heads, args.seq, args.blockSize, args.blockMask, args.elementMask);
  if (args.lse !== undefined) {
    const lse = checkLse(k, 'lse', args.lse, args.lseOffset ?? 0, args.heads, args.seq);
    const d = Math.max(1, args.headDim);
    const rows = args.heads * args.seq;
    checkDisjoint(k, lse, [
      ['q', args.q, extent(args.qOffset, d, rows, args.headDim)],
      ['k', args.k, extent(args.kOffset, d, rows, args.headDim)],
      ['v', args.v, extent(args.vOffset, d, rows, args.headDim)],
      ['out', args.out, extent(args.outOffset, d, rows, args.headDim)],
    ]);
  }
  checkStats(k, args.stats);
  return info;
}

function checkStats(k: string, stats: unknown): void {
  if (stats === undefined) return;
  if (typeof stats !== 'object' || stats === null || typeof (stats as { tiles?: unknown }).tiles !== 'number') {
    throw new ArgumentError(`${k}: stats must be an object with a numeric tiles field when given, got ${describe(stats)}`);
  }
}

/** Validates blockSparseAttentionBackward arguments (the forward's shapes, plus dOut, lse and the three gradients). */
export function validateBlockSparseAttentionBackwardArgs(args: BlockSparseAttentionBackwardArgs): TileMaskInfo {
  const k = 'blockSparseAttentionBackward';
  checkArgsObject(k, args);
  checkDim(k, 'heads', args.heads);
  checkDim(k, 'seq', args.seq);
  checkDim(k, 'headDim', args.headDim);
  checkFlag(k, 'causal', args.causal);
  if (args.scale !== undefined && (typeof args.scale !== 'number' || !Number.isFinite(args.scale))) {
    throw new ArgumentError(`${k}: scale must be a finite number when given, got ${describe(args.scale)}`);
  }
  const rows = args.heads * args.seq;
  const d = args.headDim;
  const ranges = new Map<string, [string, Float32Array, [number, number]]>();
  for (const name of ['q', 'k', 'v', 'out', 'dOut', 'dq', 'dk', 'dv'] as const) {
    const array = args[name];
    const offset = args[`${name}Offset`];
    checkFloat32(k, name, array);
    checkOffset(k, `${name}Offset`, offset);
    checkExtent(k, name, array, offset, Math.max(1, d), rows, d);
    ranges.set(name, [name, array, extent(offset, Math.max(1, d), rows, d)]);
  }
  ranges.set('lse', checkLse(k, 'lse', args.lse, args.lseOffset, args.heads, args.seq));
  const inputs = ['q', 'k', 'v', 'out', 'dOut', 'lse'].map((n) => ranges.get(n)!);
  const outs = ['dq', 'dk', 'dv'].map((n) => ranges.get(n)!);
  for (let i = 0; i < outs.length; i++) checkDisjoint(k, outs[i]!, [...inputs, ...outs.slice(i + 1)]);
  const info = checkTileMasks(k, args.heads, args.seq, args.blockSize, args.blockMask, args.elementMask);
  checkStats(k, args.stats);
  return info;
}

/** Validates attentionBitmapKV arguments, including that each cache row holds as many values as its bitmap has bits set. */
export function validateAttentionBitmapKVArgs(args: AttentionBitmapKVArgs): void {
  const k = 'attentionBitmapKV';
  checkArgsObject(k, args);
  checkDim(k, 'heads', args.heads);
  checkDim(k, 'kvHeads', args.kvHeads);
  checkDim(k, 'headDim', args.headDim);
  checkDim(k, 'positions', args.positions);
  const { heads, kvHeads, headDim: d, positions } = args;
  if (heads > 0 && (kvHeads < 1 || heads % kvHeads !== 0)) {
    throw new ShapeError(`${k}: kvHeads must divide heads (${heads}), got ${describe(kvHeads)}`);
  }
  if (args.scale !== undefined && (typeof args.scale !== 'number' || !Number.isFinite(args.scale))) {
    throw new ArgumentError(`${k}: scale must be a finite number when given, got ${describe(args.scale)}`);
  }
  checkFloat32(k, 'q', args.q);
  checkOffset(k, 'qOffset', args.qOffset);
  checkExtent(k, 'q', args.q, args.qOffset, Math.max(1, d), heads, d);
  checkFloat32(k, 'out', args.out);
  checkOffset(k, 'outOffset', args.outOffset);
  checkExtent(k, 'out', args.out, args.outOffset, Math.max(1, d), heads, d);
  const rowBytes = Math.ceil(d / 8);
  const rowCount = positions * kvHeads;
  const padMask = d % 8 === 0 ? 0 : 0xff & ~((1 << (d % 8)) - 1);
  for (const which of ['k', 'v'] as const) {
    const bits = args[`${which}Bits`];
    const values = args[`${which}Values`];
    const start = args[`${which}Start`];
    if (!(bits instanceof Uint8Array)) throw new LayoutError(`${k}: ${which}Bits must be a Uint8Array, got ${describe(bits)}`);
    checkFloat32(k, `${which}Values`, values);
    if (!(start instanceof Int32Array)) throw new LayoutError(`${k}: ${which}Start must be an Int32Array, got ${describe(start)}`);
    if (bits.length !== rowCount * rowBytes) {
      throw new LayoutError(`${k}: ${which}Bits has length ${bits.length}; expected ${rowCount * rowBytes} ([positions ${positions}, kvHeads ${kvHeads}, ceil(headDim / 8) ${rowBytes}] bytes)`);
    }
    if (start.length !== rowCount + 1) throw new LayoutError(`${k}: ${which}Start has length ${start.length}; expected positions * kvHeads + 1 = ${rowCount + 1}`);
    if (start[0]! < 0) throw new LayoutError(`${k}: ${which}Start[0] = ${start[0]} is negative`);
    if (start[rowCount]! > values.length) {
      throw new LayoutError(`${k}: ${which}Start[${rowCount}] = ${start[rowCount]} is past the end of ${which}Values (length ${values.length})`);
    }
    // Whole 32-bit words when rows are (a decode step validates the whole cache: keep it cheap).
    const words = rowBytes % 4 === 0 && bits.byteOffset % 4 === 0 ? new Uint32Array(bits.buffer, bits.byteOffset, bits.length / 4) : null;
    const rowWords = rowBytes / 4;
    for (let r = 0; r < rowCount; r++) {
      let count = 0;
      if (words !== null) {
        for (let w = r * rowWords, end = w + rowWords; w < end; w++) count += popcount32(words[w]!);
      } else {
        for (let b = r * rowBytes, end = b + rowBytes; b < end; b++) count += POPCOUNT8[bits[b]!]!;
      }
      if (padMask !== 0 && (bits[r * rowBytes + rowBytes - 1]! & padMask) !== 0) {
        throw new LayoutError(`${k}: ${which}Bits row ${r} has bits set past headDim ${d}`);
      }
      if (start[r + 1]! - start[r]! !== count) {
        throw new LayoutError(`${k}: ${which}Start row ${r} holds ${start[r + 1]! - start[r]!} values but ${which}Bits keeps ${count} entries`);
      }
    }
    checkDisjoint(k, ['out', args.out, extent(args.outOffset, Math.max(1, d), heads, d)], [
      [`${which}Values`, values, [0, values.length]],
    ]);
  }
  checkDisjoint(k, ['out', args.out, extent(args.outOffset, Math.max(1, d), heads, d)], [['q', args.q, extent(args.qOffset, Math.max(1, d), heads, d)]]);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The active-entry bit mask as bytes (a Uint32Array is viewed, not copied). */
export function activeBitsAsBytes(bits: Uint8Array | Uint32Array): Uint8Array {
  return bits instanceof Uint8Array ? bits : new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
}

const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, b) => popcount8(b));

function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

function popcount8(b: number): number {
  b = b - ((b >>> 1) & 0x55);
  b = (b & 0x33) + ((b >>> 2) & 0x33);
  return (b + (b >>> 4)) & 0x0f;
}

/** Checks the active entries of a `size`-element parameter; returns how many there are. */
function checkActive(kernel: string, active: ActiveEntries, size: number): number {
  if (typeof active !== 'object' || active === null) throw new LayoutError(`${kernel}: active must be { indices } or { bits }, got ${describe(active)}`);
  if ('indices' in active) {
    const idx = active.indices;
    if (!(idx instanceof Int32Array)) throw new LayoutError(`${kernel}: active.indices must be an Int32Array, got ${describe(idx)}`);
    let prev = -1;
    for (let t = 0; t < idx.length; t++) {
      const i = idx[t]!;
      if (i <= prev || i >= size) {
        throw new LayoutError(
          i >= size
            ? `${kernel}: active.indices[${t}] = ${i} is outside [0, ${size})`
            : `${kernel}: active.indices must be strictly increasing; active.indices[${t}] = ${i} follows ${prev}`,
        );
      }
      prev = i;
    }
    return idx.length;
  }
  if ('bits' in active) {
    const bits = active.bits;
    if (!(bits instanceof Uint8Array || bits instanceof Uint32Array)) {
      throw new LayoutError(`${kernel}: active.bits must be a Uint8Array or Uint32Array, got ${describe(bits)}`);
    }
    if (bits instanceof Uint32Array && !LITTLE_ENDIAN) throw new LayoutError(`${kernel}: active.bits as a Uint32Array needs a little-endian machine; pass bytes`);
    const bytes = activeBitsAsBytes(bits);
    const need = Math.ceil(size / 8);
    if (bytes.length < need) throw new LayoutError(`${kernel}: active.bits has ${bytes.length} bytes; ${size} entries need ${need}`);
    let count = 0;
    for (let b = 0; b < bytes.length; b++) {
      let byte = bytes[b]!;
      if (b * 8 + 8 > size) {
        const keep = Math.max(0, size - b * 8);
        if (byte >>> keep !== 0) throw new LayoutError(`${kernel}: active.bits has bits set past entry ${size - 1} (in byte ${b})`);
        byte &= (1 << keep) - 1;
      }
      count += popcount8(byte);
    }
    return count;
  }
  throw new LayoutError(`${kernel}: active must have indices (Int32Array) or bits (Uint8Array or Uint32Array)`);
}

function checkHyper(kernel: string, name: string, value: unknown, lo: number, hi: number, loOpen = false, hiOpen = false): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && (loOpen ? value > lo : value >= lo) && (hiOpen ? value < hi : value <= hi);
  if (!ok) {
    throw new ArgumentError(`${kernel}: ${name} must be a finite number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${describe(value)}`);
  }
}

function checkStateArray(kernel: string, name: string, array: unknown, count: number): asserts array is Float32Array {
  checkFloat32(kernel, name, array);
  if (array.length !== count) throw new ShapeError(`${kernel}: ${name} has length ${array.length}, expected ${count} (one per active entry)`);
}

function checkDistinct(kernel: string, arrays: Array<[string, Float32Array]>): void {
  for (let i = 0; i < arrays.length; i++) {
    const [name, x] = arrays[i]!;
    checkDisjoint(kernel, [name, x, [0, x.length]], arrays.slice(i + 1).map(([n, y]) => [n, y, [0, y.length]] as [string, Float32Array, [number, number]]));
  }
}

/** Validates maskedAdam arguments; returns the number of active entries. */
export function validateMaskedAdamArgs(args: MaskedAdamArgs): number {
  const k = 'maskedAdam';
  checkArgsObject(k, args);
  checkFloat32(k, 'params', args.params);
  checkFloat32(k, 'grads', args.grads);
  if (args.grads.length !== args.params.length) throw new ShapeError(`${k}: grads has length ${args.grads.length} but params has ${args.params.length}`);
  const count = checkActive(k, args.active, args.params.length);
  checkStateArray(k, 'm', args.m, count);
  checkStateArray(k, 'v', args.v, count);
  if (!Number.isInteger(args.step) || args.step < 1) throw new ArgumentError(`${k}: step must be a positive integer (1 on the first update), got ${describe(args.step)}`);
  checkHyper(k, 'lr', args.lr, 0, Infinity, false, true);
  if (args.beta1 !== undefined) checkHyper(k, 'beta1', args.beta1, 0, 1, false, true);
  if (args.beta2 !== undefined) checkHyper(k, 'beta2', args.beta2, 0, 1, false, true);
  if (args.eps !== undefined) checkHyper(k, 'eps', args.eps, 0, Infinity, false, true);
  if (args.weightDecay !== undefined) checkHyper(k, 'weightDecay', args.weightDecay, 0, Infinity, false, true);
  checkDistinct(k, [
    ['params', args.params],
    ['grads', args.grads],
    ['m', args.m],
    ['v', args.v],
  ]);
  return count;
}

/** Validates maskedSGD arguments; returns the number of active entries. */
export function validateMaskedSGDArgs(args: MaskedSGDArgs): number {
  const k = 'maskedSGD';
  checkArgsObject(k, args);
  checkFloat32(k, 'params', args.params);
  checkFloat32(k, 'grads', args.grads);
  if (args.grads.length !== args.params.length) throw new ShapeError(`${k}: grads has length ${args.grads.length} but params has ${args.params.length}`);
  const count = checkActive(k, args.active, args.params.length);
  checkHyper(k, 'lr', args.lr, 0, Infinity, false, true);
  if (args.momentum !== undefined) checkHyper(k, 'momentum', args.momentum, 0, Infinity, false, true);
  if (args.weightDecay !== undefined) checkHyper(k, 'weightDecay', args.weightDecay, 0, Infinity, false, true);
  if (args.nesterov !== undefined) checkFlag(k, 'nesterov', args.nesterov);
  const momentum = args.momentum ?? 0;
  if (args.nesterov && momentum === 0) throw new ArgumentError(`${k}: nesterov needs a momentum above 0`);
  const arrays: Array<[string, Float32Array]> = [
    ['params', args.params],
    ['grads', args.grads],
  ];
  if (momentum !== 0) {
    if (args.velocity === undefined) throw new ArgumentError(`${k}: momentum ${momentum} needs a velocity array (one value per active entry)`);
    checkStateArray(k, 'velocity', args.velocity, count);
    arrays.push(['velocity', args.velocity]);
  }
  checkDistinct(k, arrays);
  return count;
}

function checkFloat64(kernel: string, name: string, value: unknown): asserts value is Float64Array {
  if (!(value instanceof Float64Array)) {
    throw new DTypeError(`${kernel}: ${name} must be a Float64Array, got ${describe(value)}`);
  }
}

/** Validates choleskyF64 arguments; throws ShapeError, DTypeError or ArgumentError naming the argument. */
export function validateCholeskyF64Args(args: CholeskyF64Args): void {
  const k = 'choleskyF64';
  checkArgsObject(k, args);
  checkDim(k, 'n', args.n);
  checkFloat64(k, 'a', args.a);
  checkOffset(k, 'aOffset', args.aOffset);
  checkLeadingDim(k, 'lda', args.lda, args.n, 'a is [n, n]');
  checkExtent(k, 'a', args.a, args.aOffset, args.lda, args.n, args.n);
}

/** Validates triangularInverseF64 arguments (x must not share memory with l). */
export function validateTriangularInverseF64Args(args: TriangularInverseF64Args): void {
  const k = 'triangularInverseF64';
  checkArgsObject(k, args);
  checkDim(k, 'n', args.n);
  checkFloat64(k, 'l', args.l);
  checkFloat64(k, 'x', args.x);
  checkOffset(k, 'lOffset', args.lOffset);
  checkOffset(k, 'xOffset', args.xOffset);
  checkLeadingDim(k, 'ldl', args.ldl, args.n, 'l is [n, n]');
  checkLeadingDim(k, 'ldx', args.ldx, args.n, 'x is [n, n]');
  checkExtent(k, 'l', args.l, args.lOffset, args.ldl, args.n, args.n);
  checkExtent(k, 'x', args.x, args.xOffset, args.ldx, args.n, args.n);
  const [l0, l1] = extent(args.lOffset, args.ldl, args.n, args.n);
  const [x0, x1] = extent(args.xOffset, args.ldx, args.n, args.n);
  if (l1 > l0 && x1 > x0 && args.l.buffer === args.x.buffer) {
    const lb0 = args.l.byteOffset + l0 * 8, lb1 = args.l.byteOffset + l1 * 8;
    const xb0 = args.x.byteOffset + x0 * 8, xb1 = args.x.byteOffset + x1 * 8;
    // The very same matrix (start and leading dimension) is an in-place inverse; any other overlap is not.
    const same = xb0 === lb0 && args.ldx === args.ldl;
    if (!same && xb0 < lb1 && lb0 < xb1) {
      throw new ArgumentError(`${k}: x overlaps l (they share memory); pass separate arrays, or the same array, offset and leading dimension to invert in place`);
    }
  }
}

/** Byte range [start, end) of elements [e0, e1) of a typed array. */
function byteRange(a: ArrayBufferView & { BYTES_PER_ELEMENT: number }, e0: number, e1: number): [number, number] {
  return [a.byteOffset + e0 * a.BYTES_PER_ELEMENT, a.byteOffset + e1 * a.BYTES_PER_ELEMENT];
}

type Span = [string, ArrayBufferView & { BYTES_PER_ELEMENT: number }, number, number];

/** Throws ArgumentError when two of the element spans (name, array, first, end) share memory. */
function checkApart(kernel: string, spans: Span[]): void {
  for (let i = 0; i < spans.length; i++) {
    const [an, a, a0, a1] = spans[i]!;
    if (a1 <= a0) continue;
    const [ab0, ab1] = byteRange(a, a0, a1);
    for (let j = i + 1; j < spans.length; j++) {
      const [bn, b, b0, b1] = spans[j]!;
      if (b1 <= b0 || a.buffer !== b.buffer) continue;
      const [bb0, bb1] = byteRange(b, b0, b1);
      if (ab0 < bb1 && bb0 < ab1) throw new ArgumentError(`${kernel}: ${an} overlaps ${bn} (they share memory); pass separate arrays`);
    }
  }
}

function checkVector64(kernel: string, name: string, value: unknown, length: number): asserts value is Float64Array {
  checkFloat64(kernel, name, value);
  if (value.length < length) throw new ShapeError(`${kernel}: ${name} has length ${value.length} but cols is ${length}`);
}

const ACTIVATION_F32_KINDS = ['gelu-tanh', 'silu', 'relu', 'relu2'];

/** Validates activationF32 arguments: a known kind, x and y long enough, y either x in place (same array and offset) or apart from it. */
export function validateActivationF32Args(args: ActivationF32Args): void {
  const k = 'activationF32';
  checkArgsObject(k, args);
  if (!ACTIVATION_F32_KINDS.includes(args.kind)) throw new ArgumentError(`${k}: kind must be one of ${ACTIVATION_F32_KINDS.join(', ')}, got ${JSON.stringify(args.kind)}`);
  checkDim(k, 'n', args.n);
  checkFloat32(k, 'x', args.x);
  checkOffset(k, 'xOffset', args.xOffset);
  checkFloat32(k, 'y', args.y);
  checkOffset(k, 'yOffset', args.yOffset);
  for (const [name, array, offset] of [['x', args.x, args.xOffset], ['y', args.y, args.yOffset]] as const) {
    if (args.n > 0 && offset + args.n > array.length) throw new ShapeError(`${k}: ${name} has length ${array.length} but ${args.n} values at offset ${offset} need ${offset + args.n}`);
  }
  if (args.x === args.y && args.xOffset === args.yOffset) return;
  checkApart(k, [
    ['x', args.x, args.xOffset, args.xOffset + args.n],
    ['y', args.y, args.yOffset, args.yOffset + args.n],
  ]);
}

/** Validates columnMomentsF32 arguments (the three float64 outputs must not share memory with each other). */
export function validateColumnMomentsF32Args(args: ColumnMomentsF32Args): void {
  const k = 'columnMomentsF32';
  checkArgsObject(k, args);
  checkDim(k, 'rows', args.rows);
  checkDim(k, 'cols', args.cols);
  checkFloat32(k, 'x', args.x);
  checkOffset(k, 'xOffset', args.xOffset);
  checkLeadingDim(k, 'ldx', args.ldx, args.cols, 'x is [rows, cols]');
  checkExtent(k, 'x', args.x, args.xOffset, args.ldx, args.rows, args.cols);
  checkVector64(k, 'sumSquares', args.sumSquares, args.cols);
  checkVector64(k, 'mean', args.mean, args.cols);
  checkVector64(k, 'm2', args.m2, args.cols);
  checkApart(k, [
    ['sumSquares', args.sumSquares, 0, args.cols],
    ['mean', args.mean, 0, args.cols],
    ['m2', args.m2, 0, args.cols],
  ]);
}

/**
 * Validates rowTopKScaledAbs arguments: scale finite and non-negative, k in [0, cols], the mask long
 * enough, out either w itself (same array, offset and leading dimension) or apart from w, and the mask
 * apart from both. Returns out's offset and leading dimension with their defaults (0, max(1, cols)) filled in.
 */
export function validateRowTopKScaledAbsArgs(args: RowTopKScaledAbsArgs): { outOffset: number; ldo: number } {
  const k = 'rowTopKScaledAbs';
  checkArgsObject(k, args);
  checkDim(k, 'rows', args.rows);
  checkDim(k, 'cols', args.cols);
  const { rows, cols } = args;
  checkFloat32(k, 'w', args.w);
  checkOffset(k, 'wOffset', args.wOffset);
  checkLeadingDim(k, 'ldw', args.ldw, cols, 'w is [rows, cols]');
  checkExtent(k, 'w', args.w, args.wOffset, args.ldw, rows, cols);
  checkVector64(k, 'scale', args.scale, cols);
  for (let j = 0; j < cols; j++) {
    const v = args.scale[j]!;
    if (!(v >= 0) || v === Infinity) throw new ArgumentError(`${k}: scale[${j}] is ${v}; it must be finite and non-negative`);
  }
  if (!Number.isInteger(args.k) || args.k < 0 || args.k > cols) throw new ArgumentError(`${k}: k must be an integer in [0, cols = ${cols}], got ${describe(args.k)}`);
  if (!(args.mask instanceof Uint32Array)) throw new DTypeError(`${k}: mask must be a Uint32Array, got ${describe(args.mask)}`);
  const words = Math.ceil((rows * cols) / 32);
  if (args.mask.length < words) throw new ShapeError(`${k}: mask has ${args.mask.length} words but [${rows}, ${cols}] needs ${words}`);
  const [w0, w1] = extent(args.wOffset, args.ldw, rows, cols);
  const spans: Span[] = [['mask', args.mask, 0, words], ['w', args.w, w0, w1]];
  let outOffset = 0;
  let ldo = Math.max(1, cols);
  if (args.out !== undefined) {
    checkFloat32(k, 'out', args.out);
    outOffset = args.outOffset ?? 0;
    ldo = args.ldo ?? Math.max(1, cols);
    checkOffset(k, 'outOffset', outOffset);
    checkLeadingDim(k, 'ldo', ldo, cols, 'out is [rows, cols]');
    checkExtent(k, 'out', args.out, outOffset, ldo, rows, cols);
    const [o0, o1] = extent(outOffset, ldo, rows, cols);
    const inPlace = args.out.buffer === args.w.buffer && byteRange(args.out, outOffset, outOffset)[0] === byteRange(args.w, args.wOffset, args.wOffset)[0] && ldo === args.ldw;
    if (inPlace) checkApart(k, [['mask', args.mask, 0, words], ['out', args.out, o0, o1]]);
    else spans.push(['out', args.out, o0, o1]);
  } else if (args.outOffset !== undefined || args.ldo !== undefined) {
    throw new ArgumentError(`${k}: outOffset and ldo need an out array`);
  }
  checkApart(k, spans);
  return { outOffset, ldo };
}
