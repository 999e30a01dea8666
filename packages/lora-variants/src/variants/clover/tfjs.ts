// The tfjs form of 'clover': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { CLOVER_FROZEN } from './variant.js';

/** Per head: U_h diag(δ_h) V_hᵀ as one batched product, [heads, d, in] back to [out, in]. */
export const cloverForm: TfAdapterForm = {
  variant: 'clover',
  frozen: CLOVER_FROZEN,
  effectiveWeight: ({ base, vars }) => {
    const u = v(vars, 'clover_U');
    const scaled = tf.mul(u, tf.expandDims(v(vars, 'clover_delta'), 1));
    return tf.add(base, tf.reshape(tf.matMul(scaled, v(vars, 'clover_V')), base.shape));
  },
};
