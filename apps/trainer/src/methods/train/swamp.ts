// train method 'swamp': SWAMP (Choi et al. 2023), IMP whose every phase trains several particles from the
// same ticket on different data orders and continues from their exact mean (lottery.ts).

import { swampConfigSchema } from '@sparse/pruners';
import { lotteryMethod } from './lottery.js';

export const swampMethod = lotteryMethod({
  name: 'swamp',
  describe:
    'SWAMP (Choi et al. 2023): IMP with weight rewinding whose every phase trains `particles` copies of the ticket one after the other on their own batch orders, averages their weights exactly and prunes from the mean; no stochastic weight averaging along each particle (the paper averages each trajectory too)',
  paper: 'Choi et al. 2023, SWAMP: Sparse Weight Averaging with Multiple Particles for Iterative Magnitude Pruning',
  differs: [
    'no stochastic weight averaging along each particle\'s trajectory (the paper averages each particle\'s later iterates before averaging the particles)',
    'each particle trains 1/particles of an imp phase\'s steps at equal `steps`',
    'imp\'s departures apply too',
  ],
  schema: swampConfigSchema,
});
