// The pruning selection kernels of the registry (columnMomentsF32, rowTopKScaledAbs) on the addon: the
// reference kernels' validation, then one native call.
import {
  BackendError,
  validateColumnMomentsF32Args,
  validateRowTopKScaledAbsArgs,
  type ColumnMomentsF32Args,
  type ColumnMomentsF32Kernel,
  type RowTopKScaledAbsArgs,
  type RowTopKScaledAbsKernel,
} from '@sparse/tensor';
import type { NativeAddon } from './native.js';

export function columnMomentsF32KernelFrom(addon: NativeAddon): ColumnMomentsF32Kernel {
  const native = addon.columnMomentsF32;
  if (typeof native !== 'function') throw new BackendError('the native addon does not implement columnMomentsF32');
  return function columnMomentsF32Native(a: ColumnMomentsF32Args): number {
    validateColumnMomentsF32Args(a);
    return native(a.rows, a.cols, a.x, a.xOffset, a.ldx, a.sumSquares, a.mean, a.m2);
  };
}

export function rowTopKScaledAbsKernelFrom(addon: NativeAddon): RowTopKScaledAbsKernel {
  const native = addon.rowTopKScaledAbs;
  if (typeof native !== 'function') throw new BackendError('the native addon does not implement rowTopKScaledAbs');
  return function rowTopKScaledAbsNative(a: RowTopKScaledAbsArgs): number {
    const { outOffset, ldo } = validateRowTopKScaledAbsArgs(a);
    return native(a.rows, a.cols, a.w, a.wOffset, a.ldw, a.scale, a.k, a.mask, a.out ?? null, outOffset, ldo);
  };
}
