// The tfjs form of 'lors': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { LoRAConfig } from '../lora/config.js';

/**
 * LoRS: W + M ⊙ (scaling · B A) as one custom-gradient op. The tape keeps only A and B (no [out, in]
 * intermediate: B A and its masked copy are recomputed, not stored), and the backward forms the masked
 * gradient G_M = scaling · M ⊙ ∂L/∂W' once and reuses it for both factors: ∂A = Bᵀ G_M, ∂B = G_M Aᵀ.
 */
export const lorsForm: TfAdapterForm = {
  variant: 'lors',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask }) => {
    const scale = loraScaling(state.config as LoRAConfig);
    const op = tf.customGrad((...args) => {
      const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, (saved: tf.Tensor[]) => void];
      save([a, b]);
      const value = tf.add(base, tf.mul(tf.mul(tf.matMul(b, a), scale), mask));
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const gm = tf.mul(tf.mul(dy, mask), scale) as tf.Tensor2D;
        return [tf.matMul(saved[1] as tf.Tensor2D, gm, true, false), tf.matMul(gm, saved[0] as tf.Tensor2D, false, true)];
      };
      return { value, gradFunc };
    });
    return op(vars.lora_A!, vars.lora_B!);
  },
};
