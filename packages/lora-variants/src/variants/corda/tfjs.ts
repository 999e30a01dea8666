// The tfjs form of 'corda': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { CORDA_FROZEN } from './variant.js';

/** (B − B₀) A + B₀ (A − A₀) = B A − B₀ A₀, zero at init without cancellation error. */
export const cordaForm: TfAdapterForm = {
  variant: 'corda',
  frozen: CORDA_FROZEN,
  effectiveWeight: ({ base, vars }) => {
    const [b, a, b0, a0] = ['corda_B', 'corda_A', 'corda_B0', 'corda_A0'].map((n) => v(vars, n)) as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    return tf.add(base, tf.add(tf.matMul(tf.sub(b, b0), a), tf.matMul(b0, tf.sub(a, a0))));
  },
};
