// The tfjs form of 'spectral-adapter': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { SPECTRAL_ADAPTER_FROZEN } from './variant.js';

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
