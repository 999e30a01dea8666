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
    /**
     * In training: re-localize every this many steps (the trained core goes into the weight and a new
     * subnet is chosen by data scores at the current weights). Absent: the subnet stays.
     */
    every: z.int().min(1).optional(),
  })
  .strict();
export type LoSiAConfig = z.output<typeof losiaConfigSchema>;
export type LoSiAConfigInput = z.input<typeof losiaConfigSchema>;
