// train method 'set': SET (Mocanu et al. 2018) at constant sparsity: drop the smallest-|w| active weights,
// regrow as many at random among the inactive ones (dst.ts).

import { setConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const setMethod = dstMethod({
  name: 'set',
  describe: 'SET: sparse training at constant sparsity, dropping the smallest |w| and regrowing at random (uniform/ER/ERK budgets)',
  schema: setConfigSchema,
  regrowth: 'random',
});
