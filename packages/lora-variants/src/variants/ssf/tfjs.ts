// The tfjs form of 'ssf': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';

/** diag(γ) W: zero wherever W is, during training as after the merge. */
export const ssfForm: TfAdapterForm = {
  variant: 'ssf',
  keepsMask: true,
  effectiveWeight: ({ base, vars }) => tf.mul(base, tf.expandDims(v(vars, 'ssf_scale'), 1)),
  effectiveBias: ({ bias, vars }) => (bias === null ? tf.add(v(vars, 'ssf_shift'), 0) : tf.add(tf.mul(v(vars, 'ssf_scale'), bias), v(vars, 'ssf_shift'))),
};
