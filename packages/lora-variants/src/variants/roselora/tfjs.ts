// The tfjs form of 'roselora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { maskedWeight } from '@sparse/masks/tfjs';
import { tensor as coreTensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { maskTensor } from '../helpers/tfjs.js';
import { roseloraMasks } from './variant.js';
import type { RoseLoRAConfig } from './config.js';

/**
 * RoseLoRA: the supports are re-selected from the variables' current values (the same rule as the core);
 * A ⊙ M_A and B ⊙ M_B with the straight-through estimator, so pruned entries keep learning and can re-enter.
 */
export const roseloraForm: TfAdapterForm = {
  variant: 'roselora',
  effectiveWeight: ({ base, vars, state }) => {
    const st = state as AdapterState<RoseLoRAConfig>;
    const core = (v: tf.Variable): Float32Tensor => coreTensor(v.dataSync() as Float32Array, v.shape);
    const { maskA, maskB } = roseloraMasks(st, core(vars.lora_A!), core(vars.lora_B!));
    const a = maskedWeight(vars.lora_A!, maskTensor(maskA));
    const b = maskedWeight(vars.lora_B!, maskTensor(maskB));
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(st.config)));
  },
};
