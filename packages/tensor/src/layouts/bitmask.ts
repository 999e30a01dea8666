// Bitmask layout: one bit per element (LSB-first, row-major over the flat index) plus the non-zero
// values in that order. Cheapest metadata for moderate sparsity (1 bit per element, any rank).

import { allocStorage, DType, Storage } from '../dtype.js';
import { asTensor, forEachIndex, sizeOf, Tensor, zeros } from '../tensor.js';
import { packedByteLength } from './packed.js';
import type { BitmaskLayout } from './types.js';
import { checkArray, checkLayoutBase, isZeroRaw, layoutFail } from './util.js';

/** Bitmask layout of a dense tensor of any rank and strides; exact zeros (±0) are dropped. */
export function toBitmask<D extends DType>(dense: Tensor<D>): BitmaskLayout<D> {
  const t = asTensor<D>(dense);
  const size = sizeOf(t.shape);
  const bits = new Uint8Array(packedByteLength(size, 1));
  const src = t.data;
  const dtype = t.dtype;
  let count = 0;
  let k = 0;
  forEachIndex(t, (pos) => {
    if (!isZeroRaw(dtype, src[pos]!)) {
      bits[k >>> 3]! |= 1 << (k & 7);
      count++;
    }
    k++;
  });
  const values = allocStorage(dtype, count) as Storage<D>;
  let v = 0;
  k = 0;
  forEachIndex(t, (pos) => {
    if ((bits[k >>> 3]! >>> (k & 7)) & 1) values[v++] = src[pos]!;
    k++;
  });
  return { format: 'bitmask', shape: [...t.shape], dtype, bits, values };
}

function popcount8(b: number): number {
  b = b - ((b >>> 1) & 0x55);
  b = (b & 0x33) + ((b >>> 2) & 0x33);
  return (b + (b >>> 4)) & 0x0f;
}

/** Throws LayoutError naming the field unless the bitmask layout is consistent. */
export function validateBitmask(layout: BitmaskLayout): void {
  const where = 'validateBitmask';
  checkLayoutBase(layout, 'bitmask', where);
  checkArray(where, 'bits', layout.bits, Uint8Array);
  const size = sizeOf(layout.shape);
  const want = packedByteLength(size, 1);
  if (layout.bits.length !== want) {
    layoutFail(where, `bits has ${layout.bits.length} bytes but shape [${layout.shape.join(', ')}] needs ${want}`);
  }
  if (size % 8 !== 0 && want > 0 && layout.bits[want - 1]! >>> (size % 8) !== 0) {
    layoutFail(where, `bits[${want - 1}] has bits set past element ${size - 1} (padding must be zero)`);
  }
  let ones = 0;
  for (let i = 0; i < layout.bits.length; i++) ones += popcount8(layout.bits[i]!);
  if (ones !== layout.values.length) {
    layoutFail(where, `bits mark ${ones} elements but values has ${layout.values.length}`);
  }
}

/** Dense contiguous tensor of a bitmask layout (validates first). */
export function fromBitmask<D extends DType>(layout: BitmaskLayout<D>): Tensor<D> {
  validateBitmask(layout);
  const out = zeros(layout.shape, layout.dtype);
  const dst = out.data;
  const { bits, values } = layout;
  let v = 0;
  for (let byte = 0; byte < bits.length; byte++) {
    let b = bits[byte]!;
    while (b !== 0) {
      const low = b & -b; // lowest set bit, so values are consumed in flat-index order
      dst[byte * 8 + (31 - Math.clz32(low))] = values[v++]!;
      b ^= low;
    }
  }
  return out;
}

/** Bytes of the layout's arrays (bits + values). */
export function bitmaskByteLength(layout: BitmaskLayout): number {
  return layout.bits.byteLength + layout.values.byteLength;
}
