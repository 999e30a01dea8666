// Tensor-level entry points over the kernel registry. Every call goes through getKernel, so a faster
// implementation registered later (native CPU, CUDA) is picked up without changing callers.
import type { DType } from '../dtype.js';
import { DTypeError, LayoutError, ShapeError } from '../errors.js';
import type { BSRLayout, CSRLayout, NMLayout, SparseLayout } from '../layouts/types.js';
import { copy, zeros, type Float32Tensor, type Tensor } from '../tensor.js';
import { getKernel } from './registry.js';

export interface MatmulOptions {
  /** Multiply by a's transpose. */
  transA?: boolean;
  /** Multiply by b's transpose. */
  transB?: boolean;
}

/** A 2-D float32 view as gemm sees it: a row-major matrix (possibly the view's transpose) in place. */
interface GemmOperand {
  data: Float32Array;
  offset: number;
  ld: number;
  /** Whether gemm must transpose what is stored to obtain the view. */
  stored: 'as-is' | 'transposed';
}

function checkFloat32Matrix(op: string, name: string, t: Tensor): asserts t is Tensor<'float32'> {
  if (t.dtype !== 'float32' || !(t.data instanceof Float32Array)) {
    throw new DTypeError(`${op}: ${name} must be a float32 tensor, got ${t.dtype}`);
  }
  if (t.shape.length !== 2) throw new ShapeError(`${op}: ${name} must be a matrix, got shape [${t.shape.join(', ')}]`);
}

/** The view in place when its rows are contiguous (inner stride 1, rows not overlapping). */
function asRowMajor(t: Float32Tensor): GemmOperand | undefined {
  const [rows, cols] = t.shape as [number, number];
  // A stride along an axis of length <= 1 is never used, so it cannot disqualify the view.
  const rowStride = rows > 1 ? t.stride[0]! : Math.max(1, cols);
  const colStride = cols > 1 ? t.stride[1]! : 1;
  if (colStride === 1 && rowStride >= Math.max(1, cols)) return { data: t.data, offset: t.offset, ld: rowStride, stored: 'as-is' };
  return undefined;
}

/** The view in place when it is the transpose of a row-major matrix (outer stride 1). */
function asColumnMajor(t: Float32Tensor): GemmOperand | undefined {
  const [rows, cols] = t.shape as [number, number];
  const rowStride = rows > 1 ? t.stride[0]! : 1;
  const colStride = cols > 1 ? t.stride[1]! : Math.max(1, rows);
  if (rowStride === 1 && colStride >= Math.max(1, rows)) return { data: t.data, offset: t.offset, ld: colStride, stored: 'transposed' };
  return undefined;
}

function packed(t: Float32Tensor): GemmOperand {
  const p = copy(t);
  return { data: p.data, offset: 0, ld: Math.max(1, t.shape[1]!), stored: 'as-is' };
}

function gemmOperand(t: Float32Tensor): GemmOperand {
  if (t.shape[0] === 0 || t.shape[1] === 0) return { data: t.data, offset: 0, ld: Math.max(1, t.shape[1]!), stored: 'as-is' };
  return asRowMajor(t) ?? asColumnMajor(t) ?? packed(t);
}

/**
 * op(a) @ op(b) for 2-D float32 views, into a new row-major tensor. Views whose rows are contiguous are
 * passed in place with their row stride as leading dimension; transposed views (outer stride 1) are
 * passed in place as a transposed operand; anything else is packed first.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Float32Tensor {
  checkFloat32Matrix('matmul', 'a', a);
  checkFloat32Matrix('matmul', 'b', b);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const [m, ka] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (ka !== kb) {
    throw new ShapeError(
      `matmul: inner dimensions differ: op(a) is [${m}, ${ka}] (a [${a.shape.join(', ')}]${transA ? ' transposed' : ''}), op(b) is [${kb}, ${n}] (b [${b.shape.join(', ')}]${transB ? ' transposed' : ''})`,
    );
  }
  const out = zeros([m, n], 'float32');
  const A = gemmOperand(a);
  const B = gemmOperand(b);
  getKernel('gemm')({
    // A stored transposed flips the requested transpose.
    transA: transA !== (A.stored === 'transposed'),
    transB: transB !== (B.stored === 'transposed'),
    m,
    n,
    k: ka,
    alpha: 1,
    a: A.data,
    aOffset: A.offset,
    lda: A.ld,
    b: B.data,
    bOffset: B.offset,
    ldb: B.ld,
    beta: 0,
    c: out.data,
    cOffset: 0,
    ldc: Math.max(1, n),
  });
  return out;
}

/** Sparse layouts that have a sparse x dense kernel. */
export type SpmmLayout = CSRLayout<'float32'> | NMLayout<'float32'> | BSRLayout<'float32'>;

/**
 * a @ dense for a sparse matrix a ([M, K] in CSR, N:M or BSR form) and a 2-D float32 view dense [K, N],
 * into a new row-major [M, N] tensor. Dispatches on a.format to spmmCSR, spmmNM or spmmBlock.
 */
export function spmm(a: SparseLayout<DType>, dense: Tensor): Float32Tensor {
  if (a.format !== 'csr' && a.format !== 'nm' && a.format !== 'bsr') {
    throw new LayoutError(`spmm: no sparse x dense kernel for format '${a.format}'; convert it to csr, nm or bsr`);
  }
  if (a.dtype !== 'float32') throw new DTypeError(`spmm: the sparse matrix must be float32, got ${a.dtype}`);
  checkFloat32Matrix('spmm', 'dense', dense);
  const [rows, inner] = a.shape;
  if (dense.shape[0] !== inner) {
    throw new ShapeError(`spmm: the sparse matrix is [${rows}, ${inner}] but dense is [${dense.shape.join(', ')}]`);
  }
  const n = dense.shape[1]!;
  const out = zeros([rows, n], 'float32');
  // The sparse kernels have no transB, so a transposed view is packed.
  const B = dense.shape[0] === 0 || n === 0 ? gemmOperand(dense) : (asRowMajor(dense) ?? packed(dense));
  const common = { b: B.data, bOffset: B.offset, ldb: B.ld, n, alpha: 1, beta: 0, c: out.data, cOffset: 0, ldc: Math.max(1, n) };
  switch (a.format) {
    case 'csr':
      getKernel('spmmCSR')({ a: a as CSRLayout<'float32'>, ...common });
      break;
    case 'nm':
      getKernel('spmmNM')({ a: a as NMLayout<'float32'>, ...common });
      break;
    case 'bsr':
      getKernel('spmmBlock')({ a: a as BSRLayout<'float32'>, ...common });
      break;
  }
  return out;
}
