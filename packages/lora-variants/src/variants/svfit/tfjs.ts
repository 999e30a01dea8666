// The tfjs form of 'svfit': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { SVFIT_FROZEN } from './variant.js';

export const svfitForm: TfAdapterForm = {
  variant: 'svfit',
  frozen: SVFIT_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(tf.mul(v(vars, 'svfit_U'), v(vars, 'svfit_delta')), v(vars, 'svfit_V'))),
};
