// The tfjs form of 'lora-dropout': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v, type Vars } from '../helpers/tfjs.js';
import { loraDropoutScaling } from './variant.js';
import type { LoRADropoutConfig } from './config.js';

// Masks drawn per effectiveWeight call, seeded by config.seed, the layer (numbered in the order its
// adapter is first used, so two layers of one model draw different masks) and a per-layer call count.
const dropoutDraws = new WeakMap<Vars, { layer: number; calls: number }>();
let dropoutLayers = 0;

/** Training: scaling · diag(m_B) B A diag(m_A) / (1 − p)²; otherwise the expected scaling · B A. */
export const loraDropoutForm: TfAdapterForm = {
  variant: 'lora-dropout',
  testTimeEnsemble: { dropout: (config) => (config as LoRADropoutConfig).p },
  effectiveWeight: ({ base, vars, state, training }) => {
    const c = state.config as LoRADropoutConfig;
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
