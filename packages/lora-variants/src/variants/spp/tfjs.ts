// The tfjs form of 'spp': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import type { SPPConfig } from './config.js';

/** W + W ⊙ (diag(u) E V): V's r rows repeat-interleaved over the r row groups; zero wherever W is. */
export const sppForm: TfAdapterForm = {
  variant: 'spp',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state }) => {
    const rank = (state.config as SPPConfig).rank ?? 1;
    const [out, inp] = base.shape as [number, number];
    const col = rank === 1 ? tf.reshape(vars.spp_col!, [1, inp]) : tf.reshape(tf.tile(tf.reshape(vars.spp_col!, [rank, 1, inp]), [1, out / rank, 1]), [out, inp]);
    const scale = tf.mul(tf.reshape(vars.spp_row!, [-1, 1]), col);
    return tf.add(base, tf.mul(base, scale));
  },
};
