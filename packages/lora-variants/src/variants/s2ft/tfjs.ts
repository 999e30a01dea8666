// The tfjs form of 's2ft': the ΔW of ./variant.ts's `delta`, as a weight (on a pruned base) or as the
// layer's output term (partial backpropagation, on a dense base).
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import type { AdapterState } from '../types.js';
import { indexed } from '../helpers/tfjs.js';
import { s2ftAxis } from './variant.js';
import type { S2FTConfig } from './config.js';

/** For each channel of the axis, its row/column of D, or k (an appended zero) when unselected. */
function channelMap(ch: Int32Array, len: number): tf.Tensor1D {
  const map = new Int32Array(len).fill(ch.length);
  ch.forEach((c, t) => (map[c] = t));
  return tf.tensor1d(map, 'int32');
}

/** Whether this layer trains by partial backpropagation: asked for in the config, and nothing pruned to project onto. */
const partial = (state: { config: unknown }, maskFull: boolean | undefined) => (state.config as S2FTConfig).partialBackprop && maskFull === true;

/**
 * S2FT. With `partialBackprop` on a dense base (or densified), partial backpropagation as in the paper: the weight stays the
 * frozen W and `output` adds the selected channels' product, x Dᵀ scattered to the selected outputs
 * (rows) or x[:, ch] Dᵀ (columns), so the backward computes D's gradient from those channels only and
 * never the full [out, in] weight gradient. Otherwise (and always on a pruned base, where the update must
 * go through the mask: the function the merge writes) D is scattered into the weight by a gather over the co-permutation and
 * AdapterModel projects it; the gradient then passes through the full weight gradient.
 */
export const s2ftForm: TfAdapterForm = {
  variant: 's2ft',
  effectiveWeight: ({ base, vars, state, maskFull }) => {
    if (partial(state, maskFull)) return base;
    const ch = indexed(state).indices.channels!;
    const axis = s2ftAxis(state as AdapterState<S2FTConfig>) === 'row' ? 0 : 1;
    const [out, inp] = state.shape;
    const block = vars.s2ft_block!;
    const padded = tf.concat([block, tf.zeros(axis === 0 ? [1, inp] : [out, 1])], axis);
    return tf.add(base, tf.gather(padded, channelMap(ch, axis === 0 ? out : inp), axis));
  },
  output: ({ x, vars, state, maskFull }) => {
    if (!partial(state, maskFull)) return undefined;
    const ch = indexed(state).indices.channels!;
    const [out] = state.shape;
    const block = vars.s2ft_block!;
    if (s2ftAxis(state as AdapterState<S2FTConfig>) === 'row') {
      // [n, k] for the selected outputs, then each output channel reads its column (or an appended zero)
      const part = tf.matMul(x, block, false, true);
      const padded = tf.concat([part, tf.zeros([x.shape[0], 1])], 1);
      return tf.gather(padded, channelMap(ch, out), 1) as tf.Tensor2D;
    }
    return tf.matMul(tf.gather(x, tf.tensor1d(ch, 'int32'), 1), block, false, true) as tf.Tensor2D;
  },
};
