// Activation-sparse gemv, dense and block-sparse attention and masked optimizer steps as registry
// kernels: validated in TypeScript with the reference kernels' validators (typed errors before any
// native code runs), then handed to C++ without copying (index arrays and masks in a
// SharedArrayBuffer are copied first, so native code reads exactly the validated bytes).
import {
  BackendError,
  activeBitsAsBytes,
  blockSparseAttentionReference,
  validateAttentionArgs,
  validateBlockSparseAttentionArgs,
  validateGemvSparseInputArgs,
  validateMaskedAdamArgs,
  validateMaskedSGDArgs,
  type ActiveEntries,
  type AttentionArgs,
  type AttentionKernel,
  type BlockSparseAttentionArgs,
  type BlockSparseAttentionKernel,
  type GemvSparseInputArgs,
  type GemvSparseInputKernel,
  type MaskedAdamArgs,
  type MaskedAdamKernel,
  type MaskedSGDArgs,
  type MaskedSGDKernel,
} from '@sparse/tensor';
import type { NativeAddon } from './native.js';
import { unshared, withUnsharedIndices } from './unshared.js';

function need<K extends 'gemvSparseInput' | 'attention' | 'maskedAdam' | 'maskedSGD'>(addon: NativeAddon, name: K): NonNullable<NativeAddon[K]> {
  const fn = addon[name];
  if (typeof fn !== 'function') throw new BackendError(`the native addon does not implement ${name}`);
  return fn as NonNullable<NativeAddon[K]>;
}

export function gemvSparseInputKernelFrom(addon: NativeAddon): GemvSparseInputKernel {
  const native = need(addon, 'gemvSparseInput');
  return function gemvSparseInputNative(a: GemvSparseInputArgs): void {
    validateGemvSparseInputArgs(a);
    native(a.transW, a.rows, a.cols, a.n, a.alpha, a.w, a.wOffset, a.ldw, a.x, a.xOffset, a.ldx, a.beta, a.y, a.yOffset, a.ldy);
  };
}

function runAttention(native: NonNullable<NativeAddon['attention']>, a: AttentionArgs, blockSize: number, mask: Uint8Array | null): void {
  const scale = a.scale ?? 1 / Math.sqrt(a.headDim);
  native(a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.causal, scale, blockSize, mask);
}

export function denseAttentionKernelFrom(addon: NativeAddon): AttentionKernel {
  const native = need(addon, 'attention');
  return function denseAttentionNative(a: AttentionArgs): void {
    validateAttentionArgs(a);
    runAttention(native, a, 64, null);
  };
}

export function blockSparseAttentionKernelFrom(addon: NativeAddon): BlockSparseAttentionKernel {
  const native = need(addon, 'attention');
  return function blockSparseAttentionNative(input: BlockSparseAttentionArgs): void {
    const a = withUnsharedBlockMask(input);
    const info = validateBlockSparseAttentionArgs(a);
    // Partial tiles, lse and tile counts: the reference until the native kernel has them.
    if (info.hasPartial || a.lse !== undefined || a.stats !== undefined) return blockSparseAttentionReference(a);
    runAttention(native, a, a.blockSize, a.blockMask);
  };
}

/** `a` with a blockMask in a SharedArrayBuffer replaced by a copy (the mask is validated, then read by C++). */
function withUnsharedBlockMask(a: BlockSparseAttentionArgs): BlockSparseAttentionArgs {
  if (typeof a !== 'object' || a === null || !(a.blockMask instanceof Uint8Array)) return a;
  const mask = unshared(a.blockMask);
  return mask === a.blockMask ? a : { ...a, blockMask: mask };
}

function activeArgs(active: ActiveEntries): [Int32Array | null, Uint8Array | null] {
  return 'indices' in active ? [active.indices, null] : [null, activeBitsAsBytes(active.bits)];
}

export function maskedAdamKernelFrom(addon: NativeAddon): MaskedAdamKernel {
  const native = need(addon, 'maskedAdam');
  return function maskedAdamNative(input: MaskedAdamArgs): void {
    const a = withUnsharedIndices(input, 'active', ['indices', 'bits']);
    validateMaskedAdamArgs(a);
    const [indices, bits] = activeArgs(a.active);
    native(a.params, a.grads, indices, bits, a.m, a.v, a.step, a.lr, a.beta1 ?? 0.9, a.beta2 ?? 0.999, a.eps ?? 1e-8, a.weightDecay ?? 0);
  };
}

export function maskedSGDKernelFrom(addon: NativeAddon): MaskedSGDKernel {
  const native = need(addon, 'maskedSGD');
  return function maskedSGDNative(input: MaskedSGDArgs): void {
    const a = withUnsharedIndices(input, 'active', ['indices', 'bits']);
    validateMaskedSGDArgs(a);
    const [indices, bits] = activeArgs(a.active);
    const momentum = a.momentum ?? 0;
    native(a.params, a.grads, indices, bits, momentum === 0 ? null : a.velocity!, a.lr, momentum, a.weightDecay ?? 0, a.nesterov ?? false);
  };
}
