// Kernel registry, BLAS-like kernel argument types and validators, reference kernels, tensor-level ops.
export type { GemmArgs, GemmKernel, SpmmBlockArgs, SpmmBlockKernel, SpmmCSRArgs, SpmmCSRKernel, SpmmDenseArgs, SpmmNMArgs, SpmmNMKernel } from './types.js';
export { validateGemmArgs, validateSpmmBlockArgs, validateSpmmCSRArgs, validateSpmmNMArgs } from './validate.js';
export {
  REFERENCE_BACKEND,
  getKernel,
  hasKernel,
  kernelBackend,
  listKernels,
  referenceKernels,
  registerKernel,
  registerReferenceKernels,
  unregisterKernel,
} from './registry.js';
export type { KernelConfig, KernelInfo, KernelName, KernelSignatures } from './registry.js';
export { gemmReference } from './reference/gemm.js';
export { spmmCSRReference } from './reference/spmm-csr.js';
export { spmmNMReference } from './reference/spmm-nm.js';
export { spmmBlockReference } from './reference/spmm-block.js';
export { matmul, spmm } from './ops.js';
export type { MatmulOptions, SpmmLayout } from './ops.js';
