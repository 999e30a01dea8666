import { allocStorage, assertDType, bytesPerElement, DType, dtypeOfStorage, Storage, storageMatches } from './dtype.js';
import { ArgumentError, DTypeError, ShapeError } from './errors.js';
import { checkAllocation } from './limits.js';

/**
 * A strided view over a typed array, with the field names of scijs `ndarray`:
 * element (i0, i1, ...) lives at data[offset + stride[0]*i0 + stride[1]*i1 + ...].
 * Views share storage; nothing here copies unless its name says so.
 */
export interface Tensor<D extends DType = DType> {
  data: Storage<D>;
  shape: number[];
  stride: number[];
  offset: number;
  dtype: D;
}

export type Float32Tensor = Tensor<'float32'>;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C order) strides for a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i]!;
  }
  return stride;
}

function checkShape(shape: readonly number[], where: string): void {
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isInteger(d) || (d as number) < 0) {
      throw new ShapeError(`${where}: shape[${i}] must be a non-negative integer, got ${String(d)} in [${shape.join(', ')}]`);
    }
  }
}

/** Smallest and largest flat index a view can touch (relative to data). */
function reach(shape: readonly number[], stride: readonly number[], offset: number): [number, number] {
  let lo = offset;
  let hi = offset;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return [offset, offset - 1];
    const span = stride[i]! * (shape[i]! - 1);
    if (span < 0) lo += span;
    else hi += span;
  }
  return [lo, hi];
}

export interface TensorOptions<D extends DType> {
  dtype?: D;
  stride?: number[];
  offset?: number;
}

/**
 * Wraps a typed array as a tensor without copying. The dtype is taken from the array when it is
 * unambiguous; a Uint16Array needs dtype 'float16' or 'bfloat16', a Uint8Array may be 'bool'.
 */
export function tensor<D extends DType>(data: Storage<D>, shape: readonly number[], opts: TensorOptions<D> = {}): Tensor<D> {
  const dtype = (opts.dtype ?? dtypeOfStorage(data)) as D | undefined;
  if (dtype === undefined) {
    throw new DTypeError(`tensor: cannot infer dtype from ${(data as object)?.constructor?.name ?? typeof data}; pass { dtype }`);
  }
  assertDType(dtype, 'tensor');
  if (!storageMatches(dtype, data)) {
    throw new DTypeError(`tensor: dtype ${dtype} does not match storage ${(data as object)?.constructor?.name}`);
  }
  checkShape(shape, 'tensor');
  const stride = opts.stride ? [...opts.stride] : contiguousStrides(shape);
  const offset = opts.offset ?? 0;
  if (stride.length !== shape.length) {
    throw new ShapeError(`tensor: stride has ${stride.length} entries but shape [${shape.join(', ')}] has ${shape.length}`);
  }
  if (!Number.isInteger(offset) || stride.some((s) => !Number.isInteger(s))) {
    throw new ShapeError('tensor: stride and offset must be integers');
  }
  const [lo, hi] = reach(shape, stride, offset);
  if (hi >= lo && (lo < 0 || hi >= data.length)) {
    throw new ShapeError(
      `tensor: view shape [${shape.join(', ')}] stride [${stride.join(', ')}] offset ${offset} reaches [${lo}, ${hi}] outside data of length ${data.length}`,
    );
  }
  return { data, shape: [...shape], stride, offset, dtype };
}

export function zeros<D extends DType = 'float32'>(shape: readonly number[], dtype: D = 'float32' as D): Tensor<D> {
  checkShape(shape, 'zeros');
  assertDType(dtype, 'zeros');
  checkAllocation('zeros', `shape [${shape.join(', ')}] of ${dtype}`, sizeOf(shape), bytesPerElement(dtype));
  return { data: allocStorage(dtype, sizeOf(shape)), shape: [...shape], stride: contiguousStrides(shape), offset: 0, dtype };
}

/** A float32 tensor from nested or flat JS numbers (copies). */
export function fromArray(values: ArrayLike<number>, shape: readonly number[]): Float32Tensor {
  if (values.length !== sizeOf(shape)) {
    throw new ShapeError(`fromArray: ${values.length} values do not fill shape [${shape.join(', ')}] (${sizeOf(shape)})`);
  }
  return tensor(Float32Array.from(values), shape);
}

/**
 * Accepts any object with the ndarray fields (a scijs `ndarray` included) as a Tensor, without copying.
 * Returns the same object when its `dtype` is already one of ours; otherwise a new view over the same data.
 */
export function asTensor<D extends DType = DType>(value: unknown, dtype?: D): Tensor<D> {
  const v = value as Partial<Tensor> & { dtype?: unknown };
  if (typeof v !== 'object' || v === null || !ArrayBuffer.isView(v.data) || !Array.isArray(v.shape) || !Array.isArray(v.stride)) {
    throw new ArgumentError('asTensor: expected an object with data (typed array), shape, stride and offset');
  }
  const wanted = dtype ?? (v.dtype as D);
  assertDType(wanted, 'asTensor');
  if (!storageMatches(wanted, v.data)) {
    throw new DTypeError(`asTensor: dtype ${wanted} does not match storage ${(v.data as object).constructor.name}`);
  }
  const checked = tensor(v.data as Storage<D>, v.shape as number[], { dtype: wanted, stride: v.stride as number[], offset: v.offset ?? 0 });
  if (v.dtype === wanted && typeof v.offset === 'number') return value as Tensor<D>;
  return checked;
}

export function isContiguous(t: Tensor): boolean {
  const expect = contiguousStrides(t.shape);
  for (let i = 0; i < t.shape.length; i++) {
    if (t.shape[i]! > 1 && t.stride[i] !== expect[i]) return false;
  }
  return true;
}

/** Flat position of a multi-index in `data`. */
export function indexOf(t: Tensor, idx: readonly number[]): number {
  if (idx.length !== t.shape.length) {
    throw new ShapeError(`index has ${idx.length} coordinates for a rank-${t.shape.length} tensor`);
  }
  let p = t.offset;
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= t.shape[i]!) {
      throw new ShapeError(`index ${k} out of range for dimension ${i} of size ${t.shape[i]}`);
    }
    p += k * t.stride[i]!;
  }
  return p;
}

export function get(t: Tensor, ...idx: number[]): number {
  return t.data[indexOf(t, idx)]!;
}

export function set(t: Tensor, value: number, ...idx: number[]): void {
  t.data[indexOf(t, idx)] = value;
}

/** Permutes axes as a view (default: reverse them). */
export function transpose<D extends DType>(t: Tensor<D>, perm?: readonly number[]): Tensor<D> {
  const rank = t.shape.length;
  const p = perm ?? [...Array(rank).keys()].reverse();
  if (p.length !== rank || new Set(p).size !== rank || p.some((a) => !Number.isInteger(a) || a < 0 || a >= rank)) {
    throw new ShapeError(`transpose: [${p.join(', ')}] is not a permutation of ${rank} axes`);
  }
  return { data: t.data, shape: p.map((a) => t.shape[a]!), stride: p.map((a) => t.stride[a]!), offset: t.offset, dtype: t.dtype };
}

/** A range along one axis: [start, end) with a step (may be negative), or a single index (drops the axis). */
export type SliceSpec = number | null | undefined | { start?: number; end?: number; step?: number };

/** Slices as a view. One spec per leading axis; missing specs keep the whole axis. */
export function slice<D extends DType>(t: Tensor<D>, ...specs: SliceSpec[]): Tensor<D> {
  if (specs.length > t.shape.length) {
    throw new ShapeError(`slice: ${specs.length} specs for a rank-${t.shape.length} tensor`);
  }
  let offset = t.offset;
  const shape: number[] = [];
  const stride: number[] = [];
  for (let i = 0; i < t.shape.length; i++) {
    const n = t.shape[i]!;
    const s = specs[i];
    if (typeof s === 'number') {
      const k = s < 0 ? n + s : s;
      if (!Number.isInteger(k) || k < 0 || k >= n) throw new ShapeError(`slice: index ${s} out of range for axis ${i} of size ${n}`);
      offset += k * t.stride[i]!;
      continue;
    }
    if (s == null) {
      shape.push(n);
      stride.push(t.stride[i]!);
      continue;
    }
    const step = s.step ?? 1;
    if (!Number.isInteger(step) || step === 0) throw new ShapeError(`slice: step must be a non-zero integer on axis ${i}`);
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const norm = (v: number) => (v < 0 ? v + n : v);
    let start: number;
    let end: number;
    if (step > 0) {
      start = clamp(norm(s.start ?? 0), 0, n);
      end = clamp(norm(s.end ?? n), 0, n);
    } else {
      start = clamp(norm(s.start ?? n - 1), -1, n - 1);
      end = s.end === undefined ? -1 : clamp(norm(s.end), -1, n - 1);
    }
    const len = Math.max(0, Math.ceil((end - start) / step));
    if (len > 0) offset += start * t.stride[i]!;
    shape.push(len);
    stride.push(t.stride[i]! * step + 0); // + 0 turns a -0 stride (0 * negative step) into +0
  }
  return { data: t.data, shape, stride, offset, dtype: t.dtype };
}

/** Calls fn with every multi-index in row-major order and the flat position in data. */
export function forEachIndex(t: Tensor, fn: (pos: number, idx: number[]) => void): void {
  const rank = t.shape.length;
  const n = sizeOf(t.shape);
  if (n === 0) return;
  const idx = new Array<number>(rank).fill(0);
  let pos = t.offset;
  for (let k = 0; k < n; k++) {
    fn(pos, idx);
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]!++;
      pos += t.stride[a]!;
      if (idx[a]! < t.shape[a]!) break;
      pos -= t.stride[a]! * t.shape[a]!;
      idx[a] = 0;
    }
  }
}

/** A fresh row-major copy with offset 0. */
export function copy<D extends DType>(t: Tensor<D>): Tensor<D> {
  const out = zeros(t.shape, t.dtype);
  let k = 0;
  const src = t.data;
  const dst = out.data;
  forEachIndex(t, (pos) => {
    dst[k++] = src[pos]!;
  });
  return out;
}

/** Returns t itself when it is already row-major with offset 0 over exactly its own elements; otherwise a packed copy. */
export function toContiguous<D extends DType>(t: Tensor<D>): Tensor<D> {
  if (isContiguous(t) && t.offset === 0 && t.data.length === sizeOf(t.shape)) return t;
  if (isContiguous(t)) {
    const n = sizeOf(t.shape);
    const data = t.data.slice(t.offset, t.offset + n) as Storage<D>;
    return { data, shape: [...t.shape], stride: contiguousStrides(t.shape), offset: 0, dtype: t.dtype };
  }
  return copy(t);
}

/** Reshapes a contiguous tensor as a view (throws for non-contiguous input; call toContiguous first). */
export function reshape<D extends DType>(t: Tensor<D>, shape: readonly number[]): Tensor<D> {
  checkShape(shape, 'reshape');
  if (sizeOf(shape) !== sizeOf(t.shape)) {
    throw new ShapeError(`reshape: cannot view [${t.shape.join(', ')}] (${sizeOf(t.shape)}) as [${shape.join(', ')}] (${sizeOf(shape)})`);
  }
  if (!isContiguous(t)) throw new ShapeError('reshape: tensor is not contiguous; call toContiguous first');
  return { data: t.data, shape: [...shape], stride: contiguousStrides(shape), offset: t.offset, dtype: t.dtype };
}

/** Copies the elements of a tensor into a new row-major array of numbers. */
export function toArray(t: Tensor): number[] {
  const out: number[] = [];
  forEachIndex(t, (pos) => out.push(t.data[pos]!));
  return out;
}

/** Requires a rank-2 float32 tensor; returns its [rows, cols]. */
export function assertMatrix(t: Tensor, name: string): [number, number] {
  if (t.shape.length !== 2) throw new ShapeError(`${name}: expected a matrix, got shape [${t.shape.join(', ')}]`);
  return [t.shape[0]!, t.shape[1]!];
}
