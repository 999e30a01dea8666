import { z } from 'zod';
import { trainAllWeights } from '../train/weights.js';
import type { TrainerMethod } from '../types.js';

export const densePretrainMethod: TrainerMethod<'pretrain'> = {
  kind: 'pretrain',
  name: 'dense',
  describe: 'dense training of every parameter (Adam, warmup + cosine decay)',
  paper: 'none (the standard dense baseline): every parameter trained with Adam under warmup + cosine decay',
  differs: [],
  schema: z.strictObject({}),
  from: '@sparse/trainer',
  run: (args) => trainAllWeights(args, false),
};
