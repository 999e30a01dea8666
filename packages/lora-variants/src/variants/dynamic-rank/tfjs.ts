// The tfjs form of 'dynamic-rank': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ArgumentError, type Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../../tfjs.js';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { v } from '../helpers/tfjs.js';
import { DYNAMIC_RANK_FROZEN, activeRank, dynamicRankScaling, pruneDynamicRank, rankBudgetAt } from './variant.js';
import type { DynamicRankConfig } from './config.js';

/** scaling · B diag(g) A; a pruned component (g_i = 0) gets no gradient. */
export const dynamicRankForm: TfAdapterForm = {
  variant: 'dynamic-rank',
  // components are pruned on config.rankBudget's schedule (rankBudgetAt) during training
  training: ({ model, config, steps }) => {
    const layers = model.trainableReport().layers.length;
    let ranks: Record<string, number> | undefined;
    return {
      beforeStep(step) {
        const budget = rankBudgetAt(config as DynamicRankConfig, step, steps, layers);
        if (budget !== undefined) ranks = pruneDynamicRankModel(model, budget);
      },
      finish() {
        if (ranks === undefined) return {};
        const total = Object.values(ranks).reduce((a, b) => a + b, 0);
        const per = Object.entries(ranks).map(([n, k]) => `${n.replace(/\.weight$/, '')} ${k}`).join(', ');
        return { log: `rank after pruning ${total} components over ${Object.keys(ranks).length} layers (${per})`, event: { event: 'ranks', ranks } };
      },
    };
  },
  frozen: DYNAMIC_RANK_FROZEN,
  effectiveWeight: ({ base, vars, state }) => {
    const gatedA = tf.mul(v(vars, 'lora_A'), tf.expandDims(tf.mul(v(vars, 'rank_gate'), dynamicRankScaling(state.config as DynamicRankConfig)), 1));
    return tf.add(base, tf.matMul(v(vars, 'lora_B'), gatedA));
  },
};

/**
 * Prunes the active 'dynamic-rank' adapter of `model` in place to `budget` components over all its layers
 * (see pruneDynamicRank; `gradients` per layer name switch to gradient scores). Call it between training
 * steps, on a model that is neither merged nor disabled. Returns the active rank per layer.
 */
export function pruneDynamicRankModel(model: AdapterModel, budget: number, opts: { gradients?: Readonly<Record<string, Tensor>> } = {}): Record<string, number> {
  const active = model.activeAdapter;
  if (active === null) throw new ArgumentError('pruneDynamicRankModel: no adapter attached');
  if (model.mergedAdapter !== null || !model.enabled) throw new ArgumentError('pruneDynamicRankModel: the adapter is merged or disabled; prune while it is active');
  const states = model.adapterStates();
  for (const s of Object.values(states)) {
    if (s.variant !== 'dynamic-rank') throw new ArgumentError(`pruneDynamicRankModel: the active adapter is '${s.variant}', not 'dynamic-rank'`);
  }
  const pruned = pruneDynamicRank(states, budget, opts);
  const ranks: Record<string, number> = {};
  for (const [name, s] of Object.entries(pruned)) {
    model.setAdapterParams(active, name, Object.fromEntries(Object.entries(s.params).map(([p, t]) => [p, t.data])));
    ranks[name] = activeRank(s);
  }
  return ranks;
}
