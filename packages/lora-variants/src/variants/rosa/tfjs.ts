// The tfjs form of 'rosa': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { indexed, lowRank, placeFlat } from '../helpers/tfjs.js';

export const rosaForm: TfAdapterForm = {
  variant: 'rosa',
  effectiveWeight: ({ base, vars, state }) =>
    tf.add(tf.add(base, lowRank(vars, state.config)), placeFlat(vars.rosa_values!, indexed(state).indices.support!, state.shape)),
};
