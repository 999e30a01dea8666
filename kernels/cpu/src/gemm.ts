// The native dense gemm as a registry kernel: validated in TypeScript with the same validator as the
// reference (so bad calls throw the same typed errors), then handed to C++ without copying.
import { validateGemmArgs, type GemmArgs, type GemmKernel } from '@sparse/tensor';
import type { NativeGemm } from './native.js';

/** Wraps a raw native gemm (`addon.gemm` or `addon.gemmBlocked`) as a registry GemmKernel. */
export function gemmKernelFrom(native: NativeGemm): GemmKernel {
  return function gemmNative(args: GemmArgs): void {
    validateGemmArgs(args);
    native(
      args.transA,
      args.transB,
      args.m,
      args.n,
      args.k,
      args.alpha,
      args.a,
      args.aOffset,
      args.lda,
      args.b,
      args.bOffset,
      args.ldb,
      args.beta,
      args.c,
      args.cOffset,
      args.ldc,
    );
  };
}
