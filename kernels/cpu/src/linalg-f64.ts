// The float64 factorizations of the kernel registry (choleskyF64, triangularInverseF64) on the addon's
// blocked kernels: the same validation as the reference kernels, then one native call.
import {
  BackendError,
  validateCholeskyF64Args,
  validateTriangularInverseF64Args,
  type CholeskyF64Args,
  type CholeskyF64Kernel,
  type CholeskyFailure,
  type TriangularInverseF64Args,
  type TriangularInverseF64Kernel,
} from '@sparse/tensor';
import type { NativeAddon } from './native.js';

export function choleskyF64KernelFrom(addon: NativeAddon): CholeskyF64Kernel {
  const native = addon.choleskyF64;
  if (typeof native !== 'function') throw new BackendError('the native addon does not implement choleskyF64');
  return function choleskyF64Native(a: CholeskyF64Args): CholeskyFailure | null {
    validateCholeskyF64Args(a);
    return native(a.n, a.a, a.aOffset, a.lda);
  };
}

export function triangularInverseF64KernelFrom(addon: NativeAddon): TriangularInverseF64Kernel {
  const native = addon.triangularInverseF64;
  if (typeof native !== 'function') throw new BackendError('the native addon does not implement triangularInverseF64');
  return function triangularInverseF64Native(a: TriangularInverseF64Args): number {
    validateTriangularInverseF64Args(a);
    return native(a.n, a.l, a.lOffset, a.ldl, a.x, a.xOffset, a.ldx);
  };
}
