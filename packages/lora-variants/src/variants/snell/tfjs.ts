// The tfjs form of 'snell': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { tensor as coreTensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { maskTensor } from '../helpers/tfjs.js';
import { snellMask } from './variant.js';
import type { SNELLConfig } from './config.js';

/** SNELL: distance kernels by broadcasting; the competition mask is decided by the core rule on K's values. */
export const snellForm: TfAdapterForm = {
  variant: 'snell',
  effectiveWeight: ({ base, vars, state }) => {
    const c = state.config as SNELLConfig;
    const [out, inp] = state.shape;
    const heads = [0, 1].map((h) => {
      const u = tf.reshape(tf.slice(vars.snell_out!, [h, 0, 0], [1, out, c.dim]), [out, 1, c.dim]);
      const v = tf.reshape(tf.slice(vars.snell_in!, [h, 0, 0], [1, inp, c.dim]), [1, inp, c.dim]);
      const diff = tf.sub(u, v);
      return c.p === 1 ? tf.sum(tf.abs(diff), -1) : tf.sqrt(tf.sum(tf.square(diff), -1));
    });
    const k = tf.mul(tf.sub(heads[0]!, heads[1]!), c.scale);
    const m = snellMask(coreTensor(Float32Array.from(k.dataSync()), [out, inp]), c.sparsity);
    return tf.add(base, tf.mul(k, maskTensor(m)));
  },
};
