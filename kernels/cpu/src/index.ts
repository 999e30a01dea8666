// @sparse/kernels-cpu: native SIMD kernels for the @sparse/tensor kernel registry, with the
// TypeScript reference kernels as the fallback when the addon is not built.
import { BackendError, registerKernel, type GemmKernel, type KernelConfig, type KernelName } from '@sparse/tensor';
import { SPARSE_CPU_BACKEND } from './backend-name.js';
import { gemmKernelFrom } from './gemm.js';
import { linearCSRGradInputKernelFrom, linearCSRKernelFrom, sddmmCSRKernelFrom } from './linear.js';
import { choleskyF64KernelFrom, triangularInverseF64KernelFrom } from './linalg-f64.js';
import { activationF32KernelFrom } from './activation.js';
import { columnMomentsF32KernelFrom, rowTopKScaledAbsKernelFrom } from './prune-select.js';
import { nativeStatus, warnIfNativeMissing, type NativeAddon } from './native.js';
import {
  attentionBitmapKVKernelFrom,
  blockSparseAttentionBackwardKernelFrom,
  blockSparseAttentionKernelFrom,
  denseAttentionKernelFrom,
  gemvSparseInputKernelFrom,
  maskedAdamKernelFrom,
  maskedSGDKernelFrom,
} from './ops.js';
import { spmmBlockKernelFrom, spmmCSRKernelFrom, spmmNMKernelFrom } from './spmm.js';

export {
  defaultAddonPaths,
  fallbackMessage,
  isNativeAvailable,
  loadNativeAddon,
  nativeInfo,
  nativeStatus,
  warnIfNativeMissing,
} from './native.js';
export type {
  NativeAddon,
  NativeAttention,
  NativeAttentionBackward,
  NativeAttentionBitmapKV,
  NativeCholeskyF64,
  NativeColumnMomentsF32,
  NativeGemm,
  NativeGemmBatched,
  NativeGemvSparseInput,
  NativeInfo,
  NativeIsa,
  NativeLinearCSR,
  NativeLoadResult,
  NativeMaskedAdam,
  NativeMaskedSGD,
  NativeRowTopKScaledAbs,
  NativeSddmmCSR,
  NativeSpmmBlock,
  NativeSpmmCSR,
  NativeSpmmNM,
  NativeTriangularInverseF64,
} from './native.js';
export { gemmKernelFrom } from './gemm.js';
export { spmmBlockKernelFrom, spmmCSRKernelFrom, spmmNMKernelFrom } from './spmm.js';
export { linearCSRGradInputKernelFrom, linearCSRKernelFrom, sddmmCSRKernelFrom } from './linear.js';
export {
  attentionBitmapKVKernelFrom,
  blockSparseAttentionBackwardKernelFrom,
  blockSparseAttentionKernelFrom,
  denseAttentionKernelFrom,
  gemvSparseInputKernelFrom,
  maskedAdamKernelFrom,
  maskedSGDKernelFrom,
} from './ops.js';

export { choleskyF64KernelFrom, triangularInverseF64KernelFrom } from './linalg-f64.js';
export { columnMomentsF32KernelFrom, rowTopKScaledAbsKernelFrom } from './prune-select.js';
export { activationF32KernelFrom } from './activation.js';
export { SPARSE_CPU_BACKEND } from './backend-name.js';

/**
 * Priority of the native kernels in the kernel registry: above the reference kernels (0). (The tfjs
 * backend's own registration priority is SPARSE_CPU_PRIORITY of '@sparse/kernels-cpu/tfjs'.)
 */
export const SPARSE_CPU_KERNEL_PRIORITY = 10;

/** How each registry kernel is built from the addon. */
const KERNEL_FACTORIES: { [K in KernelName]?: (addon: NativeAddon) => KernelConfig<K>['fn'] } = {
  gemm: (addon) => gemmKernelFrom(addon.gemm),
  spmmCSR: spmmCSRKernelFrom,
  spmmNM: spmmNMKernelFrom,
  spmmBlock: spmmBlockKernelFrom,
  linearCSR: linearCSRKernelFrom,
  linearCSRGradInput: linearCSRGradInputKernelFrom,
  sddmmCSR: sddmmCSRKernelFrom,
  gemvSparseInput: gemvSparseInputKernelFrom,
  denseAttention: denseAttentionKernelFrom,
  blockSparseAttention: blockSparseAttentionKernelFrom,
  blockSparseAttentionBackward: blockSparseAttentionBackwardKernelFrom,
  attentionBitmapKV: attentionBitmapKVKernelFrom,
  maskedAdam: maskedAdamKernelFrom,
  maskedSGD: maskedSGDKernelFrom,
  choleskyF64: choleskyF64KernelFrom,
  triangularInverseF64: triangularInverseF64KernelFrom,
  columnMomentsF32: columnMomentsF32KernelFrom,
  rowTopKScaledAbs: rowTopKScaledAbsKernelFrom,
  activationF32: activationF32KernelFrom,
};

/** The addon function each registry kernel runs on (when its name differs). */
const ADDON_FUNCTION: { [K in KernelName]?: string } = {
  denseAttention: 'attention',
  blockSparseAttention: 'attention',
  blockSparseAttentionBackward: 'attentionBackward',
  activationF32: 'fusedActForward',
};

export interface RegisterCPUKernelsResult {
  /** Whether the addon loaded (and its kernels were registered). */
  native: boolean;
  /** Kernel names registered under the 'sparse-cpu' backend. */
  kernels: KernelName[];
  /** Why the addon is unavailable, when it is. */
  reason?: string;
  /** Removes exactly the registrations this call made. */
  unregister(): void;
}

/**
 * Registers every native kernel the addon provides under backend 'sparse-cpu' (priority 10), so
 * `getKernel('gemm')` returns it. When the addon is missing nothing is registered, the reference
 * kernels stay in charge, and one line saying why is logged (once per process).
 */
export function registerCPUKernels(options: { priority?: number } = {}): RegisterCPUKernelsResult {
  const status = nativeStatus();
  if (!status.available) {
    warnIfNativeMissing();
    return { native: false, kernels: [], reason: status.reason, unregister: () => {} };
  }
  const priority = options.priority ?? SPARSE_CPU_KERNEL_PRIORITY;
  const provided = new Set(status.info.kernels);
  const undo: Array<() => void> = [];
  const kernels: KernelName[] = [];
  for (const [name, make] of Object.entries(KERNEL_FACTORIES) as Array<[KernelName, (addon: NativeAddon) => KernelConfig['fn']]>) {
    // Only what this build of the addon implements; an older binary simply registers less.
    if (!provided.has(ADDON_FUNCTION[name] ?? name)) continue;
    undo.push(registerKernel({ name, backend: SPARSE_CPU_BACKEND, priority, fn: make(status.addon) } as KernelConfig));
    kernels.push(name);
  }
  return {
    native: true,
    kernels,
    unregister: () => {
      for (const fn of undo) fn();
    },
  };
}

function requireAddon(what: string) {
  const status = nativeStatus();
  if (!status.available) throw new BackendError(`${what}: the native addon is not available (${status.reason})`);
  return status.addon;
}

/**
 * The addon's own blocked gemm, bypassing OpenBLAS even when the addon is linked against it, so
 * benchmarks can report sparse kernels against both. Throws BackendError without the addon.
 */
export function gemmBlockedNative(): GemmKernel {
  return gemmKernelFrom(requireAddon('gemmBlockedNative').gemmBlocked);
}

/**
 * OpenBLAS's gemm as linked into the addon, for side-by-side benchmarks. Throws BackendError when
 * the addon is not available or was built without OpenBLAS (`nativeInfo().blas === 'none'`).
 */
export function gemmOpenBLASNative(): GemmKernel {
  const addon = requireAddon('gemmOpenBLASNative');
  if (typeof addon.gemmOpenBLAS !== 'function') {
    throw new BackendError('gemmOpenBLASNative: the native addon was built without OpenBLAS (install libopenblas-dev and rebuild)');
  }
  return gemmKernelFrom(addon.gemmOpenBLAS);
}
