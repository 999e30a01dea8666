// The tfjs form of 'selective-lora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import type { SelectiveLoRAConfig } from './config.js';

/** Forward: the hard indicator 1[g > 0]; backward: the identity (straight-through). */
const indicatorSTE = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({ value: tf.step(args[0] as tf.Tensor), gradFunc: (dy: tf.Tensor) => dy }));

export const selectiveLoRAForm: TfAdapterForm = {
  variant: 'selective-lora',
  effectiveWeight: ({ base, vars, state }) => {
    const c = state.config as SelectiveLoRAConfig;
    const on = indicatorSTE(v(vars, 'lora_gate')) as tf.Tensor;
    // One indicator per rank row: block b covers rows b·r/blocks .. (b+1)·r/blocks − 1.
    const rows = tf.reshape(tf.tile(tf.reshape(on, [c.blocks, 1]), [1, c.r / c.blocks]), [c.r, 1]);
    return tf.add(base, tf.matMul(v(vars, 'lora_B'), tf.mul(v(vars, 'lora_A'), tf.mul(rows, c.alpha / c.r))));
  },
  /**
   * The gate penalty λ · Σ max(g_b, 0) over the adapter's layers as a loss term (when lambda > 0), and
   * the count of blocks still on (g_b > 0) at the end of the run, for the log, the metrics and the summary.
   */
  training: ({ model, adapter, config }) => {
    const lambda = (config as SelectiveLoRAConfig).lambda;
    const layers = Object.keys(model.adapterStates(adapter));
    const gates = (): [string, tf.Variable][] => layers.map((n) => [n, model.layerVariables(n, adapter).lora_gate!]);
    return {
      ...(lambda > 0
        ? { loss: () => tf.mul(lambda, tf.addN(gates().map(([, g]) => tf.sum(tf.relu(g))))) as tf.Scalar }
        : {}),
      finish: () => {
        const active: Record<string, number> = {};
        let [on, total] = [0, 0];
        for (const [n, g] of gates()) {
          const d = Array.from(g.dataSync() as Float32Array);
          active[n] = d.reduce((a, x) => a + (x > 0 ? 1 : 0), 0);
          on += active[n]!;
          total += d.length;
        }
        const phrase = `${on} of ${total} blocks active`;
        return { log: `${phrase} over ${Object.keys(active).length} layers (gate penalty λ = ${lambda})`, event: { event: 'blocks', active, on, total }, summary: phrase };
      },
    };
  },
};
