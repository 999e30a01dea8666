// tfjs helpers that several variants' forms share (each variant's form is its folder's tfjs.ts). Sparse parts
// are stored as values plus fixed positions (state.indices); they become a dense ΔW by a gather from
// [values, 0] with a position map, whose gradient (tfjs's GatherV2 grad) sums back into the values only.
import type { Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import { loraScaling } from '../lora/variant.js';
import type { LoRAConfig } from '../lora/config.js';
import type { IndexedAdapterState } from './sparse.js';

/** A form's variables by param name. */
export type Vars = Readonly<Record<string, tf.Variable>>;
/** The variable of param `name`. */
export const v = (vars: Vars, name: string): tf.Variable => vars[name]!;

/** Dense [out, in] tensor with values.flat()[t] at flat position positions[t] and 0 elsewhere. */
export function placeFlat(values: tf.Tensor, positions: Int32Array, shape: readonly [number, number]): tf.Tensor2D {
  const n = positions.length;
  // Every position maps to its value's slot, the rest to slot n (an appended zero).
  const map = new Int32Array(shape[0] * shape[1]).fill(n);
  for (let t = 0; t < n; t++) map[positions[t]!] = t;
  const padded = tf.concat([tf.reshape(values, [n]), tf.zeros([1])]);
  return tf.reshape(tf.gather(padded, tf.tensor1d(map, 'int32')), [shape[0], shape[1]]) as tf.Tensor2D;
}

/** scaling · B A from the LoRA factors lora_A, lora_B (config: r, alpha, rslora). */
export function lowRank(vars: Vars, config: unknown): tf.Tensor {
  return tf.mul(tf.matMul(vars.lora_B!, vars.lora_A!), loraScaling(config as LoRAConfig));
}

/** The state as a sparse variant's, with its integer selections. */
export const indexed = (s: unknown) => s as IndexedAdapterState;

/** A Mask as a float32 0/1 tensor. */
export function maskTensor(m: Mask): tf.Tensor {
  const [rows, cols] = m.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let k = 0; k < out.length; k++) out[k] = (m.bits[k >>> 5]! >>> (k & 31)) & 1;
  return tf.tensor(out, [rows, cols]);
}

/** A tfjs tensor's values as a core float32 tensor (a copy). */
export function toCore(v: tf.Tensor): Float32Tensor {
  return tensor(Float32Array.from(v.dataSync() as Float32Array), v.shape);
}

/** A layer's scores as a core tensor, refused (naming the layer and both shapes) unless [out, in]. */
export function checkScores(name: string, scores: Tensor | tf.Tensor, [out, inp]: readonly number[], op: string): Tensor {
  const s = scores instanceof tf.Tensor ? toCore(scores) : scores;
  if (s.shape.length !== 2 || s.shape[0] !== out || s.shape[1] !== inp) {
    throw new ShapeError(`${op}: layer '${name}': scores are [${s.shape.join(', ')}] but the weight is [${out}, ${inp}]`);
  }
  return s;
}

/**
 * The layers of adapter `adapterName` (default: the active one) of `model`, which must be of `variant`
 * and not merged; `op` names the caller in errors.
 */
export function variantLayers(model: AdapterModel, variant: string, op: string, adapterName = model.activeAdapter ?? undefined): { adapter: string; layers: string[] } {
  if (adapterName === undefined) throw new ArgumentError(`${op}: no adapter attached`);
  const v = model.variantOf(adapterName);
  if (v !== variant) throw new ArgumentError(`${op}: adapter '${adapterName}' is '${v}', not ${variant}`);
  return { adapter: adapterName, layers: model.trainableReport(adapterName).layers.map((l) => l.name) };
}
