// The native kernels of a sparse linear layer's training step as registry kernels: validated in
// TypeScript with the reference kernels' validators (typed errors; the per-index scan is left to
// the addon's own check, index-check.ts), then handed to C++ without copying (index arrays in a SharedArrayBuffer are copied first, so
// native code reads exactly the validated indices).
import {
  BackendError,
  validateLinearCSRArgs,
  validateLinearCSRGradInputArgs,
  validateSddmmCSRArgs,
  type LinearCSRArgs,
  type LinearCSRGradInputArgs,
  type LinearCSRGradInputKernel,
  type LinearCSRKernel,
  type SddmmCSRArgs,
  type SddmmCSRKernel,
} from '@sparse/tensor';
import type { NativeAddon } from './native.js';
import { callWithNativeIndexCheck } from './index-check.js';
import { withUnsharedIndices } from './unshared.js';

function need<K extends 'linearCSR' | 'linearCSRGradInput' | 'sddmmCSR'>(addon: NativeAddon, name: K): NonNullable<NativeAddon[K]> {
  const fn = addon[name];
  if (typeof fn !== 'function') throw new BackendError(`the native addon does not implement ${name}`);
  return fn as NonNullable<NativeAddon[K]>;
}

export function linearCSRKernelFrom(addon: NativeAddon): LinearCSRKernel {
  const native = need(addon, 'linearCSR');
  return function linearCSRNative(input: LinearCSRArgs): void {
    const a = withUnsharedIndices(input, 'w', ['indptr', 'indices']);
    callWithNativeIndexCheck(a, validateLinearCSRArgs, ({ w }) =>
      native(w.shape[0], w.shape[1], w.indptr, w.indices, w.values, a.tokens, a.alpha, a.x, a.xOffset, a.ldx, a.beta, a.y, a.yOffset, a.ldy),
    );
  };
}

export function linearCSRGradInputKernelFrom(addon: NativeAddon): LinearCSRGradInputKernel {
  const native = need(addon, 'linearCSRGradInput');
  return function linearCSRGradInputNative(input: LinearCSRGradInputArgs): void {
    const a = withUnsharedIndices(input, 'w', ['indptr', 'indices']);
    callWithNativeIndexCheck(a, validateLinearCSRGradInputArgs, ({ w }) =>
      native(w.shape[0], w.shape[1], w.indptr, w.indices, w.values, a.tokens, a.alpha, a.dy, a.dyOffset, a.lddy, a.beta, a.dx, a.dxOffset, a.lddx),
    );
  };
}

export function sddmmCSRKernelFrom(addon: NativeAddon): SddmmCSRKernel {
  const native = need(addon, 'sddmmCSR');
  return function sddmmCSRNative(input: SddmmCSRArgs): void {
    const a = withUnsharedIndices(input, 'pattern', ['indptr', 'indices']);
    callWithNativeIndexCheck(a, validateSddmmCSRArgs, ({ pattern }) =>
      native(pattern.shape[0], pattern.shape[1], pattern.indptr, pattern.indices, a.tokens, a.alpha, a.dy, a.dyOffset, a.lddy, a.x, a.xOffset, a.ldx, a.beta, a.out, a.outOffset),
    );
  };
}
