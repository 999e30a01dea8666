// The tfjs form of 'lora-sb': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { LORA_SB_FROZEN } from './variant.js';

export const loraSBForm: TfAdapterForm = {
  variant: 'lora-sb',
  frozen: LORA_SB_FROZEN,
  effectiveWeight: ({ base, vars }) =>
    tf.add(base, tf.matMul(tf.matMul(v(vars, 'sb_B'), tf.sub(v(vars, 'sb_R'), v(vars, 'sb_R0'))), v(vars, 'sb_A'))),
};
