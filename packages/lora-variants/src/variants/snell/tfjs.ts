// The tfjs form of 'snell': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`, and the
// training hooks of the bi-level competition (config `allocate`).
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { sparsityAt } from '@sparse/masks';
import { ArgumentError, tensor as coreTensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterTrainingContext, AdapterTrainingHooks, TfAdapterForm } from '../../tfjs-forms/types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { maskTensor } from '../helpers/tfjs.js';
import { snellAllocate, snellKeepMask, snellKept } from './variant.js';
import type { SNELLConfig } from './config.js';

/** SNELL: distance kernels by broadcasting; the competition mask is decided by the core rule on K's values. */
export const snellForm: TfAdapterForm = {
  variant: 'snell',
  effectiveWeight: ({ base, vars, state }) => {
    const c = state.config as SNELLConfig;
    const [out, inp] = state.shape;
    const heads = [0, 1].map((h) => {
      const u = tf.reshape(tf.slice(vars.snell_out!, [h, 0, 0], [1, out, c.dim]), [out, 1, c.dim]);
      const v = tf.reshape(tf.slice(vars.snell_in!, [h, 0, 0], [1, inp, c.dim]), [1, inp, c.dim]);
      const diff = tf.sub(u, v);
      return c.p === 1 ? tf.sum(tf.abs(diff), -1) : tf.sqrt(tf.sum(tf.square(diff), -1));
    });
    const k = tf.mul(tf.sub(heads[0]!, heads[1]!), c.scale);
    const m = snellKeepMask(coreTensor(Float32Array.from(k.dataSync()), [out, inp]), snellKept(state as IndexedAdapterState<SNELLConfig>));
    return tf.add(base, tf.mul(k, maskTensor(m)));
  },
  training: snellTraining,
};

interface SNELLSaved {
  allocations: number;
  kept: Record<string, number>;
  /** Per layer and factor (snell_out, snell_in): the EMAs s̄ and ū, entry by entry. */
  sensitivity: Record<string, number[]>;
  uncertainty: Record<string, number[]>;
}

/**
 * The bi-level competition in training: each step's gradients update every factor entry's EMAs of the
 * sensitivity s = |θ · ∂L/∂θ| (s̄ ← β1 s̄ + (1 − β1) s) and of its uncertainty (ū ← β2 ū + (1 − β2) |s − s̄|);
 * before steps every + 1, 2 · every + 1, ... the budget Σ_l round((1 − level) · n_l) is split over the
 * layers in proportion to mean(s̄ · ū) of snell_out plus that of snell_in (`snellAllocate`), and each
 * layer's `indices.kept` is set; the level is `sparsity`, or with `initialSparsity` the cubic ramp from it.
 * The EMAs, the counts and the number of allocations ride in a checkpoint.
 */
function snellTraining({ model, adapter, config, steps }: AdapterTrainingContext): AdapterTrainingHooks {
  const c = config as SNELLConfig;
  const alloc = c.allocate;
  if (alloc === undefined) return {};
  const states = model.adapterStates(adapter);
  const layers = Object.keys(states);
  const sizes = layers.map((n) => states[n]!.shape[0] * states[n]!.shape[1]);
  const keptAt = (level: number) => sizes.map((n) => Math.round((1 - level) * n));
  const initial = alloc.initialSparsity;
  if (initial !== undefined && initial > c.sparsity) throw new ArgumentError(`snell: allocate.initialSparsity ${initial} is above sparsity ${c.sparsity}; the budget only shrinks`);
  if (alloc.scheduleEnd < alloc.scheduleStart) throw new ArgumentError(`snell: allocate.scheduleEnd ${alloc.scheduleEnd} is before scheduleStart ${alloc.scheduleStart}`);
  const begin = Math.floor(alloc.scheduleStart * steps);
  const end = Math.max(begin + 1, Math.floor(alloc.scheduleEnd * steps));
  /** The budget's level at `step`: the cubic ramp from initialSparsity to sparsity, or sparsity throughout. */
  const levelAt = (step: number) => (initial === undefined ? c.sparsity : sparsityAt({ kind: 'cubic', initial, final: c.sparsity, begin, end }, step));
  const totalAt = (step: number) => keptAt(levelAt(step)).reduce((a, b) => a + b, 0);
  const target = totalAt(Number.MAX_SAFE_INTEGER);
  if (target < layers.length) throw new ArgumentError(`snell: allocate: sparsity ${c.sparsity} leaves ${target} entries for ${layers.length} layers; each layer keeps at least one`);
  const FACTORS = ['snell_out', 'snell_in'] as const;
  const key = (n: string, f: string) => `${n}/${f}`;
  const owner = new Map<tf.Variable, string>();
  for (const n of layers) for (const f of FACTORS) owner.set(model.layerVariables(n, adapter)[f]!, key(n, f));
  const sbar = new Map<string, Float64Array>();
  const ubar = new Map<string, Float64Array>();
  for (const n of layers) {
    for (const f of FACTORS) {
      const size = model.layerVariables(n, adapter)[f]!.size;
      sbar.set(key(n, f), new Float64Array(size));
      ubar.set(key(n, f), new Float64Array(size));
    }
  }
  let allocations = 0;
  const keptOf = (n: string) => snellKept(model.adapterStates(adapter)[n] as IndexedAdapterState<SNELLConfig>);
  const setKept = (n: string, k: number) => {
    const st = model.adapterStates(adapter)[n] as IndexedAdapterState<SNELLConfig>;
    model.setLayerState(adapter, n, { ...st, indices: { ...st.indices, kept: Int32Array.of(k) } } as IndexedAdapterState);
  };
  const importance = (n: string) =>
    FACTORS.reduce((a, f) => {
      const s = sbar.get(key(n, f))!;
      const u = ubar.get(key(n, f))!;
      let m = 0;
      for (let q = 0; q < s.length; q++) m += s[q]! * u[q]!;
      return a + m / s.length;
    }, 0);
  // with a shrinking budget every layer starts at its initial share (a resumed run then loads its counts)
  if (initial !== undefined) keptAt(initial).forEach((k, l) => setKept(layers[l]!, Math.max(1, k)));
  return {
    gradient(variable, grad) {
      const k = owner.get(variable);
      if (k === undefined) return;
      const theta = variable.dataSync() as Float32Array;
      const g = grad.dataSync() as Float32Array;
      const s = sbar.get(k)!;
      const u = ubar.get(k)!;
      for (let q = 0; q < s.length; q++) {
        const x = Math.abs(theta[q]! * g[q]!);
        s[q] = alloc.beta1 * s[q]! + (1 - alloc.beta1) * x;
        u[q] = alloc.beta2 * u[q]! + (1 - alloc.beta2) * Math.abs(x - s[q]!);
      }
    },
    beforeStep(step) {
      if (step <= 1 || (step - 1) % alloc.every !== 0) return;
      const total = totalAt(step);
      // no importance yet (all zero): each layer keeps the budget's level
      const budgets = snellAllocate(total, layers.map(importance), sizes) ?? keptAt(levelAt(step)).map((k) => Math.max(1, k));
      layers.forEach((n, l) => setKept(n, budgets[l]!));
      allocations++;
      return { event: { event: 'allocate', step, total, kept: Object.fromEntries(layers.map((n, l) => [n, budgets[l]!])) } };
    },
    state: (): SNELLSaved => ({
      allocations,
      kept: Object.fromEntries(layers.map((n) => [n, keptOf(n)])),
      sensitivity: Object.fromEntries([...sbar].map(([k, v]) => [k, Array.from(v)])),
      uncertainty: Object.fromEntries([...ubar].map(([k, v]) => [k, Array.from(v)])),
    }),
    load(saved) {
      const s = saved as SNELLSaved;
      for (const [k, v] of [...Object.entries(s.sensitivity).map((e) => [e, sbar] as const), ...Object.entries(s.uncertainty).map((e) => [e, ubar] as const)]) {
        const into = v.get(k[0]);
        if (into === undefined || into.length !== k[1].length) throw new ArgumentError(`snell: the checkpoint's EMA '${k[0]}' does not fit the adapter`);
        into.set(k[1]);
      }
      for (const [n, k] of Object.entries(s.kept)) {
        if (!layers.includes(n)) throw new ArgumentError(`snell: the checkpoint keeps entries of '${n}', which the adapter does not adapt`);
        setKept(n, k);
      }
      allocations = s.allocations;
    },
    finish: () => {
      const kept = Object.fromEntries(layers.map((n) => [n, keptOf(n)]));
      const levels = layers.map((n, l) => `${n} ${((1 - kept[n]! / sizes[l]!) * 100).toFixed(1)}%`);
      return {
        log: `bi-level competition: ${allocations} allocations (every ${alloc.every} steps${initial === undefined ? '' : `, budget from ${initial} to ${c.sparsity} sparsity on a cubic ramp`}), ${target} kept entries at the end; sparsity per layer: ${levels.join(', ')}`,
        event: { event: 'allocation', allocations, kept, total: target },
        summary: `${allocations} budget allocations`,
      };
    },
  };
}
