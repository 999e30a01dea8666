// The tfjs form of 'roselora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { tensor as coreTensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { maskTensor } from '../shared/tfjs.js';
import { roseloraMasks } from './variant.js';
import type { RoseLoRAConfig } from './config.js';

/** x ⊙ m in the forward, identity in the backward (the straight-through estimator). */
function straightThrough(x: tf.Tensor, m: tf.Tensor): tf.Tensor {
  return tf.customGrad((...args) => {
    const [v] = args as [tf.Tensor];
    return { value: tf.mul(v, m), gradFunc: (dy: tf.Tensor) => [dy] };
  })(x);
}

/** RoseLoRA: the supports are re-selected from the variables' current values (the same rule as the core). */
export const roseloraForm: TfAdapterForm = {
  variant: 'roselora',
  effectiveWeight: ({ base, vars, state }) => {
    const st = state as AdapterState<RoseLoRAConfig>;
    const core = (v: tf.Variable): Float32Tensor => coreTensor(v.dataSync() as Float32Array, v.shape);
    const { maskA, maskB } = roseloraMasks(st, core(vars.lora_A!), core(vars.lora_B!));
    const a = straightThrough(vars.lora_A!, maskTensor(maskA));
    const b = straightThrough(vars.lora_B!, maskTensor(maskB));
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(st.config)));
  },
};
