// Kernel registry, BLAS-like kernel argument types and validators, reference kernels, tensor-level ops.
export type {
  ActiveEntries,
  AttentionArgs,
  AttentionBitmapKVArgs,
  AttentionBitmapKVKernel,
  AttentionKernel,
  BlockSparseAttentionArgs,
  BlockSparseAttentionBackwardArgs,
  BlockSparseAttentionBackwardKernel,
  BlockSparseAttentionKernel,
  CholeskyF64Args,
  CholeskyF64Kernel,
  CholeskyFailure,
  ActivationF32Args,
  ActivationF32Kernel,
  ActivationF32Kind,
  ColumnMomentsF32Args,
  ColumnMomentsF32Kernel,
  CSRPattern,
  GemmArgs,
  GemmKernel,
  GemvSparseInputArgs,
  GemvSparseInputKernel,
  LinearCSRArgs,
  LinearCSRGradInputArgs,
  LinearCSRGradInputKernel,
  LinearCSRKernel,
  MaskedAdamArgs,
  MaskedAdamKernel,
  MaskedSGDArgs,
  MaskedSGDKernel,
  RowTopKScaledAbsArgs,
  RowTopKScaledAbsKernel,
  SddmmCSRArgs,
  SddmmCSRKernel,
  SpmmBlockArgs,
  SpmmBlockKernel,
  SpmmCSRArgs,
  SpmmCSRKernel,
  SpmmDenseArgs,
  SpmmNMArgs,
  SpmmNMKernel,
  TriangularInverseF64Args,
  TriangularInverseF64Kernel,
} from './types.js';
export {
  activeBitsAsBytes,
  validateAttentionArgs,
  validateAttentionBitmapKVArgs,
  validateBlockSparseAttentionArgs,
  validateBlockSparseAttentionBackwardArgs,
  validateCholeskyF64Args,
  validateActivationF32Args,
  validateColumnMomentsF32Args,
  validateGemmArgs,
  validateGemvSparseInputArgs,
  validateLinearCSRArgs,
  validateLinearCSRGradInputArgs,
  validateMaskedAdamArgs,
  validateMaskedSGDArgs,
  validateRowTopKScaledAbsArgs,
  validateSddmmCSRArgs,
  validateSpmmBlockArgs,
  validateSpmmCSRArgs,
  validateSpmmNMArgs,
  validateTriangularInverseF64Args,
} from './validate.js';
export type { LayoutCheckOptions, TileMaskInfo } from './validate.js';
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
export { choleskyF64Reference, triangularInverseF64Reference } from './reference/linalg.js';
export { columnMomentsF32Reference } from './reference/column-moments.js';
export { activationF32Reference } from './reference/activation.js';
export { rowTopKScaledAbsReference } from './reference/row-topk.js';
export { spmmCSRReference } from './reference/spmm-csr.js';
export { spmmNMReference } from './reference/spmm-nm.js';
export { spmmBlockReference } from './reference/spmm-block.js';
export { linearCSRGradInputReference, linearCSRReference, sddmmCSRReference } from './reference/linear-csr.js';
export { activeInputChannels, gemvSparseInputReference } from './reference/gemv-sparse-input.js';
export {
  attentionBitmapKVReference,
  blockSparseAttentionBackwardReference,
  blockSparseAttentionReference,
  countAttentionTiles,
  denseAttentionReference,
  expandBitmapRow,
} from './reference/attention.js';
export { forEachActive, maskedAdamReference, maskedSGDReference } from './reference/optimizers.js';
export { matmul, spmm } from './ops.js';
export type { MatmulOptions, SpmmLayout } from './ops.js';
