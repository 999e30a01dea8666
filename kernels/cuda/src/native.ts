// Loads the CUDA addon. Never throws: a missing build, a missing driver or no device all come back
// as { available: false, reason }, and the callers keep the CPU / reference kernels.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the addon reports about the CUDA device (cudaGetDeviceCount and device 0's properties). */
export interface CudaDeviceStatus {
  count: number;
  /** cudaGetDeviceCount's error ('<name>: <string>'), null when it succeeded. */
  error: string | null;
  /** cudart and driver versions (1000 * major + 10 * minor; driver 0 when there is none). */
  runtime: number;
  driver: number;
  name?: string;
  /** Compute capability as 10 * major + minor (80 = A100, 90 = H100). */
  sm?: number;
  /** Device memory in bytes. */
  memory?: number;
}

/** Opaque device allocation handle of the addon. */
export type DeviceHandle = object & { readonly __deviceHandle?: never };
/** An array argument of the addon: a host typed array (staged per call) or a device allocation (in place). */
export type Operand<T> = T | DeviceHandle;

/** The functions of the addon (arguments in the order of native/addon.cc). */
export interface CudaAddon {
  deviceStatus(): CudaDeviceStatus;
  alloc(bytes: number): DeviceHandle;
  free(handle: DeviceHandle): void;
  copy(handle: DeviceHandle, byteOffset: number, array: ArrayBufferView, toDevice: boolean): void;
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: Operand<Float32Array>, aOffset: number, lda: number, b: Operand<Float32Array>, bOffset: number, ldb: number,
    beta: number, c: Operand<Float32Array>, cOffset: number, ldc: number,
  ): void;
  spmmCSR(
    rows: number, cols: number, indptr: Int32Array, indices: Operand<Int32Array>, values: Operand<Float32Array>,
    n: number, alpha: number, b: Operand<Float32Array>, bOffset: number, ldb: number, beta: number, c: Operand<Float32Array>, cOffset: number, ldc: number,
  ): void;
  spmmBlock(
    rows: number, cols: number, br: number, bc: number, indptr: Int32Array, indices: Operand<Int32Array>, values: Operand<Float32Array>,
    n: number, alpha: number, b: Operand<Float32Array>, bOffset: number, ldb: number, beta: number, c: Operand<Float32Array>, cOffset: number, ldc: number,
  ): void;
  spmmNM(
    rows: number, cols: number, keep: number, m: number, indexBits: number, values: Operand<Float32Array>, indices: Operand<Uint8Array>,
    n: number, alpha: number, b: Operand<Float32Array>, bOffset: number, ldb: number, beta: number, c: Operand<Float32Array>, cOffset: number, ldc: number,
  ): void;
  attention(
    dtype: 'float32' | 'float16' | 'bfloat16', heads: number, seq: number, dim: number,
    q: Operand<Float32Array | Uint16Array>, qOffset: number, k: Operand<Float32Array | Uint16Array>, kOffset: number,
    v: Operand<Float32Array | Uint16Array>, vOffset: number, out: Operand<Float32Array>, outOffset: number,
    causal: boolean, scale: number, blockSize: number, blockMask: Operand<Uint8Array> | null, maskPerHead: boolean,
    elementMask: Operand<Uint8Array> | null, elementPerHead: boolean, lse: Operand<Float32Array> | null, lseOffset: number,
  ): void;
  maskedAdam(
    params: Operand<Float32Array>, grads: Operand<Float32Array>, size: number, indices: Operand<Int32Array> | null, count: number,
    bits: Operand<Uint8Array> | null, m: Operand<Float32Array>, v: Operand<Float32Array>, step: number, lr: number,
    beta1: number, beta2: number, eps: number, weightDecay: number,
  ): void;
  /** Returns -1, or row * (paddedCols / 4) + chunk of the first group with more than two non-zeros. */
  compress24(dtype: 'float16' | 'bfloat16', dense: Operand<Uint16Array>, rows: number, cols: number, values: Operand<Uint16Array>, meta: Operand<Uint32Array>): number;
  gemm24(
    dtype: 'float16' | 'bfloat16', m: number, n: number, k: number, values: Operand<Uint16Array>, meta: Operand<Uint32Array>,
    b: Operand<Uint16Array>, ldb: number, c: Operand<Float32Array>, ldc: number, alpha: number, beta: number,
  ): void;
}

export type CudaStatus =
  | { available: true; addon: CudaAddon; device: CudaDeviceStatus & { name: string; sm: number }; path: string }
  | { available: false; reason: string; path: string };

/** The compute capability the kernels need (mma.sp and cp.async: Ampere). */
export const MIN_SM = 80;

/** Where the addon is looked for: $SPARSE_CUDA_ADDON, else build/Release/sparse_cuda.node of this package. */
export function defaultAddonPath(): string {
  if (process.env.SPARSE_CUDA_ADDON) return path.resolve(process.env.SPARSE_CUDA_ADDON);
  // src/native.ts and dist/index.js both sit one level below the package root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', 'build', 'Release', 'sparse_cuda.node');
}

function describeError(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** Loads the addon at `file` and asks for a device; never throws. */
export function probeCuda(file: string = defaultAddonPath()): CudaStatus {
  if (process.env.SPARSE_DISABLE_CUDA === '1') return { available: false, reason: 'disabled by SPARSE_DISABLE_CUDA=1', path: file };
  if (!existsSync(file)) {
    return {
      available: false,
      reason: `the CUDA addon is not built (${file} is missing; it is built where nvcc exists: node scripts/build-native.mjs)`,
      path: file,
    };
  }
  let addon: CudaAddon;
  try {
    addon = createRequire(import.meta.url)(file) as CudaAddon;
  } catch (err) {
    return { available: false, reason: `the CUDA addon does not load: ${describeError(err)}`, path: file };
  }
  if (typeof addon?.deviceStatus !== 'function' || typeof addon.gemm24 !== 'function') {
    return { available: false, reason: `the CUDA addon does not load: ${file} is not this package's addon (no deviceStatus/gemm24)`, path: file };
  }
  let device: CudaDeviceStatus;
  try {
    device = addon.deviceStatus();
  } catch (err) {
    return { available: false, reason: `no CUDA device: ${describeError(err)}`, path: file };
  }
  if (device.error !== null) return { available: false, reason: `no CUDA device: ${device.error}`, path: file };
  if (device.count === 0 || device.name === undefined || device.sm === undefined) {
    return { available: false, reason: 'no CUDA device: cudaGetDeviceCount found none', path: file };
  }
  if (device.sm < MIN_SM) {
    return { available: false, reason: `${device.name} is sm_${device.sm}; the kernels need sm_${MIN_SM} or newer`, path: file };
  }
  return { available: true, addon, device: device as CudaDeviceStatus & { name: string; sm: number }, path: file };
}

let cached: CudaStatus | undefined;

/**
 * Whether the CUDA kernels can run here, and why not: the addon (built only where nvcc exists), the
 * driver, a device of compute capability 8.0 or newer. Probed once per process (pass `reload` to probe
 * again, e.g. after setting SPARSE_CUDA_ADDON). Never throws.
 */
export function loadCudaKernels(options: { reload?: boolean } = {}): CudaStatus {
  if (cached === undefined || options.reload) cached = probeCuda();
  return cached;
}
