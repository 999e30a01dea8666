// The 'sparse-adapter' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { bottleneckFields } from './bottleneck.js';

export const sparseAdapterConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of the entries of A and of B pruned at init. */
    sparsity: z.number().min(0).lt(1).default(0.4),
    /** How A's survivors are chosen (B's are random unless scores are given). */
    selection: z.enum(['magnitude', 'random']).default('magnitude'),
    ...bottleneckFields,
  })
  .strict();
export type SparseAdapterConfig = z.output<typeof sparseAdapterConfigSchema>;
export type SparseAdapterConfigInput = z.input<typeof sparseAdapterConfigSchema>;
