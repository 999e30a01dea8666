// The tfjs form of 'null-lora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { NULL_LORA_FROZEN } from './variant.js';

export const nullLoRAForm: TfAdapterForm = {
  variant: 'null-lora',
  frozen: NULL_LORA_FROZEN,
  effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(v(vars, 'null_B'), v(vars, 'null_N'))),
};
