// The tfjs form of 's2ft': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import type { AdapterState } from '../types.js';
import { indexed } from '../helpers/tfjs.js';
import { s2ftAxis } from './variant.js';
import type { S2FTConfig } from './config.js';

/**
 * S2FT: the dense block D goes back to its channels by a gather over the co-permutation (every unselected
 * channel reads an appended zero row/column), so the gradient reaches D as a dense block.
 */
export const s2ftForm: TfAdapterForm = {
  variant: 's2ft',
  effectiveWeight: ({ base, vars, state }) => {
    const ch = indexed(state).indices.channels!;
    const axis = s2ftAxis(state as AdapterState<S2FTConfig>) === 'row' ? 0 : 1;
    const [out, inp] = state.shape;
    const len = axis === 0 ? out : inp;
    const map = new Int32Array(len).fill(ch.length);
    ch.forEach((c, t) => (map[c] = t));
    const block = vars.s2ft_block!;
    const padded = tf.concat([block, tf.zeros(axis === 0 ? [1, inp] : [out, 1])], axis);
    return tf.add(base, tf.gather(padded, tf.tensor1d(map, 'int32'), axis));
  },
};
