// The tfjs form of 'clover': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import type { AdapterState } from '../types.js';
import { v } from '../helpers/tfjs.js';
import type { CLOVERConfig } from './config.js';
import { CLOVER_FROZEN, cloverBlocks } from './variant.js';

/** Per block U_b diag(δ_b) V_b as one batched product [B, m, n], placed at its rows or columns by a gather (the rest reads an appended zero). */
export const cloverForm: TfAdapterForm = {
  variant: 'clover',
  frozen: CLOVER_FROZEN,
  effectiveWeight: ({ base, vars, state }) => {
    const { axis, starts, B, m, n } = cloverBlocks(state as AdapterState<CLOVERConfig>);
    if (B === 0) return base;
    const [out, inp] = state.shape;
    const scaled = tf.mul(v(vars, 'clover_U'), tf.expandDims(v(vars, 'clover_delta'), 1));
    const flat = tf.reshape(tf.matMul(scaled, v(vars, 'clover_V')), [B * m * n]);
    const map = new Int32Array(out * inp).fill(B * m * n);
    for (let b = 0; b < B; b++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      map[axis === 'row' ? (starts[b]! + i) * inp + j : i * inp + starts[b]! + j] = (b * m + i) * n + j;
    }
    const delta = tf.gather(tf.concat([flat, tf.zeros([1])]), tf.tensor1d(map, 'int32'));
    return tf.add(base, tf.reshape(delta, [out, inp]));
  },
};
