// The tfjs form of 'roselora': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`,
// and (sensitivity selection) the training hooks that keep the smoothed sensitivity and re-select the
// supports on the cubic schedule. Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { maskedWeight } from '@sparse/masks/tfjs';
import { tensor as coreTensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterTrainingContext, AdapterTrainingHooks, TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { countOf, type IndexedAdapterState } from '../helpers/sparse.js';
import { roseloraDensityAt, roseloraSelect, roseloraSupport } from './variant.js';
import type { RoseLoRAConfig } from './config.js';

/**
 * RoseLoRA: A ⊙ M_A and B ⊙ M_B with the straight-through estimator, so pruned entries keep learning and
 * can re-enter; the supports are the state's (sensitivity) or re-selected from the variables' current
 * values by the core's rule (magnitude).
 */
export const roseloraForm: TfAdapterForm = {
  variant: 'roselora',
  effectiveWeight: ({ base, vars, state }) => {
    const st = state as AdapterState<RoseLoRAConfig>;
    const core = (v: tf.Variable): Float32Tensor => coreTensor(v.dataSync() as Float32Array, v.shape);
    const keep = st.config.selection === 'magnitude' ? roseloraSupport(st, core(vars.lora_A!), core(vars.lora_B!)) : roseloraSupport(st);
    const a = maskedWeight(vars.lora_A!, tf.tensor(Float32Array.from(keep.a), vars.lora_A!.shape));
    const b = maskedWeight(vars.lora_B!, tf.tensor(Float32Array.from(keep.b), vars.lora_B!.shape));
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(st.config)));
  },
  training: roseloraTraining,
};

/** What the hooks' state() holds per layer: the EMA sensitivities and the kept positions of A and B. */
export interface RoseLoRASaved {
  layers: Record<string, { emaA: number[]; emaB: number[]; keepA: number[]; keepB: number[] }>;
}

/**
 * Sensitivity selection's lifecycle: `gradient` folds each step's |θ · ∂L/∂θ| into the EMA of every
 * layer's A and B; `beforeStep` re-selects per row of A / column of B the top-k of the EMA when the
 * schedule is due (k from roseloraDensityAt) and stores the supports in the layer states. The magnitude
 * rule has no lifecycle (no hooks).
 */
export function roseloraTraining({ model, adapter, config, steps }: AdapterTrainingContext): AdapterTrainingHooks {
  const c = config as RoseLoRAConfig;
  if (c.selection !== 'sensitivity') return {};
  const states = model.adapterStates(adapter) as Record<string, IndexedAdapterState<RoseLoRAConfig>>;
  const layers = Object.keys(states);
  const ema = new Map<string, { A: Float32Array; B: Float32Array }>();
  const owner = new Map<tf.Variable, { layer: string; which: 'A' | 'B' }>();
  const keep = new Map<string, { roselora_A: Int32Array; roselora_B: Int32Array }>();
  for (const n of layers) {
    const v = model.layerVariables(n, adapter);
    owner.set(v.lora_A!, { layer: n, which: 'A' });
    owner.set(v.lora_B!, { layer: n, which: 'B' });
    ema.set(n, { A: new Float32Array(v.lora_A!.size), B: new Float32Array(v.lora_B!.size) });
    keep.set(n, { roselora_A: states[n]!.indices.roselora_A!, roselora_B: states[n]!.indices.roselora_B! });
  }
  const apply = (n: string, idx: { roselora_A: Int32Array; roselora_B: Int32Array }) => {
    keep.set(n, idx);
    model.setLayerState(adapter, n, { ...states[n]!, params: {}, indices: { ...idx } } as AdapterState);
  };
  const beta = c.beta;
  return {
    gradient(variable, grad) {
      const o = owner.get(variable);
      if (o === undefined) return;
      const e = ema.get(o.layer)![o.which];
      const th = variable.dataSync() as Float32Array;
      const g = grad.dataSync() as Float32Array;
      for (let k = 0; k < e.length; k++) e[k] = beta * e[k]! + (1 - beta) * Math.abs(th[k]! * g[k]!);
    },
    beforeStep(step) {
      const d = roseloraDensityAt(c, step, steps);
      if (d === undefined) return;
      for (const n of layers) {
        const [out, inp] = states[n]!.shape;
        const e = ema.get(n)!;
        apply(n, roseloraSelect(coreTensor(e.A, [c.r, inp]), coreTensor(e.B, [out, c.r]), countOf(inp, d.densityA), countOf(out, d.densityB)));
      }
      return { event: { event: 'roselora-support', step, densityA: d.densityA, densityB: d.densityB } };
    },
    state: (): RoseLoRASaved => ({
      layers: Object.fromEntries(layers.map((n) => {
        const e = ema.get(n)!;
        const k = keep.get(n)!;
        return [n, { emaA: Array.from(e.A), emaB: Array.from(e.B), keepA: Array.from(k.roselora_A), keepB: Array.from(k.roselora_B) }];
      })),
    }),
    load(saved) {
      const s = saved as RoseLoRASaved;
      for (const n of layers) {
        const l = s.layers[n];
        if (l === undefined) throw new Error(`roselora: the saved training state has no layer '${n}'`);
        const e = ema.get(n)!;
        if (l.emaA.length !== e.A.length || l.emaB.length !== e.B.length) throw new Error(`roselora: the saved sensitivities of '${n}' do not fit its factors`);
        e.A.set(l.emaA);
        e.B.set(l.emaB);
        apply(n, { roselora_A: Int32Array.from(l.keepA), roselora_B: Int32Array.from(l.keepB) });
      }
    },
  };
}
