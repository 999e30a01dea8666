// The tfjs forms of 'lora' and 'sqft': W + scaling · B A, for SQFT through the base mask.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { lowRank } from '../helpers/tfjs.js';

export const loraForm: TfAdapterForm = {
  variant: 'lora',
  effectiveWeight: ({ base, vars, state }) => tf.add(base, lowRank(vars, state.config)),
};

/** SQFT trains the weight it will merge into: ΔW through the base mask. */
export const sqftForm: TfAdapterForm = {
  variant: 'sqft',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask }) => tf.add(base, tf.mul(lowRank(vars, state.config), mask)),
};
