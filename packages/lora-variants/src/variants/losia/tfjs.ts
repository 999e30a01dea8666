// The tfjs form of 'losia': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { indexed } from '../shared/tfjs.js';

/** LoSiA: the core goes to W[R, C] by a row gather and a column gather over zero-padded maps. */
export const losiaForm: TfAdapterForm = {
  variant: 'losia',
  effectiveWeight: ({ base, vars, state }) => {
    const { rows, cols } = indexed(state).indices;
    const [out, inp] = state.shape;
    const map = (sel: Int32Array, len: number) => {
      const m = new Int32Array(len).fill(sel.length);
      sel.forEach((c, t) => (m[c] = t));
      return tf.tensor1d(m, 'int32');
    };
    const core = vars.losia_core!;
    const padded = tf.pad(core, [[0, 1], [0, 1]]);
    return tf.add(base, tf.gather(tf.gather(padded, map(rows!, out), 0), map(cols!, inp), 1));
  },
};
