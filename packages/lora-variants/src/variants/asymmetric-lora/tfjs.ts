// The tfjs form of 'asymmetric-lora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { ASYMMETRIC_LORA_FROZEN, asymmetricScaling } from './variant.js';
import type { AsymmetricLoRAConfig } from './config.js';

export const asymmetricLoRAForm: TfAdapterForm = {
  variant: 'asymmetric-lora',
  frozen: ASYMMETRIC_LORA_FROZEN,
  effectiveWeight: ({ base, vars, state }) =>
    tf.add(base, tf.mul(tf.matMul(v(vars, 'lora_B'), v(vars, 'lora_A')), asymmetricScaling(state.config as AsymmetricLoRAConfig))),
};
