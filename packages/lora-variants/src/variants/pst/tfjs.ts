// The tfjs form of 'pst': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError, tensor as coreTensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { maskTensor, variantLayers } from '../helpers/tfjs.js';
import { PST_FROZEN, pstMask, pstSparsityAt } from './variant.js';
import type { PSTConfig } from './config.js';

/**
 * PST: M ⊙ (W + beta · U V), M the top-k of S = |W + beta · U V| + alpha1 · A B + alpha2 · (r 1ᵀ + 1 cᵀ) inside
 * the base mask at the level in pst_sparsity (frozen; the caller's schedule sets it). M is hard in the
 * forward; its gradient goes straight through to the learned part of S (the magnitude term is data-free
 * and gets none), as in movement pruning: ∂L/∂S = ∂L/∂W' ⊙ (W + beta · U V).
 */
export const pstForm: TfAdapterForm = {
  variant: 'pst',
  // the mask level follows its cubic schedule: set before each step at which it changes
  training: ({ model, adapter, config, steps }) => {
    let level: number | undefined;
    return {
      beforeStep(step) {
        const next = pstSparsityAt(config, step, steps);
        if (next === level) return;
        level = next;
        setPSTSparsity(model, next, adapter);
      },
    };
  },
  keepsMask: true,
  frozen: PST_FROZEN,
  effectiveWeight: ({ base, vars, state, mask }) => {
    const c = state.config as PSTConfig;
    const [out, inp] = state.shape;
    const w = tf.add(base, tf.mul(tf.matMul(vars.pst_U!, vars.pst_V!), c.beta));
    const learned = tf.add(
      tf.mul(tf.matMul(vars.pst_A!, vars.pst_B!), c.alpha1),
      tf.mul(tf.add(tf.reshape(vars.pst_R!, [out, 1]), tf.reshape(vars.pst_C!, [1, inp])), c.alpha2),
    );
    // M by the core rule on the current values, so the trained weight is bit for bit the merged one
    const params: Record<string, Float32Tensor> = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, coreTensor(Float32Array.from(v.dataSync() as Float32Array), v.shape)]));
    const keep = pstMask({ ...state, params }, coreTensor(Float32Array.from(base.dataSync() as Float32Array), [out, inp]), { mask: { shape: [out, inp], bits: bitsOf(mask.dataSync()) } });
    const m = tf.customGrad((...args) => {
      void args;
      return { value: maskTensor(keep), gradFunc: (dy: tf.Tensor) => [dy] };
    })(learned);
    return tf.mul(m, w);
  },
};

/** A Mask's bit words from a 0/1 array. */
function bitsOf(m: ArrayLike<number>): Uint32Array {
  const bits = new Uint32Array(Math.ceil(m.length / 32));
  for (let k = 0; k < m.length; k++) if (m[k] !== 0) bits[k >>> 5] = bits[k >>> 5]! | (1 << (k & 31));
  return bits;
}

/**
 * Sets PST's mask level (its frozen `pst_sparsity`) on every layer of a pst adapter (default the active
 * one), e.g. each step of `pstSparsityAt`'s schedule. Returns the layers set.
 */
export function setPSTSparsity(model: AdapterModel, level: number, adapterName = model.activeAdapter ?? undefined): string[] {
  if (typeof level !== 'number' || !(level >= 0 && level < 1)) throw new ArgumentError(`setPSTSparsity: level must be in [0, 1), got ${String(level)}`);
  const { adapter, layers } = variantLayers(model, 'pst', 'setPSTSparsity', adapterName);
  for (const n of layers) {
    const v = model.layerVariables(n, adapter).pst_sparsity!;
    tf.tidy(() => v.assign(tf.tensor([level], v.shape)));
  }
  return layers;
}
