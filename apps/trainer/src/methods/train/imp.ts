// train method 'imp': iterative magnitude pruning with weight rewinding (lottery tickets), lottery.ts with
// one particle.

import { impConfigSchema } from '@sparse/pruners';
import { lotteryMethod } from './lottery.js';

export const impMethod = lotteryMethod({
  name: 'imp',
  describe:
    'iterative magnitude pruning with weight rewinding (Frankle et al. 2019/2020): save the weights after rewindStep steps, train a phase, prune `rate` of the remaining weights by |W| (per layer or global), rewind the survivors exactly with fresh Adam, `rounds` times, then train the final ticket; the stage is split into rewindStep + (rounds + 1) equal phases, Adam is also reset at the rewind point of the dense phase',
  paper: 'Frankle & Carbin 2019, The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks; Frankle et al. 2020, Linear Mode Connectivity and the Lottery Ticket Hypothesis',
  differs: [
    'Adam is reset at the rewind point of the dense phase too (phase 0 starts from the ticket like the others)',
  ],
  schema: impConfigSchema,
});
