import { z } from 'zod';
import { checkPattern, patternFields, withDefaultSparsity } from '../../pattern.js';

/** Random pruning: a seeded uniform choice of the pruned entries (the baseline of the random-pruning papers). */
export const randomConfigSchema = z
  .strictObject({
    ...patternFields,
    /** Seed of the @sparse/tensor Random; each layer draws from rng.fork(layer name), so the order of layers does not matter. */
    seed: z.int('seed must be an integer').default(0),
    granularity: z.enum(['tensor', 'row']).default('tensor'),
  })
  .superRefine(checkPattern)
  .transform(withDefaultSparsity);

export type RandomConfig = z.output<typeof randomConfigSchema>;
export type RandomConfigInput = z.input<typeof randomConfigSchema>;
