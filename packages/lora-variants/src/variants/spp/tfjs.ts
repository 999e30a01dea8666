// The tfjs form of 'spp': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';

/** W + W ⊙ (u vᵀ): zero wherever W is. */
export const sppForm: TfAdapterForm = {
  variant: 'spp',
  keepsMask: true,
  effectiveWeight: ({ base, vars }) => {
    const scale = tf.mul(tf.reshape(vars.spp_row!, [-1, 1]), tf.reshape(vars.spp_col!, [1, -1]));
    return tf.add(base, tf.mul(base, scale));
  },
};
