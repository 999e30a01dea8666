// The tfjs form of 'sara': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError, ShapeError, svd, tensor as coreTensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { AdapterTrainingContext, AdapterTrainingHooks, TfAdapterForm } from '../../tfjs-forms/types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { indexed, placeFlat, toCore, variantLayers } from '../helpers/tfjs.js';
import type { SaRAConfig } from './config.js';
import { saraReselect } from './variant.js';

export const saraForm: TfAdapterForm = {
  variant: 'sara',
  effectiveWeight: ({ base, vars, state }) => tf.add(base, placeFlat(vars.sara_values!, indexed(state).indices.support!, state.shape)),
  training: saraTraining,
};

/**
 * SaRA's progressive re-selection on every layer of a sara adapter (default the active one): each layer's
 * trained values go into its weight (through its mask unless densify, default: as the adapter was added)
 * and the values restart at zero on the new support (`saraReselect`). The value variables keep their
 * identity and shape, so an optimizer's variable list stays valid. Returns the layers and how many of
 * their support entries are new.
 */
export function reselectSaRA(model: AdapterModel, opts: { adapter?: string; densify?: boolean } = {}): { layers: string[]; changed: number } {
  const { adapter, layers } = variantLayers(model, 'sara', 'reselectSaRA', opts.adapter);
  if (model.mergedAdapter !== null) throw new ArgumentError(`reselectSaRA: adapter '${model.mergedAdapter}' is merged; unmerge it first`);
  const densify = opts.densify ?? model.densifies(adapter);
  const states = model.adapterStates(adapter);
  let changed = 0;
  for (const n of layers) {
    const before = states[n] as IndexedAdapterState<SaRAConfig>;
    const next = saraReselect(toCore(model.weights[n]!), before, { mask: model.mask(n), densify });
    model.weights[n]!.assign(tf.tensor(next.base.data, next.base.shape));
    model.setLayerState(adapter, n, next.state);
    const values = model.layerVariables(n, adapter).sara_values!;
    tf.tidy(() => values.assign(tf.zerosLike(values)));
    const old = new Set(before.indices.support!);
    for (const p of next.state.indices.support!) if (!old.has(p)) changed++;
  }
  return { layers, changed };
}

interface SaRASaved {
  reselected: boolean;
  changed: number;
  supports: Record<string, number[]>;
}

/**
 * The training hooks: the penalty λ · Σ_layers ‖ΔW‖_* as a loss term (lambda > 0), and the one progressive
 * re-selection before step floor(reselectAt · steps) + 1, whose new supports (and whether it happened)
 * ride in a checkpoint so that a resumed run continues exactly.
 */
function saraTraining({ model, adapter, config, steps }: AdapterTrainingContext): AdapterTrainingHooks {
  const c = config as SaRAConfig;
  const states = model.adapterStates(adapter);
  const layers = Object.keys(states);
  // the current supports, kept here so the loss term does not copy the adapter's values every step
  const supports = new Map(layers.map((n) => [n, indexed(states[n]).indices.support!]));
  const shapes = new Map(layers.map((n) => [n, states[n]!.shape]));
  const at = c.reselectAt === undefined ? undefined : Math.floor(c.reselectAt * steps) + 1;
  let reselected = false;
  let changed = 0;
  const delta = (n: string) => placeFlat(model.layerVariables(n, adapter).sara_values!, supports.get(n)!, shapes.get(n)!);
  return {
    ...(c.lambda > 0 ? { loss: () => tf.mul(c.lambda, tf.addN(layers.map((n) => nuclearNormPenalty(delta(n))))) as tf.Scalar } : {}),
    ...(at === undefined
      ? {}
      : {
          beforeStep(step: number) {
            if (step !== at || reselected) return;
            const done = reselectSaRA(model, { adapter });
            const now = model.adapterStates(adapter);
            for (const n of done.layers) supports.set(n, indexed(now[n]).indices.support!);
            reselected = true;
            changed = done.changed;
            return { reset: done.layers.map((n) => model.layerVariables(n, adapter).sara_values!), event: { event: 'reselect', step, changed } };
          },
          state: (): SaRASaved => ({ reselected, changed, supports: Object.fromEntries([...supports].map(([n, s]) => [n, Array.from(s)])) }),
          load(saved: unknown) {
            const s = saved as SaRASaved;
            const now = model.adapterStates(adapter);
            for (const [n, sup] of Object.entries(s.supports)) {
              const st = now[n] as IndexedAdapterState | undefined;
              if (st === undefined) throw new ArgumentError(`sara: the checkpoint has a support for '${n}', which the adapter does not adapt`);
              const support = Int32Array.from(sup);
              if (support.length !== st.indices.support!.length) throw new ArgumentError(`sara: ${n}: the checkpoint's support has ${support.length} entries, the adapter trains ${st.indices.support!.length}`);
              model.setLayerState(adapter, n, { ...st, indices: { support } } as IndexedAdapterState);
              supports.set(n, support);
            }
            reselected = s.reselected;
            changed = s.changed;
          },
        }),
    finish: () => {
      const parts = [...(c.lambda > 0 ? [`nuclear-norm penalty λ = ${c.lambda}`] : []), ...(reselected ? [`re-selected the support before step ${at} (${changed} new entries)`] : [])];
      if (parts.length === 0) return {};
      return {
        log: parts.join('; '),
        ...(reselected ? { note: 'the PEFT files hold the values trained after the re-selection only; the earlier ones were merged into the weights' } : {}),
        summary: reselected ? 're-selected once' : `λ = ${c.lambda}`,
      };
    },
  };
}

/**
 * SaRA's penalty ‖M‖_* = Σ σ_i(M) as a differentiable scalar, for M = ΔW (e.g.
 * `tf.sub(model.effectiveWeight(name), model.weights[name])`). The SVD runs on the CPU (tfjs has no SVD
 * op); the gradient is U Vᵀ over the singular values above 1e-6 · σ_max (a subgradient at rank deficiency).
 */
export function nuclearNormPenalty(m: tf.Tensor): tf.Scalar {
  if (m.rank !== 2) throw new ShapeError(`nuclearNormPenalty: expected a matrix, got shape [${m.shape.join(', ')}]`);
  return tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor2D, (saved: tf.Tensor[]) => void];
    const [rows, cols] = x.shape;
    const { u, s, v } = svd(coreTensor(Float32Array.from(x.dataSync()), [rows, cols]));
    const k = s.data.length;
    const sv = Array.from(s.data as ArrayLike<number>);
    const cut = 1e-6 * (sv[0] ?? 0);
    const uv = new Float32Array(rows * cols);
    for (let t = 0; t < k; t++) {
      if (!(sv[t]! > cut)) continue;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) uv[i * cols + j] = uv[i * cols + j]! + u.data[i * k + t]! * v.data[j * k + t]!;
    }
    save([tf.tensor(uv, [rows, cols])]);
    return { value: tf.scalar(sv.reduce((a, b) => a + b, 0)), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[0]!)] };
  })(m) as tf.Scalar;
}
