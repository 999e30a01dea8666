// Activation-sparse gemv, dense and block-sparse attention and masked optimizer steps as registry
// kernels: validated in TypeScript with the reference kernels' validators (typed errors before any
// native code runs), then handed to C++ without copying (index arrays and masks in a
// SharedArrayBuffer are copied first, so native code reads exactly the validated bytes).
import {
  BackendError,
  activeBitsAsBytes,
  blockSparseAttentionBackwardReference,
  blockSparseAttentionReference,
  countAttentionTiles,
  validateAttentionArgs,
  validateAttentionBitmapKVArgs,
  validateBlockSparseAttentionArgs,
  validateBlockSparseAttentionBackwardArgs,
  validateGemvSparseInputArgs,
  validateMaskedAdamArgs,
  validateMaskedSGDArgs,
  type ActiveEntries,
  type AttentionArgs,
  type AttentionBitmapKVArgs,
  type AttentionBitmapKVKernel,
  type AttentionKernel,
  type BlockSparseAttentionArgs,
  type BlockSparseAttentionBackwardArgs,
  type BlockSparseAttentionBackwardKernel,
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

function need<K extends 'gemvSparseInput' | 'attention' | 'attentionBackward' | 'attentionBitmapKV' | 'maskedAdam' | 'maskedSGD'>(addon: NativeAddon, name: K): NonNullable<NativeAddon[K]> {
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
  // Builds from before element masks and lse (which came with attentionBackward) take 15 arguments
  // only; with them, partial tiles and lse run on the reference.
  const extended = typeof addon.attentionBackward === 'function';
  return function blockSparseAttentionNative(input: BlockSparseAttentionArgs): void {
    const a = withUnsharedMasks(input);
    const info = validateBlockSparseAttentionArgs(a);
    const needsExtension = info.hasPartial || a.lse !== undefined;
    if (needsExtension && (!extended || a.headDim === 0)) {
      blockSparseAttentionReference(a);
      return;
    }
    const scale = a.scale ?? 1 / Math.sqrt(a.headDim);
    if (needsExtension || a.elementMask !== undefined) {
      native(a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.causal, scale, a.blockSize, a.blockMask,
        a.elementMask ?? null, a.lse ?? null, a.lseOffset ?? 0);
    } else {
      native(a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.causal, scale, a.blockSize, a.blockMask);
    }
    if (a.stats) a.stats.tiles += countAttentionTiles(a, info);
  };
}

export function blockSparseAttentionBackwardKernelFrom(addon: NativeAddon): BlockSparseAttentionBackwardKernel {
  const native = need(addon, 'attentionBackward');
  return function blockSparseAttentionBackwardNative(input: BlockSparseAttentionBackwardArgs): void {
    const a = withUnsharedMasks(input);
    const info = validateBlockSparseAttentionBackwardArgs(a);
    if (a.headDim === 0 || a.seq === 0 || a.heads === 0) {
      blockSparseAttentionBackwardReference(a);
      return;
    }
    const scale = a.scale ?? 1 / Math.sqrt(a.headDim);
    native(a.heads, a.seq, a.headDim, a.q, a.qOffset, a.k, a.kOffset, a.v, a.vOffset, a.out, a.outOffset, a.dOut, a.dOutOffset, a.lse, a.lseOffset,
      a.causal, scale, a.blockSize, a.blockMask, a.elementMask ?? null, a.dq, a.dqOffset, a.dk, a.dkOffset, a.dv, a.dvOffset);
    if (a.stats) a.stats.tiles += countAttentionTiles(a, info);
  };
}

export function attentionBitmapKVKernelFrom(addon: NativeAddon): AttentionBitmapKVKernel {
  const native = need(addon, 'attentionBitmapKV');
  return function attentionBitmapKVNative(input: AttentionBitmapKVArgs): void {
    const a = withUnsharedBitmaps(input);
    validateAttentionBitmapKVArgs(a);
    const scale = a.scale ?? 1 / Math.sqrt(a.headDim);
    native(a.heads, a.kvHeads, a.headDim, a.positions, a.q, a.qOffset, a.kBits, a.kValues, a.kStart, a.vBits, a.vValues, a.vStart, a.out, a.outOffset, scale);
  };
}

/** `a` with masks in a SharedArrayBuffer replaced by copies (they are validated, then read by C++). */
function withUnsharedMasks<T extends { blockMask: Uint8Array; elementMask?: Uint8Array }>(a: T): T {
  if (typeof a !== 'object' || a === null) return a;
  let out = a;
  if (a.blockMask instanceof Uint8Array) {
    const mask = unshared(a.blockMask);
    if (mask !== a.blockMask) out = { ...out, blockMask: mask };
  }
  if (a.elementMask instanceof Uint8Array) {
    const mask = unshared(a.elementMask);
    if (mask !== a.elementMask) out = { ...out, elementMask: mask };
  }
  return out;
}

/** `a` with bitmaps and row starts in a SharedArrayBuffer replaced by copies. */
function withUnsharedBitmaps(a: AttentionBitmapKVArgs): AttentionBitmapKVArgs {
  if (typeof a !== 'object' || a === null) return a;
  let out = a;
  for (const key of ['kBits', 'vBits', 'kStart', 'vStart'] as const) {
    const x = a[key] as unknown;
    if (x instanceof Uint8Array || x instanceof Int32Array) {
      const copy = unshared(x);
      if (copy !== x) out = { ...out, [key]: copy };
    }
  }
  return out;
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
