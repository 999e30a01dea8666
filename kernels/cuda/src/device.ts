// Device memory that stays on the GPU between calls, and the fp16/bf16 2:4 tensor-core entry points
// (GPU compression, sparse GEMM) that accept it.
import { ArgumentError, BackendError, ShapeError } from '@sparse/tensor';
import { loadCudaKernels, type CudaAddon, type DeviceHandle } from './native.js';
import { paddedColsFor, type TensorCore24 } from './tensor-core-24.js';

/** Element types a DeviceBuffer holds (float16 / bfloat16 as raw bits in a Uint16Array on the host). */
export type DeviceDType = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'uint32' | 'uint8';

type HostArray<D extends DeviceDType> = D extends 'float32'
  ? Float32Array
  : D extends 'float16' | 'bfloat16'
    ? Uint16Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'uint32'
        ? Uint32Array
        : Uint8Array;

const BYTES: Record<DeviceDType, number> = { float32: 4, float16: 2, bfloat16: 2, int32: 4, uint32: 4, uint8: 1 };
const CTORS = { float32: Float32Array, float16: Uint16Array, bfloat16: Uint16Array, int32: Int32Array, uint32: Uint32Array, uint8: Uint8Array };

function requireAddon(what: string): CudaAddon {
  const status = loadCudaKernels();
  if (!status.available) throw new BackendError(`${what}: CUDA is not available (${status.reason})`);
  return status.addon;
}

/**
 * `length` elements of `dtype` in device memory. Freed by dispose() (or, late, by the garbage
 * collector); using a disposed buffer throws. Pass it wherever the GPU entry points take an array
 * to keep data on the device between calls.
 */
export class DeviceBuffer<D extends DeviceDType = DeviceDType> {
  readonly dtype: D;
  readonly length: number;
  #handle: DeviceHandle | null;
  readonly #addon: CudaAddon;

  private constructor(addon: CudaAddon, dtype: D, length: number) {
    if (!(dtype in BYTES)) throw new ArgumentError(`DeviceBuffer: unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(BYTES).join(', ')}`);
    if (!Number.isSafeInteger(length) || length < 0) throw new ArgumentError(`DeviceBuffer: length must be a non-negative integer, got ${length}`);
    this.#addon = addon;
    this.dtype = dtype;
    this.length = length;
    this.#handle = addon.alloc(length * BYTES[dtype]);
  }

  /** An uninitialised buffer. Throws BackendError when CUDA is not available. */
  static alloc<D extends DeviceDType>(dtype: D, length: number): DeviceBuffer<D> {
    return new DeviceBuffer(requireAddon('DeviceBuffer.alloc'), dtype, length);
  }

  /** A buffer holding a copy of `data` (dtype float32 for a Float32Array, etc.; say float16 or bfloat16 for a Uint16Array). */
  static from<D extends DeviceDType>(data: HostArray<D>, dtype: D): DeviceBuffer<D> {
    const buf = DeviceBuffer.alloc(dtype, data.length);
    buf.upload(data);
    return buf;
  }

  get byteLength(): number {
    return this.length * BYTES[this.dtype];
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  /** The addon's handle (for the GPU entry points of this package). */
  get handle(): DeviceHandle {
    if (this.#handle === null) throw new ArgumentError(`DeviceBuffer(${this.dtype}, ${this.length}): used after dispose()`);
    return this.#handle;
  }

  /** Copies `data` into the buffer starting at element `offset`. */
  upload(data: HostArray<D>, offset = 0): this {
    this.#check(data, offset, 'upload');
    this.#addon.copy(this.handle, offset * BYTES[this.dtype], data, true);
    return this;
  }

  /** Copies the buffer (from element `offset`, as many elements as `into` holds, or all) to the host. */
  download(into?: HostArray<D>, offset = 0): HostArray<D> {
    const out = into ?? (new CTORS[this.dtype](this.length - offset) as HostArray<D>);
    this.#check(out, offset, 'download');
    this.#addon.copy(this.handle, offset * BYTES[this.dtype], out, false);
    return out;
  }

  /** Frees the device memory now. Idempotent. */
  dispose(): void {
    if (this.#handle !== null) this.#addon.free(this.#handle);
    this.#handle = null;
  }

  #check(data: ArrayBufferView & { length: number }, offset: number, what: string): void {
    if (!(data instanceof CTORS[this.dtype])) throw new ArgumentError(`DeviceBuffer.${what}: a ${this.dtype} buffer takes a ${CTORS[this.dtype].name}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.length) {
      throw new ShapeError(`DeviceBuffer.${what}: ${data.length} elements at offset ${offset} do not fit a buffer of ${this.length}`);
    }
  }
}

type Half = 'float16' | 'bfloat16';
type HalfOperand = Uint16Array | DeviceBuffer<'float16' | 'bfloat16'> | DeviceBuffer<'float16'> | DeviceBuffer<'bfloat16'>;

function operand(x: HalfOperand | Float32Array | Uint32Array | DeviceBuffer, name: string, dtypes: DeviceDType[], length: number) {
  if (x instanceof DeviceBuffer) {
    if (!dtypes.includes(x.dtype)) throw new ArgumentError(`${name}: a ${x.dtype} device buffer where ${dtypes.join(' or ')} is needed`);
    if (x.length < length) throw new ShapeError(`${name}: the device buffer holds ${x.length} elements, ${length} are needed`);
    return x.handle;
  }
  if (x.length < length) throw new ShapeError(`${name}: has ${x.length} elements, ${length} are needed`);
  return x;
}

/**
 * Compresses a dense fp16/bf16 row-major [rows, cols] matrix that is 2:4 sparse into the tensor-core
 * layout, on the GPU. Throws ArgumentError naming the first group of four with more than two
 * non-zeros.
 */
export function compress24(dense: HalfOperand, rows: number, cols: number, dtype: Half): TensorCore24<Uint16Array> {
  const addon = requireAddon('compress24');
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) throw new ShapeError(`compress24: shape must be two non-negative integers, got [${rows}, ${cols}]`);
  if (dtype !== 'float16' && dtype !== 'bfloat16') throw new ArgumentError(`compress24: dtype must be float16 or bfloat16, got ${String(dtype)}`);
  const paddedCols = paddedColsFor(cols);
  const values = new Uint16Array((rows * paddedCols) / 2);
  const meta = new Uint32Array(Math.ceil(rows / 16) * (paddedCols / 32) * 16);
  const bad = addon.compress24(dtype, operand(dense, 'compress24: dense', [dtype], rows * cols) as Uint16Array, rows, cols, values, meta);
  if (bad >= 0) {
    const row = Math.floor(bad / (paddedCols / 4));
    const c0 = (bad % (paddedCols / 4)) * 4;
    throw new ArgumentError(`compress24: row ${row}, columns ${c0}..${c0 + 3} hold more than 2 non-zeros; a 2:4 matrix has at most 2 per group of 4`);
  }
  return { format: 'tc24', shape: [rows, cols], paddedCols, values, meta };
}

export interface Gemm24Args {
  /** A [M, K], 2:4 sparse in the tensor-core layout (compress24 or nmToTensorCore24 of fp16/bf16 values). */
  a: TensorCore24<Uint16Array>;
  dtype: Half;
  /** B [K, N] row-major, same dtype; ldb >= N (default N). */
  b: HalfOperand;
  n: number;
  ldb?: number;
  /** C [M, N] float32, ldc >= N (default N); written in place. */
  c: Float32Array | DeviceBuffer<'float32'>;
  ldc?: number;
  /** Defaults 1 and 0 (beta 0: C is not read). */
  alpha?: number;
  beta?: number;
}

/** C = alpha * A * B + beta * C on the sparse tensor cores (mma.sp m16n8k32, fp32 accumulate). */
export function gemm24(args: Gemm24Args): void {
  const addon = requireAddon('gemm24');
  const { a, dtype, n } = args;
  const [m, k] = a.shape;
  const ldb = args.ldb ?? n;
  const ldc = args.ldc ?? n;
  if (!Number.isSafeInteger(n) || n < 0) throw new ShapeError(`gemm24: n must be a non-negative integer, got ${n}`);
  if (ldb < Math.max(1, n) || ldc < Math.max(1, n)) throw new ShapeError(`gemm24: ldb (${ldb}) and ldc (${ldc}) must be >= max(1, n = ${n})`);
  if (!(a.values instanceof Uint16Array)) throw new ArgumentError('gemm24: a.values must hold fp16/bf16 bits (Uint16Array)');
  if (a.paddedCols !== paddedColsFor(k) || a.values.length !== (m * a.paddedCols) / 2 || a.meta.length !== Math.ceil(m / 16) * (a.paddedCols / 32) * 16) {
    throw new ShapeError(`gemm24: a is not a consistent tensor-core layout of shape [${m}, ${k}]`);
  }
  const span = (rows: number, cols: number, ld: number) => (rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols);
  addon.gemm24(
    dtype, m, n, k, a.values, a.meta,
    operand(args.b, 'gemm24: b', [dtype], span(k, n, ldb)) as Uint16Array, ldb,
    operand(args.c, 'gemm24: c', ['float32'], span(m, n, ldc)) as Float32Array, ldc,
    args.alpha ?? 1, args.beta ?? 0,
  );
}
