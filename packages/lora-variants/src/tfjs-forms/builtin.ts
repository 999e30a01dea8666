// tfjs forms of LoRA, SQFT and SPP.
import * as tf from '@tensorflow/tfjs-core';
import { loraScaling, type LoraConfig } from '../variants/lora.js';
import type { TfAdapterForm } from './types.js';

function loraDelta(vars: Readonly<Record<string, tf.Variable>>, config: LoraConfig): tf.Tensor {
  return tf.mul(tf.matMul(vars.lora_B!, vars.lora_A!), loraScaling(config));
}

export const loraForm: TfAdapterForm = {
  variant: 'lora',
  effectiveWeight: ({ base, vars, state }) => tf.add(base, loraDelta(vars, state.config as LoraConfig)),
};

/** SQFT trains the weight it will merge into: ΔW through the base mask. */
export const sqftForm: TfAdapterForm = {
  variant: 'sqft',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask }) => tf.add(base, tf.mul(loraDelta(vars, state.config as LoraConfig), mask)),
};

/** W + W ⊙ (u vᵀ): zero wherever W is. */
export const sppForm: TfAdapterForm = {
  variant: 'spp',
  keepsMask: true,
  effectiveWeight: ({ base, vars }) => {
    const scale = tf.mul(tf.reshape(vars.spp_row!, [-1, 1]), tf.reshape(vars.spp_col!, [1, -1]));
    return tf.add(base, tf.mul(base, scale));
  },
};
