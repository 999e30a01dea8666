// tfjs forms of the LoRA-family variants in this folder: W + ΔW as differentiable tensors, the same
// ΔW as each core variant's `delta`, with the frozen factors as non-trainable variables.
import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, type Tensor } from '@sparse/tensor';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { DYNAMIC_RANK_FROZEN, dynamicRankScaling, pruneDynamicRank, activeRank, type DynamicRankConfig } from './dynamic-rank.js';
import { ASYMMETRIC_LORA_FROZEN, asymmetricScaling, type AsymmetricLoraConfig } from './asymmetric.js';
import { CLOVER_FROZEN } from './clover.js';
import { CORDA_FROZEN } from './corda.js';
import { LORA_SB_FROZEN } from './lora-sb.js';
import { LORA_XS_FROZEN } from './lora-xs.js';
import { NULL_LORA_FROZEN } from './null-lora.js';
import { SPECTRAL_ADAPTER_FROZEN } from './spectral.js';
import { SVFIT_FROZEN } from './svfit.js';
import type { SelectiveLoraConfig } from './selective.js';
import { loraDropoutScaling, type LoraDropoutConfig } from './lora-dropout.js';

type Vars = Readonly<Record<string, tf.Variable>>;
const v = (vars: Vars, name: string): tf.Variable => vars[name]!;

export const asymmetricLoraForm: TfAdapterForm = {
  variant: 'asymmetric-lora',
  frozen: ASYMMETRIC_LORA_FROZEN,
  effectiveWeight: ({ base, vars, state }) =>
    tf.add(base, tf.mul(tf.matMul(v(vars, 'lora_B'), v(vars, 'lora_A')), asymmetricScaling(state.config as AsymmetricLoraConfig))),
};

export const loraXsForm: TfAdapterForm = {
  variant: 'lora-xs',
  frozen: LORA_XS_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(tf.matMul(v(vars, 'xs_B'), v(vars, 'xs_R')), v(vars, 'xs_A'))),
};

export const loraSbForm: TfAdapterForm = {
  variant: 'lora-sb',
  frozen: LORA_SB_FROZEN,
  effectiveWeight: ({ base, vars }) =>
    tf.add(base, tf.matMul(tf.matMul(v(vars, 'sb_B'), tf.sub(v(vars, 'sb_R'), v(vars, 'sb_R0'))), v(vars, 'sb_A'))),
};

export const svfitForm: TfAdapterForm = {
  variant: 'svfit',
  frozen: SVFIT_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(tf.mul(v(vars, 'svfit_U'), v(vars, 'svfit_delta')), v(vars, 'svfit_V'))),
};

export const spectralAdapterForm: TfAdapterForm = {
  variant: 'spectral-adapter',
  frozen: SPECTRAL_ADAPTER_FROZEN,
  effectiveWeight: ({ base, vars }) => {
    const s = v(vars, 'spectral_S');
    const q = v(vars, 'spectral_Q');
    const a = tf.matMul(tf.mul(v(vars, 'spectral_P'), s), tf.add(v(vars, 'spectral_V'), q), false, true);
    return tf.add(base, tf.add(a, tf.matMul(tf.mul(v(vars, 'spectral_U'), s), q, false, true)));
  },
};

/** Per head: U_h diag(δ_h) V_hᵀ as one batched product, [heads, d, in] back to [out, in]. */
export const cloverForm: TfAdapterForm = {
  variant: 'clover',
  frozen: CLOVER_FROZEN,
  effectiveWeight: ({ base, vars }) => {
    const u = v(vars, 'clover_U');
    const scaled = tf.mul(u, tf.expandDims(v(vars, 'clover_delta'), 1));
    return tf.add(base, tf.reshape(tf.matMul(scaled, v(vars, 'clover_V')), base.shape));
  },
};

/** (B − B₀) A + B₀ (A − A₀) = B A − B₀ A₀, zero at init without cancellation error. */
export const cordaForm: TfAdapterForm = {
  variant: 'corda',
  frozen: CORDA_FROZEN,
  effectiveWeight: ({ base, vars }) => {
    const [b, a, b0, a0] = ['corda_B', 'corda_A', 'corda_B0', 'corda_A0'].map((n) => v(vars, n)) as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    return tf.add(base, tf.add(tf.matMul(tf.sub(b, b0), a), tf.matMul(b0, tf.sub(a, a0))));
  },
};

export const nullLoraForm: TfAdapterForm = {
  variant: 'null-lora',
  frozen: NULL_LORA_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(v(vars, 'null_B'), v(vars, 'null_N'))),
};

/** diag(γ) W: zero wherever W is, during training as after the merge. */
export const ssfForm: TfAdapterForm = {
  variant: 'ssf',
  keepsMask: true,
  effectiveWeight: ({ base, vars }) => tf.mul(base, tf.expandDims(v(vars, 'ssf_scale'), 1)),
  effectiveBias: ({ bias, vars }) => (bias === null ? tf.add(v(vars, 'ssf_shift'), 0) : tf.add(tf.mul(v(vars, 'ssf_scale'), bias), v(vars, 'ssf_shift'))),
};

/** scaling · B diag(g) A; a pruned component (g_i = 0) gets no gradient. */
export const dynamicRankForm: TfAdapterForm = {
  variant: 'dynamic-rank',
  frozen: DYNAMIC_RANK_FROZEN,
  effectiveWeight: ({ base, vars, state }) => {
    const gatedA = tf.mul(v(vars, 'lora_A'), tf.expandDims(tf.mul(v(vars, 'rank_gate'), dynamicRankScaling(state.config as DynamicRankConfig)), 1));
    return tf.add(base, tf.matMul(v(vars, 'lora_B'), gatedA));
  },
};

/**
 * Prunes the active 'dynamic-rank' adapter of `model` in place to `budget` components over all its layers
 * (see pruneDynamicRank; `gradients` per layer name switch to gradient scores). Call it between training
 * steps, on a model that is neither merged nor disabled. Returns the active rank per layer.
 */
export function pruneDynamicRankModel(model: AdapterModel, budget: number, opts: { gradients?: Readonly<Record<string, Tensor>> } = {}): Record<string, number> {
  const active = model.activeAdapter;
  if (active === null) throw new ArgumentError('pruneDynamicRankModel: no adapter attached');
  if (model.mergedAdapter !== null || !model.enabled) throw new ArgumentError('pruneDynamicRankModel: the adapter is merged or disabled; prune while it is active');
  const states = model.adapterStates();
  for (const s of Object.values(states)) {
    if (s.variant !== 'dynamic-rank') throw new ArgumentError(`pruneDynamicRankModel: the active adapter is '${s.variant}', not 'dynamic-rank'`);
  }
  const pruned = pruneDynamicRank(states, budget, opts);
  const ranks: Record<string, number> = {};
  for (const [name, s] of Object.entries(pruned)) {
    model.setAdapterParams(active, name, Object.fromEntries(Object.entries(s.params).map(([p, t]) => [p, t.data])));
    ranks[name] = activeRank(s);
  }
  return ranks;
}

/** Forward: the hard indicator 1[g > 0]; backward: the identity (straight-through). */
const indicatorSte = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({ value: tf.step(args[0] as tf.Tensor), gradFunc: (dy: tf.Tensor) => dy }));

export const selectiveLoraForm: TfAdapterForm = {
  variant: 'selective-lora',
  effectiveWeight: ({ base, vars, state }) => {
    const c = state.config as SelectiveLoraConfig;
    const on = indicatorSte(v(vars, 'lora_gate')) as tf.Tensor;
    // One indicator per rank row: block b covers rows b·r/blocks .. (b+1)·r/blocks − 1.
    const rows = tf.reshape(tf.tile(tf.reshape(on, [c.blocks, 1]), [1, c.r / c.blocks]), [c.r, 1]);
    return tf.add(base, tf.matMul(v(vars, 'lora_B'), tf.mul(v(vars, 'lora_A'), tf.mul(rows, c.alpha / c.r))));
  },
};

// Masks drawn per effectiveWeight call, seeded by config.seed, the layer (numbered in the order its
// adapter is first used, so two layers of one model draw different masks) and a per-layer call count.
const dropoutDraws = new WeakMap<Vars, { layer: number; calls: number }>();
let dropoutLayers = 0;

/** Training: scaling · diag(m_B) B A diag(m_A) / (1 − p)²; otherwise the expected scaling · B A. */
export const loraDropoutForm: TfAdapterForm = {
  variant: 'lora-dropout',
  effectiveWeight: ({ base, vars, state, training }) => {
    const c = state.config as LoraDropoutConfig;
    const d = tf.mul(tf.matMul(v(vars, 'lora_B'), v(vars, 'lora_A')), loraDropoutScaling(c));
    if (!training || c.p === 0) return tf.add(base, d);
    let draw = dropoutDraws.get(vars);
    if (draw === undefined) dropoutDraws.set(vars, (draw = { layer: dropoutLayers++, calls: 0 }));
    const seed = `lora-dropout:${c.seed}:${draw.layer}:${draw.calls++}`;
    const keep = 1 - c.p;
    const [out, inp] = base.shape as [number, number];
    const mask = (n: number, salt: number) => tf.div(tf.cast(tf.less(tf.randomUniform([n], 0, 1, 'float32', `${seed}:${salt}`), keep), 'float32'), keep);
    return tf.add(base, tf.mul(tf.mul(d, tf.reshape(mask(out, 0), [out, 1])), tf.reshape(mask(inp, 1), [1, inp])));
  },
};

/**
 * LoRA Dropout's test-time ensemble over a whole model: runs `forward` (which reads the model's
 * effectiveWeight) `samples` times with dropout masks on and returns the mean output. The model's
 * `training` flag is restored afterwards.
 */
export function loraDropoutEnsemble(model: AdapterModel, samples: number, forward: () => tf.Tensor): tf.Tensor {
  if (!Number.isInteger(samples) || samples < 1) throw new ArgumentError(`loraDropoutEnsemble: samples must be a positive integer, got ${String(samples)}`);
  const was = model.training;
  model.training = true;
  try {
    return tf.tidy(() => {
      let sum = forward();
      for (let n = 1; n < samples; n++) sum = tf.add(sum, forward());
      return tf.div(sum, samples);
    });
  } finally {
    model.training = was;
  }
}

export const familyTfForms: readonly TfAdapterForm[] = [
  asymmetricLoraForm,
  loraXsForm,
  loraSbForm,
  svfitForm,
  spectralAdapterForm,
  cloverForm,
  cordaForm,
  nullLoraForm,
  ssfForm,
  dynamicRankForm,
  selectiveLoraForm,
  loraDropoutForm,
];

export { chainOfLora } from './chain.js';
export type { ChainOfLoraOptions } from './chain.js';
