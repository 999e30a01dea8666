// The tfjs form of 'mosa': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { variantLayers } from '../helpers/tfjs.js';
import { loraScaling } from '../lora/variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { mosaModules } from './variant.js';
import type { MoSAConfig } from './config.js';
import { bottleneckTermTf } from '../sparse-adapter/bottleneck-tfjs.js';

/** The factors a forward uses: while training (K > 1), this layer's next draw of one module each, rescaled by K; else the complete ones. */
function drawn(vars: Readonly<Record<string, tf.Variable>>, st: IndexedAdapterState<MoSAConfig>, training: boolean): { a: tf.Tensor; b: tf.Tensor } {
  const [out, inp] = st.shape;
  const { r, modules: k } = st.config;
  let a: tf.Tensor = vars.lora_A!;
  let b: tf.Tensor = vars.lora_B!;
  if (training && k > 1) {
    const call = mosaCalls.get(vars) ?? 0;
    mosaCalls.set(vars, call + 1);
    const m = mosaModules(st, call);
    a = tf.mul(a, moduleMultiplier(st.indices.module_A!, m.a, k, [r, inp]));
    b = tf.mul(b, moduleMultiplier(st.indices.module_B!, m.b, k, [out, r]));
  }
  return { a, b };
}

// Training forwards so far per layer (its vars object): the n-th uses mosaModules(state, n).
const mosaCalls = new WeakMap<object, number>();

/** Training forwards so far of the MoSA layer whose variables are `vars` (mosaDraws reads it). */
export function mosaDrawCount(vars: object): number {
  return mosaCalls.get(vars) ?? 0;
}

/** Sets that count, e.g. from a checkpoint: the next training forward uses mosaModules(state, count). */
export function setMoSADrawCount(vars: object, count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) throw new ArgumentError(`setMoSADrawCount: count must be a non-negative integer, got ${String(count)}`);
  mosaCalls.set(vars, count);
}

/** K where a factor entry is in module m, else 0: the rescaled module as a constant multiplier. */
function moduleMultiplier(ids: Int32Array, m: number, k: number, shape: readonly [number, number]): tf.Tensor {
  return tf.tensor(Float32Array.from(ids, (id) => (id === m ? k : 0)), [shape[0], shape[1]]);
}

/**
 * MoSA: while training, one module of each factor drawn per forward, K·(B ⊙ P_b) K·(A ⊙ P_a), so only
 * those entries get gradient; otherwise the complete adapter. Both through the base mask.
 */
export const mosaForm: TfAdapterForm = {
  variant: 'mosa',
  // the draw counters ride in a checkpoint, so a resumed run draws the modules an uninterrupted one would
  training: ({ model, adapter }) => ({
    state: () => ({ draws: mosaDraws(model, adapter) }),
    load: (saved) => void setMoSADraws(model, (saved as { draws: Record<string, number> }).draws, adapter),
  }),
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask, training }) => {
    const st = state as IndexedAdapterState<MoSAConfig>;
    // the bottleneck is no weight update: `output` adds it (and counts its draws)
    if (st.config.form === 'bottleneck') return base;
    const { a, b } = drawn(vars, st, training);
    return tf.add(base, tf.mul(tf.mul(tf.matMul(b, a), loraScaling(st.config)), mask));
  },
  output: ({ x, vars, state, training }) => {
    const st = state as IndexedAdapterState<MoSAConfig>;
    if (st.config.form !== 'bottleneck') return undefined;
    const { a, b } = drawn(vars, st, training);
    return bottleneckTermTf(x, a, b, vars.mosa_bd!, vars.mosa_bu!, loraScaling(st.config), st.config.activation);
  },
};

/**
 * MoSA's training forwards so far per layer of a mosa adapter (default the active one): the n-th draws
 * `mosaModules(state, n)`. For a checkpoint; `setMoSADraws` puts them back so a resumed run draws the
 * modules an uninterrupted one would.
 */
export function mosaDraws(model: AdapterModel, adapterName = model.activeAdapter ?? undefined): Record<string, number> {
  const { adapter, layers } = variantLayers(model, 'mosa', 'mosaDraws', adapterName);
  return Object.fromEntries(layers.map((n) => [n, mosaDrawCount(model.layerVariables(n, adapter))]));
}

export function setMoSADraws(model: AdapterModel, draws: Record<string, number>, adapterName = model.activeAdapter ?? undefined): void {
  const { adapter, layers } = variantLayers(model, 'mosa', 'setMoSADraws', adapterName);
  for (const [n, c] of Object.entries(draws ?? {})) {
    if (!layers.includes(n)) throw new ArgumentError(`setMoSADraws: adapter '${adapter}' has no layer '${n}'`);
    if (!Number.isSafeInteger(c) || c < 0) throw new ArgumentError(`setMoSADraws: ${n}: the draw count must be a non-negative integer, got ${String(c)}`);
  }
  for (const [n, c] of Object.entries(draws ?? {})) setMoSADrawCount(model.layerVariables(n, adapter), c);
}
