// Multi-tensor Adam on 'sparse-cpu': every parameter, its first and second moments updated in one
// native call (native/fused_adam.cc), instead of about a dozen small tfjs ops per parameter. The
// tensors keep their identity (no new tensors, no assign). Storage nobody outside the backend can
// see (the output pool's private arrays) is updated in place; other storage is first replaced by a
// private copy, so arrays read out of a tensor earlier keep their values.
// The native loop performs the float32 operations of the tfjs composition
//   m = m*b1 + g*(1-b1); v = v*b2 + g²*(1-b2); p = p - ((m/c1) / (sqrt(v/c2) + eps)) * lr
// in the same order, each rounded once as tfjs rounds each op, so the results are the same bits
// (Kingma & Ba 2015's Adam with the bias corrections folded into m and v as written above; eps added
// to the corrected root, as in the paper).
import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';
import { SPARSE_CPU_BACKEND } from '../backend-name.js';
import { nativeStatus } from '../native.js';
import { float32Values, type CPUStorageBackend } from './kernel.js';
import { outputPool } from './pool.js';

/** fusedAdam(params, grads, m, v, corrections, scalars): the addon's multi-tensor Adam, in place. */
export type NativeFusedAdam = (params: Float32Array[], grads: Float32Array[], m: Float32Array[], v: Float32Array[], corrections: Float64Array, scalars: Float64Array) => void;

/** One tensor of a step: the variable, its gradient, its moments, its bias corrections 1 - beta^t. */
export interface FusedAdamEntry {
  variable: tf.Variable;
  grad: tf.Tensor;
  m: tf.Variable;
  v: tf.Variable;
  /** 1 - beta1^t for this tensor's own step count t. */
  c1: number;
  /** 1 - beta2^t. */
  c2: number;
}

export interface FusedAdamOptions {
  beta1: number;
  beta2: number;
  eps: number;
  lr: number;
}

let cachedAdam: NativeFusedAdam | null | undefined;

function nativeAdam(): NativeFusedAdam | undefined {
  if (cachedAdam === undefined) {
    const status = nativeStatus();
    const f = status.available ? (status.addon as unknown as { fusedAdam?: unknown }).fusedAdam : undefined;
    cachedAdam = typeof f === 'function' ? (f as NativeFusedAdam) : null;
  }
  return cachedAdam ?? undefined;
}

interface Stored {
  values?: unknown;
  refCount?: number;
}

/**
 * One Adam step of every entry as one native call, when it applies: the active backend is
 * 'sparse-cpu' with an addon that has the kernel, every tensor is float32, and no written tensor
 * (variable, m, v) shares its storage with another tensor (a clone, a reshape, another entry), which
 * would see the new values too. Returns true when it updated every entry, false when it
 * changed nothing (the caller then runs its tfjs ops). The results equal the tfjs composition above
 * bit for bit. Throws ArgumentError for mismatched shapes or non-finite scalars.
 */
export function fusedAdamStep(entries: readonly FusedAdamEntry[], options: FusedAdamOptions): boolean {
  const { beta1, beta2, eps, lr } = options;
  for (const [name, value] of Object.entries({ beta1, beta2, eps, lr })) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new ArgumentError(`fusedAdamStep: ${name} must be a finite number, got ${String(value)}`);
  }
  entries.forEach((e, i) => {
    for (const field of ['grad', 'm', 'v'] as const) {
      if (!tf.util.arraysEqual(e[field].shape, e.variable.shape)) {
        throw new ArgumentError(`fusedAdamStep: entries[${i}].${field} has shape [${e[field].shape.join(', ')}], the variable [${e.variable.shape.join(', ')}]`);
      }
    }
    for (const field of ['c1', 'c2'] as const) {
      if (!Number.isFinite(e[field]) || e[field] === 0) throw new ArgumentError(`fusedAdamStep: entries[${i}].${field} must be finite and non-zero, got ${e[field]}`);
    }
  });
  const adam = nativeAdam();
  if (adam === undefined || tf.getBackend() !== SPARSE_CPU_BACKEND || entries.length === 0) return false;
  const backend = tf.backend() as unknown as CPUStorageBackend;
  const written = new Set<object>();
  const read = new Set<object>();
  const arrays: Float32Array[][] = [[], [], [], []];
  const swaps: [Stored, Float32Array][] = [];
  for (const e of entries) {
    const ts = [e.variable, e.grad, e.m, e.v];
    for (let k = 0; k < 4; k++) {
      const t = ts[k]!;
      if (t.dtype !== 'float32' || t.isDisposed) return false;
      const stored = backend.data.get(t.dataId) as Stored | undefined;
      if (stored === undefined || !(stored.values instanceof Float32Array)) return false;
      if (k !== 1) {
        // written in place: its storage must be its own alone
        if (stored.refCount !== 1 || written.has(t.dataId) || read.has(t.dataId)) return false;
        written.add(t.dataId);
      } else {
        if (written.has(t.dataId)) return false;
        read.add(t.dataId);
      }
      if (k === 1 || outputPool.isPrivate(stored.values)) arrays[k]!.push(stored.values);
      else {
        // storage that may have been read out (dataSync returns the storage itself) or that came
        // from outside: the kernel writes a copy that then becomes the tensor's storage, so an array
        // read out before keeps its values, as after an assign. The copy is the pool's and private,
        // so later steps update it in place.
        const fresh = outputPool.copy(stored.values);
        arrays[k]!.push(fresh);
        swaps.push([stored, fresh]);
      }
    }
  }
  const corrections = new Float64Array(2 * entries.length);
  entries.forEach((e, i) => {
    corrections[2 * i] = e.c1;
    corrections[2 * i + 1] = e.c2;
  });
  adam(arrays[0]!, arrays[1]!, arrays[2]!, arrays[3]!, corrections, Float64Array.of(beta1, 1 - beta1, beta2, 1 - beta2, eps, lr));
  for (const [stored, fresh] of swaps) {
    stored.values = fresh;
    outputPool.attach(fresh);
  }
  return true;
}

type NativeSumOfSquares = (arrays: Float32Array[]) => number;
let cachedSumSq: NativeSumOfSquares | null | undefined;

/**
 * The sum of squares of every element of `tensors` (a global gradient norm, squared), as a number. On
 * 'sparse-cpu' one native call reads the tensors' storage and sums in float64, in fixed pieces added in
 * order (the same result for any thread count); elsewhere, or for a tensor that is not float32, the sum
 * of tf.sum(tf.square(t)), added and read back once. Replaces two tfjs ops per tensor in a clipped training step.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[]): number {
  if (cachedSumSq === undefined) {
    const status = nativeStatus();
    const f = status.available ? (status.addon as unknown as { sumOfSquares?: unknown }).sumOfSquares : undefined;
    cachedSumSq = typeof f === 'function' ? (f as NativeSumOfSquares) : null;
  }
  if (cachedSumSq !== null && tf.getBackend() === SPARSE_CPU_BACKEND) {
    const backend = tf.backend() as unknown as CPUStorageBackend;
    const arrays: Float32Array[] = [];
    for (const t of tensors) {
      const v = t.dtype === 'float32' ? float32Values(backend, t) : undefined;
      if (v === undefined) {
        arrays.length = 0;
        break;
      }
      arrays.push(v);
    }
    if (arrays.length === tensors.length) return cachedSumSq(arrays);
  }
  if (tensors.length === 0) return 0;
  return tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t.dtype === 'float32' ? t : tf.cast(t, 'float32'))))).dataSync()[0]!);
}
