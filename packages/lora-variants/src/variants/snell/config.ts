// The 'snell' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const snellConfigSchema = z
  .object({
    /** Dimension of each row's and column's kernel vector. */
    dim: z.number().int().positive().default(4),
    /** Fraction of K's entries zeroed by the competition. */
    sparsity: z.number().min(0).lt(1).default(0.9),
    /** The distance's norm: 1 or 2. */
    p: z.union([z.literal(1), z.literal(2)]).default(2),
    /** Coefficient of the head difference. */
    scale: z.number().positive().default(0.1),
  })
  .strict();
export type SNELLConfig = z.output<typeof snellConfigSchema>;
export type SNELLConfigInput = z.input<typeof snellConfigSchema>;
