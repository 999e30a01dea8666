// train method 'set': SET (Mocanu et al. 2018) at constant sparsity: drop the smallest-|w| active weights,
// regrow as many at random among the inactive ones (dst.ts).

import { setConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const setMethod = dstMethod({
  name: 'set',
  describe: 'SET: sparse training at constant sparsity, dropping the smallest |w| and regrowing at random (uniform/ER/ERK budgets)',
  paper: 'Mocanu et al. 2018, Scalable training of artificial neural networks with adaptive sparse connectivity inspired by network science (SET)',
  differs: [
    'the first update is after `every` steps, not at step 0',
    'an entry dropped at an update is not a regrowth candidate in the same update',
  ],
  schema: setConfigSchema,
  regrowth: 'random',
});
