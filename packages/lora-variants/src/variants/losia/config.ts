// The 'losia' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const losiaConfigSchema = z
  .object({
    /** Fraction of output rows in the subnet (at least one). */
    rows: z.number().gt(0).max(1).default(0.125),
    /** Fraction of input columns in the subnet (at least one). */
    cols: z.number().gt(0).max(1).default(0.125),
    /** Data-free localization score when none is given. */
    score: z.enum(['magnitude', 'random']).default('magnitude'),
  })
  .strict();
export type LosiaConfig = z.output<typeof losiaConfigSchema>;
export type LosiaConfigInput = z.input<typeof losiaConfigSchema>;
