// @sparse/kernels-cuda: CUDA kernels for the @sparse/tensor kernel registry. Importing never
// touches the GPU; registerCUDAKernels() registers the GPU kernels when the addon is built, a driver
// is present and a device of compute capability 8.0+ is found, and otherwise changes nothing.
import { registerKernel, type KernelConfig, type KernelName } from '@sparse/tensor';
import { KERNEL_FACTORIES } from './kernels.js';
import { loadCudaKernels, type CudaAddon, type CudaDeviceStatus } from './native.js';

export * from './tensor-core-24.js';
export { DeviceBuffer, compress24, gemm24 } from './device.js';
export type { DeviceDType, Gemm24Args } from './device.js';
export { MIN_SM, defaultAddonPath, loadCudaKernels, probeCuda } from './native.js';
export type { CudaAddon, CudaDeviceStatus, CudaStatus, DeviceHandle } from './native.js';
export {
  KERNEL_FACTORIES,
  MAX_HEAD_DIM,
  blockSparseAttentionKernelFrom,
  denseAttentionKernelFrom,
  gemmKernelFrom,
  maskedAdamKernelFrom,
  spmmBlockKernelFrom,
  spmmCSRKernelFrom,
  spmmNMKernelFrom,
} from './kernels.js';

/** Backend name of the CUDA kernels in the registry. */
export const SPARSE_CUDA_BACKEND = 'sparse-cuda';
/** Their registry priority: above the native CPU kernels (10) and the reference (0). */
export const SPARSE_CUDA_KERNEL_PRIORITY = 20;

export type RegisterCUDAKernelsResult =
  | { available: true; kernels: KernelName[]; device: CudaDeviceStatus; unregister(): void }
  | { available: false; kernels: []; reason: string; unregister(): void };

/**
 * Registers the GPU kernels (gemm, spmmCSR, spmmNM, spmmBlock, denseAttention, blockSparseAttention,
 * maskedAdam) under backend 'sparse-cuda' with the same argument objects as the CPU ones, so code
 * calling getKernel() runs on the GPU unchanged. Without CUDA nothing is registered and the reason
 * comes back; never throws.
 */
export function registerCUDAKernels(options: { priority?: number } = {}): RegisterCUDAKernelsResult {
  const status = loadCudaKernels();
  if (!status.available) return { available: false, kernels: [], reason: status.reason, unregister: () => {} };
  const priority = options.priority ?? SPARSE_CUDA_KERNEL_PRIORITY;
  const undo: Array<() => void> = [];
  const kernels: KernelName[] = [];
  for (const [name, make] of Object.entries(KERNEL_FACTORIES) as Array<[KernelName, (addon: CudaAddon) => KernelConfig['fn']]>) {
    undo.push(registerKernel({ name, backend: SPARSE_CUDA_BACKEND, priority, fn: make(status.addon) } as KernelConfig));
    kernels.push(name);
  }
  return {
    available: true,
    kernels,
    device: status.device,
    unregister: () => {
      for (const fn of undo) fn();
    },
  };
}
