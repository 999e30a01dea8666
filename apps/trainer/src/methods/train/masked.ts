import { z } from 'zod';
import type { TrainerMethod } from '../types.js';
import { trainAllWeights } from './weights.js';

export const maskedTrainMethod: TrainerMethod<'train'> = {
  kind: 'train',
  sparsePath: true,
  name: 'masked',
  describe: 'train with the current masks held fixed: pruned weights stay exactly zero',
  paper: 'none (this library\'s own method): training through fixed masks, pruned weights exactly zero',
  differs: [],
  schema: z.strictObject({}),
  from: '@sparse/trainer',
  run: (args) => trainAllWeights(args, true),
};
