// @sparse/kernels-cpu/tfjs: importing this module registers the 'sparse-cpu' tfjs backend
// (tfjs-backend-cpu with its matrix products on the native gemm) when the native addon is built.
// Without the addon it registers nothing and logs one line, and selectBackend
// (@sparse/kernels-cpu/select-backend) moves on to the next backend.
import { registerSparseCPUBackend } from './tfjs/backend.js';

export {
  FAST_TFJS_KERNELS,
  NATIVE_TFJS_KERNELS,
  SPARSE_CPU_BACKEND,
  SPARSE_CPU_PRIORITY,
  SparseCPUBackend,
  registerSparseCPUBackend,
  sparseCPUUnavailableMessage,
} from './tfjs/backend.js';
export type { RegisterSparseCPUOptions, SparseCPURegistration } from './tfjs/backend.js';
export { FUSED_ACTIVATIONS, type FusedActivation } from './tfjs/epilogue.js';
// Fused training ops (one tfjs op each, native on 'sparse-cpu', plain tfjs elsewhere).
export { FUSED_OPS, fusedCrossEntropy, fusedGeluTanh, fusedLayerNorm, fusedOpsNative, fusedRmsNorm, fusedSoftmax, fusedSwiGLU, type NativeFusedKernels, type NativeSoftmaxKernels } from './tfjs/fused.js';
export { fusedAdamStep, sumOfSquares, type FusedAdamEntry, type FusedAdamOptions, type NativeFusedAdam } from './tfjs/fused-adam.js';
// Recycled storage of kernel outputs (stats, limit).
export { MIN_POOLED_ELEMENTS, OutputPool, outputPool, type OutputPoolStats } from './tfjs/pool.js';

/** What importing this module did: whether 'sparse-cpu' is registered, and which kernels run natively. */
export const sparseCPURegistration = registerSparseCPUBackend();
