// Sparse fine-tuning (SFT) deltas: a change ΔW of a weight W [out, in] kept as sorted row-major flat
// indices plus one value per index, never as a dense masked matrix. Memory and file size grow with the
// number of trained entries, not with the layer.
import { ArgumentError, assertMatrix, copy, DTypeError, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';

export interface SparseDelta {
  /** Shape [out, in] of the weight the delta belongs to. */
  shape: [number, number];
  /** Row-major flat indices into the weight, strictly increasing. */
  indices: Int32Array;
  /** ΔW at each index. */
  values: Float32Array;
}

const MAX_FLAT = 0x7fffffff;

function checkShape(shape: readonly number[], where: string): [number, number] {
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${where}: shape must be [out, in] with non-negative integers, got [${String(shape)}]`);
  }
  if (shape[0]! * shape[1]! > MAX_FLAT) throw new ShapeError(`${where}: shape [${shape.join(', ')}] has more entries than Int32 flat indices can address`);
  return [shape[0]!, shape[1]!];
}

/** Throws (naming the field) unless the delta's indices are sorted, unique, in range and match values. */
export function validateSparseDelta(delta: SparseDelta, where = 'validateSparseDelta'): void {
  const [o, i] = checkShape(delta?.shape, where);
  if (!(delta.indices instanceof Int32Array)) throw new DTypeError(`${where}: indices must be an Int32Array`);
  if (!(delta.values instanceof Float32Array)) throw new DTypeError(`${where}: values must be a Float32Array`);
  const { indices, values } = delta;
  if (indices.length !== values.length) throw new ShapeError(`${where}: ${indices.length} indices but ${values.length} values`);
  const size = o * i;
  for (let k = 0; k < indices.length; k++) {
    const f = indices[k]!;
    if (f < 0 || f >= size) throw new ArgumentError(`${where}: indices[${k}] = ${f} is outside [0, ${size}) of shape [${o}, ${i}]`);
    if (k > 0 && f <= indices[k - 1]!) throw new ArgumentError(`${where}: indices must be strictly increasing, but indices[${k}] = ${f} follows ${indices[k - 1]}`);
  }
}

/** A delta on the given flat indices (sorted here; duplicates refused), values zero unless given. */
export function sparseDelta(shape: readonly number[], indices: ArrayLike<number>, values?: ArrayLike<number>): SparseDelta {
  const where = 'sparseDelta';
  const s = checkShape(shape, where);
  if (values !== undefined && values.length !== indices.length) throw new ShapeError(`${where}: ${indices.length} indices but ${values.length} values`);
  const order = Array.from({ length: indices.length }, (_, k) => k).sort((a, b) => indices[a]! - indices[b]!);
  const idx = new Int32Array(indices.length);
  const val = new Float32Array(indices.length);
  order.forEach((src, k) => {
    const f = indices[src]!;
    if (!Number.isInteger(f)) throw new ArgumentError(`${where}: index ${String(f)} is not an integer`);
    idx[k] = f;
    if (values !== undefined) val[k] = values[src]!;
  });
  const delta: SparseDelta = { shape: s, indices: idx, values: val };
  validateSparseDelta(delta, where);
  return delta;
}

/** The nonzero entries of a dense [out, in] float32 delta. */
export function sparseDeltaFromDense(dense: Tensor): SparseDelta {
  const d = floatMatrix(dense, 'sparseDeltaFromDense', 'dense');
  const data = d.data;
  let nnz = 0;
  for (let k = 0; k < data.length; k++) if (data[k] !== 0) nnz++;
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  for (let k = 0, j = 0; k < data.length; k++) {
    if (data[k] !== 0) {
      indices[j] = k;
      values[j++] = data[k]!;
    }
  }
  return { shape: [d.shape[0]!, d.shape[1]!], indices, values };
}

function floatMatrix(t: Tensor, where: string, name: string): Float32Tensor {
  if (t?.dtype !== 'float32') throw new DTypeError(`${where}: ${name} must be float32, got ${String(t?.dtype)}`);
  assertMatrix(t, `${where}: ${name}`);
  return copy(t as Float32Tensor);
}

/** ΔW as a dense contiguous [out, in] tensor (for tests and small layers). */
export function sparseDeltaToDense(delta: SparseDelta): Float32Tensor {
  validateSparseDelta(delta, 'sparseDeltaToDense');
  const [o, i] = delta.shape;
  const data = new Float32Array(o * i);
  for (let k = 0; k < delta.indices.length; k++) data[delta.indices[k]!] = delta.values[k]!;
  return { data, shape: [o, i], stride: [i, 1], offset: 0, dtype: 'float32' };
}

export interface ApplyDeltaOptions {
  /** Write into `weight` itself (any strided float32 view) instead of returning a new tensor. Default false. */
  inPlace?: boolean;
}

function addScaled(weight: Tensor, delta: SparseDelta, sign: 1 | -1, opts: ApplyDeltaOptions, where: string): Float32Tensor {
  if (weight?.dtype !== 'float32') throw new DTypeError(`${where}: weight must be float32, got ${String(weight?.dtype)}`);
  const [o, i] = assertMatrix(weight, `${where}: weight`);
  validateSparseDelta(delta, where);
  if (o !== delta.shape[0] || i !== delta.shape[1]) throw new ShapeError(`${where}: weight is [${o}, ${i}] but the delta is for [${delta.shape.join(', ')}]`);
  const w = opts.inPlace ? (weight as Float32Tensor) : copy(weight as Float32Tensor);
  const [s0, s1] = w.stride as [number, number];
  const data = w.data;
  for (let k = 0; k < delta.indices.length; k++) {
    const f = delta.indices[k]!;
    const r = Math.floor(f / i);
    const pos = w.offset + r * s0 + (f - r * i) * s1;
    data[pos] = data[pos]! + sign * delta.values[k]!;
  }
  return w;
}

/** W + ΔW (touches only the delta's entries). */
export function mergeSparseDelta(weight: Tensor, delta: SparseDelta, opts: ApplyDeltaOptions = {}): Float32Tensor {
  return addScaled(weight, delta, 1, opts, 'mergeSparseDelta');
}

/** W − ΔW: takes a merged delta back out. */
export function unmergeSparseDelta(weight: Tensor, delta: SparseDelta, opts: ApplyDeltaOptions = {}): Float32Tensor {
  return addScaled(weight, delta, -1, opts, 'unmergeSparseDelta');
}

/**
 * Composable SFT: one delta equal to Σ scale_t · Δ_t over tasks. The support is the union of the
 * tasks' supports; where supports overlap the values are summed.
 */
export function composeSparseDeltas(deltas: readonly SparseDelta[], scales?: readonly number[]): SparseDelta {
  const where = 'composeSparseDeltas';
  if (deltas.length === 0) throw new ArgumentError(`${where}: need at least one delta`);
  if (scales !== undefined && scales.length !== deltas.length) throw new ArgumentError(`${where}: ${scales.length} scales for ${deltas.length} deltas`);
  const shape = deltas[0]!.shape;
  deltas.forEach((d, t) => {
    validateSparseDelta(d, `${where}: deltas[${t}]`);
    if (d.shape[0] !== shape[0] || d.shape[1] !== shape[1]) throw new ShapeError(`${where}: deltas[${t}] is for [${d.shape.join(', ')}], deltas[0] for [${shape.join(', ')}]`);
  });
  // k-way merge of sorted index lists: the cursor with the smallest index advances.
  const cursor = new Array<number>(deltas.length).fill(0);
  const total = deltas.reduce((s, d) => s + d.indices.length, 0);
  const idx = new Int32Array(total);
  const val = new Float32Array(total);
  let n = 0;
  for (;;) {
    let next = Infinity;
    for (let t = 0; t < deltas.length; t++) if (cursor[t]! < deltas[t]!.indices.length) next = Math.min(next, deltas[t]!.indices[cursor[t]!]!);
    if (next === Infinity) break;
    let sum = 0;
    for (let t = 0; t < deltas.length; t++) {
      const d = deltas[t]!;
      if (cursor[t]! < d.indices.length && d.indices[cursor[t]!] === next) sum += (scales?.[t] ?? 1) * d.values[cursor[t]!++]!;
    }
    idx[n] = next;
    val[n++] = sum;
  }
  return { shape: [shape[0], shape[1]], indices: idx.slice(0, n), values: val.slice(0, n) };
}

/** Trainable scalars of the delta: one per active entry. */
export function sparseDeltaTrainableCount(delta: SparseDelta): number {
  return delta.indices.length;
}

/** Bytes held by the delta's arrays (indices + values). */
export function sparseDeltaByteLength(delta: SparseDelta): number {
  return delta.indices.byteLength + delta.values.byteLength;
}

/** A dense row-major gradient [out · in] read at the delta's indices (the gradient of its values). */
export function gatherAtSupport(dense: ArrayLike<number>, indices: Int32Array, out = new Float32Array(indices.length)): Float32Array {
  for (let k = 0; k < indices.length; k++) out[k] = dense[indices[k]!]!;
  return out;
}

