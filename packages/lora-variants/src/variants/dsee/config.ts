// The 'dsee' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const dseeConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of W's entries in the sparse residual's support Ω. */
    density: z.number().gt(0).max(1).default(0.01),
    /** Rank of the low-rank part L removed from W before Ω is chosen by |W − L|. */
    decompositionRank: z.number().int().nonnegative().default(8),
  })
  .strict();
export type DSEEConfig = z.output<typeof dseeConfigSchema>;
export type DSEEConfigInput = z.input<typeof dseeConfigSchema>;
