// The registry kernels on the GPU: same names and argument objects as the reference and CPU kernels
// (host Float32Arrays in, results written in place), each call staging its operands to the device and
// back. Shapes are validated by @sparse/tensor's validators first, so bad input gets the same typed
// errors as on the CPU.
import {
  REFERENCE_BACKEND,
  activeBitsAsBytes,
  countAttentionTiles,
  getKernel,
  validateAttentionArgs,
  validateBlockSparseAttentionArgs,
  validateGemmArgs,
  validateMaskedAdamArgs,
  validateSpmmBlockArgs,
  validateSpmmCSRArgs,
  validateSpmmNMArgs,
  type AttentionArgs,
  type BlockSparseAttentionArgs,
  type GemmArgs,
  type KernelName,
  type KernelSignatures,
  type MaskedAdamArgs,
  type SpmmBlockArgs,
  type SpmmCSRArgs,
  type SpmmNMArgs,
} from '@sparse/tensor';
import type { CudaAddon } from './native.js';

/** The largest head dimension the attention kernel takes; larger ones run on the reference kernel. */
export const MAX_HEAD_DIM = 256;

export function gemmKernelFrom(addon: CudaAddon): KernelSignatures['gemm'] {
  return function gemmCUDA(a: GemmArgs): void {
    validateGemmArgs(a);
    addon.gemm(a.transA, a.transB, a.m, a.n, a.k, a.alpha, a.a, a.aOffset, a.lda, a.b, a.bOffset, a.ldb, a.beta, a.c, a.cOffset, a.ldc);
  };
}

export function spmmCSRKernelFrom(addon: CudaAddon): KernelSignatures['spmmCSR'] {
  return function spmmCSRCUDA(x: SpmmCSRArgs): void {
    validateSpmmCSRArgs(x);
    const [rows, cols] = x.a.shape;
    addon.spmmCSR(rows, cols, x.a.indptr, x.a.indices, x.a.values, x.n, x.alpha, x.b, x.bOffset, x.ldb, x.beta, x.c, x.cOffset, x.ldc);
  };
}

export function spmmBlockKernelFrom(addon: CudaAddon): KernelSignatures['spmmBlock'] {
  return function spmmBlockCUDA(x: SpmmBlockArgs): void {
    validateSpmmBlockArgs(x);
    const [rows, cols] = x.a.shape;
    const [br, bc] = x.a.blockShape;
    addon.spmmBlock(rows, cols, br, bc, x.a.indptr, x.a.indices, x.a.values, x.n, x.alpha, x.b, x.bOffset, x.ldb, x.beta, x.c, x.cOffset, x.ldc);
  };
}

export function spmmNMKernelFrom(addon: CudaAddon): KernelSignatures['spmmNM'] {
  return function spmmNMCUDA(x: SpmmNMArgs): void {
    validateSpmmNMArgs(x);
    const [rows, cols] = x.a.shape;
    addon.spmmNM(rows, cols, x.a.n, x.a.m, x.a.indexBits, x.a.values, x.a.indices, x.n, x.alpha, x.b, x.bOffset, x.ldb, x.beta, x.c, x.cOffset, x.ldc);
  };
}

function scaleOf(a: AttentionArgs): number {
  return a.scale ?? 1 / Math.sqrt(a.headDim);
}

export function denseAttentionKernelFrom(addon: CudaAddon): KernelSignatures['denseAttention'] {
  return function denseAttentionCUDA(a: AttentionArgs): void {
    validateAttentionArgs(a);
    if (a.headDim > MAX_HEAD_DIM) {
      getKernel('denseAttention', REFERENCE_BACKEND)(a);
      return;
    }
    addon.attention('float32', a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.causal, scaleOf(a), 64, null, false, null, false, null, 0);
  };
}

export function blockSparseAttentionKernelFrom(addon: CudaAddon): KernelSignatures['blockSparseAttention'] {
  return function blockSparseAttentionCUDA(a: BlockSparseAttentionArgs): void {
    const info = validateBlockSparseAttentionArgs(a);
    if (a.headDim > MAX_HEAD_DIM) {
      getKernel('blockSparseAttention', REFERENCE_BACKEND)(a);
      return;
    }
    addon.attention(
      'float32', a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.causal, scaleOf(a), a.blockSize,
      a.blockMask, info.blockMaskPerHead, info.hasPartial ? a.elementMask! : null, info.elementMaskPerHead, a.lse ?? null, a.lseOffset ?? 0,
    );
    if (a.stats) a.stats.tiles += countAttentionTiles(a, info);
  };
}

export function maskedAdamKernelFrom(addon: CudaAddon): KernelSignatures['maskedAdam'] {
  return function maskedAdamCUDA(a: MaskedAdamArgs): void {
    validateMaskedAdamArgs(a);
    const size = a.params.length;
    const indices = 'indices' in a.active ? a.active.indices : null;
    const bits = 'bits' in a.active ? activeBitsAsBytes(a.active.bits) : null;
    addon.maskedAdam(a.params, a.grads, size, indices, a.m.length, bits, a.m, a.v, a.step, a.lr, a.beta1 ?? 0.9, a.beta2 ?? 0.999, a.eps ?? 1e-8, a.weightDecay ?? 0);
  };
}

/** How each registry kernel is built from the addon. */
export const KERNEL_FACTORIES: { [K in KernelName]?: (addon: CudaAddon) => KernelSignatures[K] } = {
  gemm: gemmKernelFrom,
  spmmCSR: spmmCSRKernelFrom,
  spmmNM: spmmNMKernelFrom,
  spmmBlock: spmmBlockKernelFrom,
  denseAttention: denseAttentionKernelFrom,
  blockSparseAttention: blockSparseAttentionKernelFrom,
  maskedAdam: maskedAdamKernelFrom,
};
