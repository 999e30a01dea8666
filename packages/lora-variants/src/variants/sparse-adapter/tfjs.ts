// The tfjs form of 'sparse-adapter': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { LoRAConfig } from '../lora/config.js';
import { indexed, placeFlat } from '../helpers/tfjs.js';

export const sparseAdapterForm: TfAdapterForm = {
  variant: 'sparse-adapter',
  effectiveWeight: ({ base, vars, state }) => {
    const { indices } = indexed(state);
    const r = (state.config as { r: number }).r;
    const [out, inp] = state.shape;
    const a = placeFlat(vars.sa_A!, indices.posA!, [r, inp]);
    const b = placeFlat(vars.sa_B!, indices.posB!, [out, r]);
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(state.config as LoRAConfig)));
  },
};
