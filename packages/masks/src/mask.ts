// The bit-packed Mask type and its algebra. A mask says which entries of a tensor are kept (bit 1) or
// pruned (bit 0); it is stored apart from the weights so it can be saved, composed and compared.

import {
  allocStorage,
  ArgumentError,
  asTensor,
  contiguousStrides,
  forEachIndex,
  isContiguous,
  LayoutError,
  ShapeError,
  sizeOf,
  validateBitmask,
  zeros,
  type BitmaskLayout,
  type DType,
  type Storage,
  type Tensor,
} from '@sparse/tensor';
import { checkSameShape, checkShapeArg, matrixShape, shapeString } from './internal.js';

/**
 * A bit-packed mask over a tensor of `shape`: element with row-major flat index i is kept when bit (i & 31)
 * of bits[i >>> 5] is 1. Bits past the last element are always 0, so whole-word operations (popcount,
 * equality) need no special case. A plain object, so it crosses package boundaries and serializes as is.
 */
export interface Mask {
  shape: number[];
  bits: Uint32Array;
}

/** Number of 32-bit words for n bits. */
export function maskWords(n: number): number {
  return Math.ceil(n / 32);
}

function emptyMask(shape: readonly number[]): Mask {
  return { shape: [...shape], bits: new Uint32Array(maskWords(sizeOf(shape))) };
}

/** Number of set bits of a 32-bit word (SWAR popcount). */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** The valid-bit pattern of the last word (all ones when the size is a multiple of 32). */
function tailMask(size: number): number {
  const r = size & 31;
  return r === 0 ? 0xffffffff : ((1 << r) - 1) >>> 0;
}

/** Throws (ShapeError / ArgumentError naming `name`) unless m is a well-formed Mask. */
export function validateMask(m: unknown, where = 'validateMask', name = 'mask'): asserts m is Mask {
  if (typeof m !== 'object' || m === null) throw new ArgumentError(`${where}: ${name} must be a Mask object`);
  const mm = m as Partial<Mask>;
  checkShapeArg(where, `${name}.shape`, mm.shape);
  if (!(mm.bits instanceof Uint32Array)) throw new ArgumentError(`${where}: ${name}.bits must be a Uint32Array`);
  const size = sizeOf(mm.shape!);
  const words = maskWords(size);
  if (mm.bits.length !== words) {
    throw new ArgumentError(`${where}: ${name}.bits has ${mm.bits.length} words but shape ${shapeString(mm.shape!)} needs ${words}`);
  }
  if (words > 0 && (mm.bits[words - 1]! & ~tailMask(size)) !== 0) {
    throw new ArgumentError(`${where}: ${name}.bits has bits set past element ${size - 1} (padding must be zero)`);
  }
}

export function maskSize(m: Mask): number {
  return sizeOf(m.shape);
}

/** A mask that keeps every element. */
export function maskAll(shape: readonly number[]): Mask {
  const m = emptyMask(checkShapeArg('maskAll', 'shape', shape));
  const size = sizeOf(shape);
  m.bits.fill(0xffffffff);
  if (m.bits.length > 0) m.bits[m.bits.length - 1] = tailMask(size);
  return m;
}

/** A mask that prunes every element. */
export function maskNone(shape: readonly number[]): Mask {
  return emptyMask(checkShapeArg('maskNone', 'shape', shape));
}

function isNonZero(dtype: DType, raw: number): boolean {
  // ±0 are pruned, anything else (NaN included) is kept; float16/bfloat16 store raw bits.
  return dtype === 'float16' || dtype === 'bfloat16' ? (raw & 0x7fff) !== 0 : raw !== 0;
}

/** Keeps exactly the non-zero elements of a tensor of any dtype and strides (±0 pruned, NaN kept). */
export function maskFromTensor(t: Tensor): Mask {
  const v = asTensor(t);
  const m = emptyMask(v.shape);
  const src = v.data;
  const dtype = v.dtype;
  let k = 0;
  forEachIndex(v, (pos) => {
    if (isNonZero(dtype, src[pos]!)) m.bits[k >>> 5]! |= 1 << (k & 31);
    k++;
  });
  return m;
}

/**
 * Keeps the elements for which keep(flatIndex, index) is true, visited in row-major order. `index` is one
 * array reused between calls (copy it to keep it).
 */
export function maskFromPredicate(shape: readonly number[], keep: (flatIndex: number, index: readonly number[]) => boolean): Mask {
  const s = checkShapeArg('maskFromPredicate', 'shape', shape);
  if (typeof keep !== 'function') throw new ArgumentError('maskFromPredicate: keep must be a function');
  const m = emptyMask(s);
  const size = sizeOf(s);
  const idx = new Array<number>(s.length).fill(0);
  for (let i = 0; i < size; i++) {
    if (keep(i, idx)) m.bits[i >>> 5]! |= 1 << (i & 31);
    for (let a = s.length - 1; a >= 0; a--) {
      if (++idx[a]! < s[a]!) break;
      idx[a] = 0;
    }
  }
  return m;
}

/** Keeps the listed flat (row-major) indices; duplicates are allowed, out-of-range indices are an error. */
export function maskFromIndices(shape: readonly number[], indices: ArrayLike<number>): Mask {
  const m = emptyMask(checkShapeArg('maskFromIndices', 'shape', shape));
  const size = sizeOf(shape);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!;
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      throw new ArgumentError(`maskFromIndices: indices[${j}] = ${i} is outside [0, ${size}) for shape ${shapeString(shape)}`);
    }
    m.bits[i >>> 5]! |= 1 << (i & 31);
  }
  return m;
}

/** A mask from one truthy/falsy value per element in row-major order (booleans or numbers). */
export function maskFromBooleans(values: ArrayLike<number | boolean>, shape: readonly number[]): Mask {
  const s = checkShapeArg('maskFromBooleans', 'shape', shape);
  if (values.length !== sizeOf(s)) {
    throw new ShapeError(`maskFromBooleans: ${values.length} values do not fill shape ${shapeString(s)} (${sizeOf(s)})`);
  }
  const m = emptyMask(s);
  for (let i = 0; i < values.length; i++) if (values[i]) m.bits[i >>> 5]! |= 1 << (i & 31);
  return m;
}

/** Whether the element with row-major flat index i is kept. */
export function isKept(m: Mask, flatIndex: number): boolean {
  return ((m.bits[flatIndex >>> 5]! >>> (flatIndex & 31)) & 1) === 1;
}

/** One byte per element, 1 = kept, row-major. */
export function maskToBooleans(m: Mask): Uint8Array {
  const size = maskSize(m);
  const out = new Uint8Array(size);
  forEachKept(m, (i) => (out[i] = 1));
  return out;
}

/** A contiguous tensor of 1 (kept) and 0 (pruned) in the given dtype (float32 by default). */
export function maskToTensor<D extends DType = 'float32'>(m: Mask, dtype: D = 'float32' as D): Tensor<D> {
  validateMask(m, 'maskToTensor');
  const out = zeros(m.shape, dtype);
  const one = dtype === 'float16' ? 0x3c00 : dtype === 'bfloat16' ? 0x3f80 : 1;
  forEachKept(m, (i) => (out.data[i] = one));
  return out;
}

/** Calls fn with the flat index of every kept element, in increasing order. */
export function forEachKept(m: Mask, fn: (flatIndex: number) => void): void {
  const bits = m.bits;
  for (let w = 0; w < bits.length; w++) {
    let b = bits[w]!;
    while (b !== 0) {
      const low = b & -b;
      fn(w * 32 + (31 - Math.clz32(low)));
      b ^= low;
    }
  }
}

/** The flat indices of the kept elements, increasing. */
export function maskIndices(m: Mask): Int32Array {
  const out = new Int32Array(count(m));
  let k = 0;
  forEachKept(m, (i) => (out[k++] = i));
  return out;
}

/** The same bits seen with another shape of the same size (no copy of the bits). */
export function reshapeMask(m: Mask, shape: readonly number[]): Mask {
  const s = checkShapeArg('reshapeMask', 'shape', shape);
  if (sizeOf(s) !== maskSize(m)) {
    throw new ShapeError(`reshapeMask: cannot view a mask of shape ${shapeString(m.shape)} (${maskSize(m)}) as ${shapeString(s)} (${sizeOf(s)})`);
  }
  return { shape: s, bits: m.bits };
}

export function cloneMask(m: Mask): Mask {
  return { shape: [...m.shape], bits: m.bits.slice() };
}

export interface ApplyMaskOptions {
  /** Zero the pruned elements of `t` itself instead of returning a new contiguous tensor. */
  inPlace?: boolean;
}

/**
 * Zeros the pruned elements of a tensor of any dtype and strides. Returns a new contiguous tensor (the
 * input untouched), or with { inPlace: true } writes into t's storage through its view and returns t.
 */
export function applyMask<D extends DType>(m: Mask, t: Tensor<D>, opts: ApplyMaskOptions = {}): Tensor<D> {
  validateMask(m, 'applyMask');
  const v = asTensor<D>(t);
  checkSameShape('applyMask', 'mask', m.shape, 'tensor', v.shape);
  const src = v.data;
  if (isContiguous(v)) return applyMaskContiguous(m, v, opts.inPlace === true ? t : undefined);
  if (opts.inPlace) {
    let k = 0;
    forEachIndex(v, (pos) => {
      if (!isKept(m, k)) src[pos] = 0;
      k++;
    });
    return t;
  }
  const out = allocStorage(v.dtype, sizeOf(v.shape)) as Storage<D>;
  let k = 0;
  forEachIndex(v, (pos) => {
    if (isKept(m, k)) out[k] = src[pos]!;
    k++;
  });
  return { data: out, shape: [...v.shape], stride: contiguousStrides(v.shape), offset: 0, dtype: v.dtype };
}

/**
 * applyMask on a contiguous tensor, 32 entries per mask word: a fully kept word is skipped (in place)
 * or copied in one run, only the cleared bits of the others are visited. `inPlace` is the caller's
 * tensor to return when writing into its storage.
 */
function applyMaskContiguous<D extends DType>(m: Mask, v: Tensor<D>, inPlace: Tensor<D> | undefined): Tensor<D> {
  const n = sizeOf(v.shape);
  const o = v.offset;
  const src = v.data;
  const dst = inPlace !== undefined ? src : (allocStorage(v.dtype, n) as Storage<D>);
  const base = inPlace !== undefined ? o : 0;
  if (inPlace === undefined) (dst as Float32Array).set((src as Float32Array).subarray(o, o + n));
  const bits = m.bits;
  for (let w = 0; w < bits.length; w++) {
    let cleared = ~bits[w]!;
    const start = w * 32;
    // Bits past the last entry are not entries.
    if (start + 32 > n) cleared &= n - start >= 32 ? -1 : (1 << (n - start)) - 1;
    while (cleared !== 0) {
      const b = 31 - Math.clz32(cleared & -cleared);
      dst[base + start + b] = 0;
      cleared &= cleared - 1;
    }
  }
  if (inPlace !== undefined) return inPlace;
  return { data: dst, shape: [...v.shape], stride: contiguousStrides(v.shape), offset: 0, dtype: v.dtype };
}

function binary(where: string, a: Mask, b: Mask, op: (x: number, y: number) => number): Mask {
  validateMask(a, where, 'a');
  validateMask(b, where, 'b');
  checkSameShape(where, 'a', a.shape, 'b', b.shape);
  const out = emptyMask(a.shape);
  for (let w = 0; w < out.bits.length; w++) out.bits[w] = op(a.bits[w]!, b.bits[w]!);
  return out;
}

/** Kept in both. */
export function and(a: Mask, b: Mask): Mask {
  return binary('and', a, b, (x, y) => x & y);
}

/** Kept in either. */
export function or(a: Mask, b: Mask): Mask {
  return binary('or', a, b, (x, y) => x | y);
}

/** Kept in exactly one. */
export function xor(a: Mask, b: Mask): Mask {
  return binary('xor', a, b, (x, y) => x ^ y);
}

/** Kept in a and not in b (set difference a \ b). */
export function andNot(a: Mask, b: Mask): Mask {
  return binary('andNot', a, b, (x, y) => x & ~y);
}

/** Complement: kept exactly where m prunes. */
export function not(m: Mask): Mask {
  validateMask(m, 'not');
  const out = emptyMask(m.shape);
  for (let w = 0; w < out.bits.length; w++) out.bits[w] = ~m.bits[w]!;
  if (out.bits.length > 0) out.bits[out.bits.length - 1]! &= tailMask(maskSize(m)); // padding stays zero
  return out;
}

/** Same shape and the same kept elements. */
export function equals(a: Mask, b: Mask): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  for (let w = 0; w < a.bits.length; w++) if (a.bits[w] !== b.bits[w]) return false;
  return true;
}

/** Number of kept elements. */
export function count(m: Mask): number {
  let c = 0;
  for (let w = 0; w < m.bits.length; w++) c += popcount32(m.bits[w]!);
  return c;
}

/** Fraction of elements kept; 1 for a mask of zero elements (nothing is pruned). */
export function density(m: Mask): number {
  const size = maskSize(m);
  return size === 0 ? 1 : count(m) / size;
}

/** Fraction of elements pruned, 1 - density. */
export function sparsity(m: Mask): number {
  const size = maskSize(m);
  return size === 0 ? 0 : (size - count(m)) / size;
}

/** Kept bits in the flat range [start, end), a word at a time. */
function countRange(bits: Uint32Array, start: number, end: number): number {
  if (end <= start) return 0;
  const w0 = start >>> 5;
  const w1 = (end - 1) >>> 5;
  const lo = (0xffffffff << (start & 31)) >>> 0;
  const hi = tailMask(end);
  if (w0 === w1) return popcount32(bits[w0]! & lo & hi);
  let c = popcount32(bits[w0]! & lo) + popcount32(bits[w1]! & hi);
  for (let w = w0 + 1; w < w1; w++) c += popcount32(bits[w]!);
  return c;
}

/** Kept elements in each row of a matrix mask. */
export function countPerRow(m: Mask): Int32Array {
  validateMask(m, 'countPerRow');
  const [rows, cols] = matrixShape('countPerRow', 'mask', m.shape);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = countRange(m.bits, r * cols, (r + 1) * cols);
  return out;
}

/** Kept elements in each column of a matrix mask. */
export function countPerColumn(m: Mask): Int32Array {
  validateMask(m, 'countPerColumn');
  const [, cols] = matrixShape('countPerColumn', 'mask', m.shape);
  const out = new Int32Array(cols);
  forEachKept(m, (i) => out[i % cols]!++);
  return out;
}

/**
 * Kept elements in each [br, bc] block of a matrix mask, as an int32 tensor of shape
 * [ceil(rows / br), ceil(cols / bc)]; edge blocks cover only what is inside the matrix.
 */
export function countPerBlock(m: Mask, blockShape: readonly [number, number]): Tensor<'int32'> {
  validateMask(m, 'countPerBlock');
  const [rows, cols] = matrixShape('countPerBlock', 'mask', m.shape);
  const [br, bc] = blockShape ?? [];
  if (!Number.isSafeInteger(br) || !Number.isSafeInteger(bc) || br! < 1 || bc! < 1) {
    throw new ArgumentError(`countPerBlock: blockShape must be two positive integers, got ${JSON.stringify(blockShape)}`);
  }
  const nbr = Math.ceil(rows / br!);
  const nbc = Math.ceil(cols / bc!);
  const out = zeros([nbr, nbc], 'int32');
  forEachKept(m, (i) => {
    const r = Math.floor(i / cols);
    out.data[Math.floor(r / br!) * nbc + Math.floor((i - r * cols) / bc!)]!++;
  });
  return out;
}

export type ComposeMode = 'union' | 'intersection' | { atLeast: number };

/**
 * Combines several masks of one shape (Composable Sparse Fine-Tuning composes task and language masks):
 * 'union' keeps what any mask keeps, 'intersection' what all keep, { atLeast: k } what at least k keep.
 */
export function composeMasks(masks: readonly Mask[], mode: ComposeMode = 'union'): Mask {
  if (!Array.isArray(masks) || masks.length === 0) throw new ArgumentError('composeMasks: masks must be a non-empty array');
  masks.forEach((m, i) => {
    validateMask(m, 'composeMasks', `masks[${i}]`);
    checkSameShape('composeMasks', 'masks[0]', masks[0]!.shape, `masks[${i}]`, m.shape);
  });
  const atLeast = mode === 'union' ? 1 : mode === 'intersection' ? masks.length : typeof mode === 'object' && mode !== null ? mode.atLeast : NaN;
  if (!Number.isInteger(atLeast) || atLeast < 1 || atLeast > masks.length) {
    throw new ArgumentError(`composeMasks: mode must be 'union', 'intersection' or { atLeast: k } with k in [1, ${masks.length}], got ${JSON.stringify(mode)}`);
  }
  const out = emptyMask(masks[0]!.shape);
  if (atLeast === 1 || atLeast === masks.length) {
    const union = atLeast === 1;
    for (let w = 0; w < out.bits.length; w++) {
      let acc = union ? 0 : 0xffffffff;
      for (const m of masks) acc = union ? acc | m.bits[w]! : acc & m.bits[w]!;
      out.bits[w] = acc;
    }
    if (!union && out.bits.length > 0) out.bits[out.bits.length - 1]! &= tailMask(maskSize(out));
    return out;
  }
  const votes = new Int32Array(maskSize(out));
  for (const m of masks) forEachKept(m, (i) => votes[i]!++);
  for (let i = 0; i < votes.length; i++) if (votes[i]! >= atLeast) out.bits[i >>> 5]! |= 1 << (i & 31);
  return out;
}

export interface DivergenceOptions {
  /** Divide by the number of elements, giving the fraction of positions that differ (default false). */
  normalize?: boolean;
}

/**
 * Sparse Architecture Divergence (SR-STE, Zhou et al. 2021): the number of positions whose kept/pruned
 * state differs between two masks, i.e. the L1 distance ||a - b||_1 of the binary masks (popcount of
 * a XOR b). Computed between the masks of one layer at two training steps it measures how much the sparse
 * topology changed. With { normalize: true } it is divided by the number of elements.
 */
export function sparseArchitectureDivergence(a: Mask, b: Mask, opts: DivergenceOptions = {}): number {
  const d = count(xor(a, b));
  if (!opts.normalize) return d;
  const size = maskSize(a);
  return size === 0 ? 0 : d / size;
}

/** Intersection over union |a ∩ b| / |a ∪ b| of the kept sets; 1 when both keep nothing (identical masks). */
export function iou(a: Mask, b: Mask): number {
  const inter = count(and(a, b));
  const uni = count(or(a, b));
  return uni === 0 ? 1 : inter / uni;
}

/**
 * Overlap |a ∩ b| / |a|: the fraction of a's kept elements that b keeps too (asymmetric; the measure of
 * "RL finetunes small subnetworks" for how much of one run's updated subnetwork another run shares).
 * 1 when a keeps nothing.
 */
export function overlap(a: Mask, b: Mask): number {
  const inter = count(and(a, b));
  const ca = count(a);
  return ca === 0 ? 1 : inter / ca;
}

/**
 * The `BitmaskLayout` of @sparse/tensor for `values` under this mask: the mask's bits (bytes, LSB-first,
 * the same bit order) and the kept values in row-major order. Kept elements that are zero stay stored,
 * so the layout's bits are exactly the mask.
 */
export function maskToBitmask<D extends DType>(m: Mask, values: Tensor<D>): BitmaskLayout<D> {
  validateMask(m, 'maskToBitmask');
  const v = asTensor<D>(values);
  checkSameShape('maskToBitmask', 'mask', m.shape, 'values', v.shape);
  const size = maskSize(m);
  const bytes = new Uint8Array(Math.ceil(size / 8));
  for (let i = 0; i < bytes.length; i++) bytes[i] = (m.bits[i >>> 2]! >>> ((i & 3) * 8)) & 0xff;
  const kept = allocStorage(v.dtype, count(m)) as Storage<D>;
  let k = 0;
  let j = 0;
  forEachIndex(v, (pos) => {
    if (isKept(m, k)) kept[j++] = v.data[pos]!;
    k++;
  });
  return { format: 'bitmask', shape: [...v.shape], dtype: v.dtype, bits: bytes, values: kept };
}

/** The mask of a `BitmaskLayout` (its stored positions), validating the layout first. */
export function maskFromBitmask(layout: BitmaskLayout): Mask {
  try {
    validateBitmask(layout);
  } catch (e) {
    if (e instanceof LayoutError) throw e;
    throw new LayoutError(`maskFromBitmask: ${(e as Error).message}`, { cause: e });
  }
  const m = emptyMask(layout.shape);
  const bytes = layout.bits;
  for (let i = 0; i < bytes.length; i++) m.bits[i >>> 2]! |= bytes[i]! << ((i & 3) * 8);
  return m;
}

/** "kept 3 of 8 [2, 4]" — a short description for logs. */
export function describeMask(m: Mask): string {
  return `kept ${count(m)} of ${maskSize(m)} ${shapeString(m.shape)}`;
}
