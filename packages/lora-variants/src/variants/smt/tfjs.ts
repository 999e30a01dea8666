// The tfjs form of 'smt': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { indexed, placeFlat } from '../helpers/tfjs.js';
import { smtPositions } from './variant.js';

export const smtForm: TfAdapterForm = {
  variant: 'smt',
  effectiveWeight: ({ base, vars, state }) => {
    const bs = (state.config as { blockSize: number }).blockSize;
    return tf.add(base, placeFlat(vars.smt_blocks!, smtPositions(indexed(state).indices.blocks!, bs, state.shape[1]), state.shape));
  },
};
