// Magnitude pruning: the data-free baseline. Per layer (or per row, or N:M groups) keep the largest |W|;
// globalMagnitudeMasks ranks all layers together instead.

import { applyMask, globalTopKMasks, magnitudeScores, type GlobalBudget, type Mask } from '@sparse/masks';
import { ArgumentError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { readWeight } from '../../internal.js';
import { patternOf, selectByPattern } from '../../pattern.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { magnitudeConfigSchema, type MagnitudeConfigInput } from './config.js';

export const magnitudePruner: PrunerDefinition<typeof magnitudeConfigSchema> = {
  name: 'magnitude',
  kind: 'pruner',
  describe: 'Keep the largest |W| per layer, per row or per N:M group (no calibration data).',
  paper: 'none (the standard data-free baseline, no one paper followed): keep the largest |W| per layer, per row or per N:M group',
  differs: [],
  schema: magnitudeConfigSchema,
  calibration: [],
  prune({ name, weight, config }) {
    const w = readWeight('magnitude', name, weight);
    const dense = tensor(w.data, [w.rows, w.cols]);
    const scores = magnitudeScores(dense).data;
    const mask = selectByPattern('magnitude', name, scores, w.rows, w.cols, patternOf(config), config.granularity);
    return { mask, weight: applyMask(mask, dense) as Float32Tensor };
  },
};

/** Magnitude pruning of one layer (the config is validated; defaults: 50% unstructured per layer). */
export function magnitudePrune(input: PruneRequest<MagnitudeConfigInput>): PruneResult {
  return runDefinition(magnitudePruner, input);
}

/**
 * Global magnitude pruning: one ranking of |W| across all the given layers, so layers with many small
 * weights lose more of them. Keeps exactly `k`, or keepCount(total, sparsity), entries in total.
 */
export function globalMagnitudeMasks(weights: Record<string, Tensor>, budget: GlobalBudget): Record<string, Mask> {
  const names = Object.keys(weights ?? {});
  if (names.length === 0) throw new ArgumentError('globalMagnitudeMasks: weights must name at least one layer');
  const scores = names.map((name) => {
    const w = readWeight('globalMagnitudeMasks', name, weights[name]);
    return magnitudeScores(tensor(w.data, [w.rows, w.cols]));
  });
  const masks = globalTopKMasks(scores, budget);
  return Object.fromEntries(names.map((name, i) => [name, masks[i]!]));
}
