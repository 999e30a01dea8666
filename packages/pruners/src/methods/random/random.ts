// Random pruning: a seeded uniform choice of which entries to keep, under the same patterns as magnitude.

import { applyMask, randomScores } from '@sparse/masks';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { readWeight } from '../../internal.js';
import { patternOf, selectByPattern } from '../../pattern.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { randomConfigSchema, type RandomConfigInput } from './config.js';

export const randomPruner: PrunerDefinition<typeof randomConfigSchema> = {
  name: 'random',
  kind: 'pruner',
  describe: 'Keep a seeded uniformly random subset (per layer, per row or per N:M group).',
  paper: 'none (this library\'s own baseline): a seeded uniformly random mask under the same patterns as magnitude',
  differs: [],
  schema: randomConfigSchema,
  calibration: [],
  prune({ name, weight, config }) {
    const w = readWeight('random', name, weight);
    // Forking by layer name gives each layer its own stream, independent of the order layers are pruned in.
    const scores = randomScores([w.rows, w.cols], new Random(config.seed).fork(name)).data;
    const mask = selectByPattern('random', name, scores, w.rows, w.cols, patternOf(config), config.granularity);
    return { mask, weight: applyMask(mask, tensor(w.data, [w.rows, w.cols])) as Float32Tensor };
  },
};

/** Random pruning of one layer (defaults: 50% unstructured per layer, seed 0). */
export function randomPrune(input: PruneRequest<RandomConfigInput>): PruneResult {
  return runDefinition(randomPruner, input);
}
