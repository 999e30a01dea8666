// The tfjs form of 'sparse-adapter': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { LoRAConfig } from '../lora/config.js';
import { indexed, placeFlat } from '../helpers/tfjs.js';
import { bottleneckTermTf } from './bottleneck-tfjs.js';
import type { SparseAdapterConfig } from './config.js';

/** The dense factors from the survivors: A (or the down projection D) [r, in], B (U) [out, r]. */
function factors(vars: Readonly<Record<string, tf.Variable>>, state: { config: unknown; shape: [number, number] }, indices: Record<string, Int32Array>): { a: tf.Tensor2D; b: tf.Tensor2D } {
  const r = (state.config as { r: number }).r;
  const [out, inp] = state.shape;
  return { a: placeFlat(vars.sa_A!, indices.posA!, [r, inp]), b: placeFlat(vars.sa_B!, indices.posB!, [out, r]) };
}

export const sparseAdapterForm: TfAdapterForm = {
  variant: 'sparse-adapter',
  effectiveWeight: ({ base, vars, state }) => {
    // the bottleneck is no weight update: it adds `output` to the layer's output instead
    if ((state.config as SparseAdapterConfig).form === 'bottleneck') return base;
    const { a, b } = factors(vars, state, indexed(state).indices);
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(state.config as LoRAConfig)));
  },
  output: ({ x, vars, state }) => {
    const c = state.config as SparseAdapterConfig;
    if (c.form !== 'bottleneck') return undefined;
    const { a, b } = factors(vars, state, indexed(state).indices);
    return bottleneckTermTf(x, a, b, vars.sa_bd!, vars.sa_bu!, loraScaling(c), c.activation);
  },
};
