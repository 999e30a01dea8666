// train method 'rigl': RigL (Evci et al. 2020) at constant sparsity: drop the smallest-|w| active weights,
// regrow the inactive ones with the largest dense-gradient magnitude at zero, the fraction decaying on a
// cosine to 0 at `end` (dst.ts).

import { riglConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const riglMethod = dstMethod({
  name: 'rigl',
  describe: 'RigL: sparse training at constant sparsity, dropping the smallest |w| and regrowing the largest dense |grad| at zero (uniform/ER/ERK budgets)',
  paper: 'Evci et al. 2020, Rigging the Lottery: Making All Tickets Winners (RigL)',
  differs: [
    'the first update is after `every` steps, not at step 0',
    'an entry dropped at an update is not a regrowth candidate in the same update',
    'the dense gradient is taken on a batch of its own sampler rather than the step\'s batch',
  ],
  schema: riglConfigSchema,
  regrowth: 'gradient',
});
