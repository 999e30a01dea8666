// COO layout with delta-coded flat indices: deltas[0] is the first row-major flat index, each later
// entry the gap to the previous one (>= 1). Suits very sparse tensors of any rank; gaps compress well.

import { allocStorage, DType, Storage } from '../dtype.js';
import { ShapeError } from '../errors.js';
import { asTensor, forEachIndex, sizeOf, Tensor, zeros } from '../tensor.js';
import type { COOLayout } from './types.js';
import { checkArray, checkLayoutBase, isZeroRaw, layoutFail } from './util.js';

/** COO layout of a dense tensor of any rank and strides; exact zeros (±0) are dropped. */
export function toCOO<D extends DType>(dense: Tensor<D>): COOLayout<D> {
  const t = asTensor<D>(dense);
  const size = sizeOf(t.shape);
  if (size > 0x100000000) throw new ShapeError(`toCOO: ${size} elements exceed the 2^32 flat indices a Uint32 delta can start at`);
  const src = t.data;
  const dtype = t.dtype;
  let count = 0;
  forEachIndex(t, (pos) => {
    if (!isZeroRaw(dtype, src[pos]!)) count++;
  });
  const deltas = new Uint32Array(count);
  const values = allocStorage(dtype, count) as Storage<D>;
  let k = 0;
  let flat = 0;
  let prev = 0;
  forEachIndex(t, (pos) => {
    const raw = src[pos]!;
    if (!isZeroRaw(dtype, raw)) {
      deltas[k] = flat - prev;
      values[k++] = raw;
      prev = flat;
    }
    flat++;
  });
  return { format: 'coo', shape: [...t.shape], dtype, deltas, values };
}

/** Throws LayoutError naming the field unless the COO layout is consistent. */
export function validateCOO(layout: COOLayout): void {
  const where = 'validateCOO';
  checkLayoutBase(layout, 'coo', where);
  checkArray(where, 'deltas', layout.deltas, Uint32Array);
  const { deltas, values } = layout;
  if (deltas.length !== values.length) {
    layoutFail(where, `deltas has ${deltas.length} entries but values has ${values.length}`);
  }
  const size = sizeOf(layout.shape);
  let flat = -1;
  for (let k = 0; k < deltas.length; k++) {
    const d = deltas[k]!;
    if (k > 0 && d === 0) layoutFail(where, `deltas[${k}] is 0: flat indices must be strictly increasing (duplicate entry)`);
    flat = k === 0 ? d : flat + d;
    if (flat >= size) {
      layoutFail(where, `deltas[${k}] reaches flat index ${flat}, outside shape [${layout.shape.join(', ')}] (${size} elements)`);
    }
  }
}

/** Dense contiguous tensor of a COO layout (validates first). */
export function fromCOO<D extends DType>(layout: COOLayout<D>): Tensor<D> {
  validateCOO(layout);
  const out = zeros(layout.shape, layout.dtype);
  const dst = out.data;
  const { deltas, values } = layout;
  let flat = 0;
  for (let k = 0; k < deltas.length; k++) {
    flat = k === 0 ? deltas[0]! : flat + deltas[k]!;
    dst[flat] = values[k]!;
  }
  return out;
}

/** Bytes of the layout's arrays (deltas + values). */
export function cooByteLength(layout: COOLayout): number {
  return layout.deltas.byteLength + layout.values.byteLength;
}
