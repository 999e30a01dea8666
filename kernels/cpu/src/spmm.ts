// The native sparse x dense kernels as registry kernels: validated in TypeScript with the same
// validators as the reference kernels (the per-index scan left to the addon, index-check.ts), then
// handed to C++ without copying (index arrays in a
// SharedArrayBuffer are copied first, so native code reads exactly the validated indices).
import {
  BackendError,
  validateSpmmBlockArgs,
  validateSpmmCSRArgs,
  validateSpmmNMArgs,
  type SpmmBlockArgs,
  type SpmmBlockKernel,
  type SpmmCSRArgs,
  type SpmmCSRKernel,
  type SpmmNMArgs,
  type SpmmNMKernel,
} from '@sparse/tensor';
import type { NativeAddon } from './native.js';
import { callWithNativeIndexCheck } from './index-check.js';
import { withUnsharedIndices } from './unshared.js';

function need<K extends 'spmmCSR' | 'spmmNM' | 'spmmBlock'>(addon: NativeAddon, name: K): NonNullable<NativeAddon[K]> {
  const fn = addon[name];
  if (typeof fn !== 'function') throw new BackendError(`the native addon does not implement ${name}`);
  return fn as NonNullable<NativeAddon[K]>;
}

export function spmmCSRKernelFrom(addon: NativeAddon): SpmmCSRKernel {
  const native = need(addon, 'spmmCSR');
  return function spmmCSRNative(input: SpmmCSRArgs): void {
    const args = withUnsharedIndices(input, 'a', ['indptr', 'indices']);
    callWithNativeIndexCheck(args, validateSpmmCSRArgs, ({ a }) =>
      native(a.shape[0], a.shape[1], a.indptr, a.indices, a.values, args.n, args.alpha, args.b, args.bOffset, args.ldb, args.beta, args.c, args.cOffset, args.ldc),
    );
  };
}

export function spmmNMKernelFrom(addon: NativeAddon): SpmmNMKernel {
  const native = need(addon, 'spmmNM');
  return function spmmNMNative(input: SpmmNMArgs): void {
    const args = withUnsharedIndices(input, 'a', ['indices']);
    callWithNativeIndexCheck(args, validateSpmmNMArgs, ({ a }) =>
      native(a.shape[0], a.shape[1], a.n, a.m, a.indexBits, a.values, a.indices, args.n, args.alpha, args.b, args.bOffset, args.ldb, args.beta, args.c, args.cOffset, args.ldc),
    );
  };
}

export function spmmBlockKernelFrom(addon: NativeAddon): SpmmBlockKernel {
  const native = need(addon, 'spmmBlock');
  return function spmmBlockNative(input: SpmmBlockArgs): void {
    const args = withUnsharedIndices(input, 'a', ['indptr', 'indices']);
    callWithNativeIndexCheck(args, validateSpmmBlockArgs, ({ a }) => {
      const [br, bc] = a.blockShape;
      native(a.shape[0], a.shape[1], br, bc, a.indptr, a.indices, a.values, args.n, args.alpha, args.b, args.bOffset, args.ldb, args.beta, args.c, args.cOffset, args.ldc);
    });
  };
}
