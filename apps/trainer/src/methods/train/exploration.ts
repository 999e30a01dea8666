// train method 'exploration': DST with an exploration-exploitation acquisition score (Huang et al. 2023,
// "Dynamic Sparse Training via Balancing the Exploration-Exploitation Trade-off"): RigL's drop (smallest |w|)
// and cosine schedule, with the inactive entries regrown by |dense gradient| + c · sqrt(ln t / (1 + n)), t the
// steps done and n the steps the entry has been active in this stage (dst.ts, activity.ts). Entries never
// or rarely tried get the largest bonus, so regrowth covers more of the layer than RigL's greedy choice.
//
// Departures: the paper's text was not at hand when this was written, so the bonus takes the UCB form
// c · sqrt(ln t / (1 + n)) (the + 1 keeps never-active entries finite); n counts training steps in the
// mask, counted from the start of the stage; RigL's departures (dst.ts) apply too.

import { explorationConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const explorationMethod = dstMethod({
  name: 'exploration',
  describe: 'DST-EE: RigL regrowing by |dense grad| + c·sqrt(ln t / (1 + n)), n = steps an entry was active (UCB form, uniform/ER/ERK budgets)',
  paper: 'Huang et al. 2023, Dynamic Sparse Training via Balancing the Exploration-Exploitation Trade-off (DST-EE)',
  differs: [
    'the paper\'s text was not at hand: the bonus takes the UCB form c · sqrt(ln t / (1 + n)) rather than a formula checked against the paper',
    'RigL\'s departures apply too',
  ],
  schema: explorationConfigSchema,
  regrowth: 'exploration',
});
