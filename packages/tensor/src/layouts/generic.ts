// Format-independent entry points: dispatch on `layout.format`, so code holding "some sparse layout"
// (a loaded checkpoint, a kernel argument) needs no switch of its own.

import type { DType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { bitmaskByteLength, fromBitmask, validateBitmask } from './bitmask.js';
import { bsrByteLength, fromBSR, validateBSR } from './bsr.js';
import { cooByteLength, fromCOO, validateCOO } from './coo.js';
import { csrByteLength, fromCSR, validateCSR } from './csr.js';
import { fromNM, nmByteLength, validateNM } from './nm.js';
import type { SparseFormat, SparseLayout } from './types.js';
import { isZeroRaw, layoutFail } from './util.js';

const FORMATS: readonly SparseFormat[] = ['bitmask', 'csr', 'bsr', 'nm', 'coo'];

function formatOf(layout: unknown, where: string): SparseFormat {
  const f = (layout as { format?: unknown } | null)?.format;
  if (!FORMATS.includes(f as SparseFormat)) {
    layoutFail(where, `unknown layout format ${JSON.stringify(f)}; expected one of ${FORMATS.join(', ')}`);
  }
  return f as SparseFormat;
}

/** Whether a value carries a known sparse `format` tag (it may still be invalid; see validateLayout). */
export function isSparseLayout(value: unknown): value is SparseLayout {
  return typeof value === 'object' && value !== null && FORMATS.includes((value as { format?: unknown }).format as SparseFormat);
}

/** Throws LayoutError naming the field and index unless the layout is consistent. */
export function validateLayout(layout: SparseLayout): void {
  switch (formatOf(layout, 'validateLayout')) {
    case 'bitmask':
      return validateBitmask(layout as Extract<SparseLayout, { format: 'bitmask' }>);
    case 'csr':
      return validateCSR(layout as Extract<SparseLayout, { format: 'csr' }>);
    case 'bsr':
      return validateBSR(layout as Extract<SparseLayout, { format: 'bsr' }>);
    case 'nm':
      return validateNM(layout as Extract<SparseLayout, { format: 'nm' }>);
    case 'coo':
      return validateCOO(layout as Extract<SparseLayout, { format: 'coo' }>);
  }
}

/** The dense contiguous tensor a layout stands for (validates first). */
export function toDense<D extends DType>(layout: SparseLayout<D>): Tensor<D> {
  switch (formatOf(layout, 'toDense')) {
    case 'bitmask':
      return fromBitmask(layout as Extract<SparseLayout<D>, { format: 'bitmask' }>);
    case 'csr':
      return fromCSR(layout as Extract<SparseLayout<D>, { format: 'csr' }>);
    case 'bsr':
      return fromBSR(layout as Extract<SparseLayout<D>, { format: 'bsr' }>);
    case 'nm':
      return fromNM(layout as Extract<SparseLayout<D>, { format: 'nm' }>);
    case 'coo':
      return fromCOO(layout as Extract<SparseLayout<D>, { format: 'coo' }>);
  }
}

/** Bytes of all the layout's typed arrays: what it costs in memory or in a safetensors file. */
export function layoutByteLength(layout: SparseLayout): number {
  switch (formatOf(layout, 'layoutByteLength')) {
    case 'bitmask':
      return bitmaskByteLength(layout as Extract<SparseLayout, { format: 'bitmask' }>);
    case 'csr':
      return csrByteLength(layout as Extract<SparseLayout, { format: 'csr' }>);
    case 'bsr':
      return bsrByteLength(layout as Extract<SparseLayout, { format: 'bsr' }>);
    case 'nm':
      return nmByteLength(layout as Extract<SparseLayout, { format: 'nm' }>);
    case 'coo':
      return cooByteLength(layout as Extract<SparseLayout, { format: 'coo' }>);
  }
}

/** Entries stored explicitly (values.length): includes zeros kept in BSR blocks and N:M slots. */
export function storedCount(layout: SparseLayout): number {
  formatOf(layout, 'storedCount');
  return layout.values.length;
}

/** Non-zero entries (±0 not counted, NaN counted): the nnz of the dense tensor the layout stands for. */
export function nnz(layout: SparseLayout): number {
  formatOf(layout, 'nnz');
  const { values, dtype } = layout;
  let count = 0;
  for (let i = 0; i < values.length; i++) if (!isZeroRaw(dtype, values[i]!)) count++;
  return count;
}

/** Elements of the dense shape. */
function denseSize(layout: SparseLayout): number {
  let n = 1;
  for (const d of layout.shape) n *= d;
  return n;
}

/**
 * nnz / number of dense elements (0 for an empty shape): the fraction of the stored tensor that is
 * nonzero. A mask's kept fraction is @sparse/masks' `density` (1 for an empty mask).
 */
export function nnzFraction(layout: SparseLayout): number {
  const size = denseSize(layout);
  return size === 0 ? 0 : nnz(layout) / size;
}
