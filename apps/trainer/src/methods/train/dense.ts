import { z } from 'zod';
import type { TrainerMethod } from '../types.js';
import { trainAllWeights } from './weights.js';

export const denseTrainMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'dense',
  describe: 'dense training; pruned weights may grow back (the masks are dropped)',
  paper: 'none (the standard dense baseline): dense training with the masks dropped',
  differs: [],
  schema: z.strictObject({}),
  from: '@sparse/trainer',
  run: (args) => trainAllWeights(args, false),
};
