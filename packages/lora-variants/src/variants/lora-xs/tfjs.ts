// The tfjs form of 'lora-xs': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { LORA_XS_FROZEN } from './variant.js';

export const loraXSForm: TfAdapterForm = {
  variant: 'lora-xs',
  frozen: LORA_XS_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(tf.matMul(v(vars, 'xs_B'), v(vars, 'xs_R')), v(vars, 'xs_A'))),
};
