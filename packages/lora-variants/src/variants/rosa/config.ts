// The 'rosa' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const rosaConfigSchema = z
  .object({
    /** Rank of the low-rank term. */
    r: z.number().int().positive().default(8),
    /** LoRA scale numerator (scaling alpha / r, or alpha / √r with rslora); S is not scaled. */
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of W's entries in S's support (at least one entry). */
    density: z.number().gt(0).max(1).default(0.01),
    /** Data-free support criterion when no scores are given: largest |W|, or uniformly random. */
    score: z.enum(['magnitude', 'random']).default('magnitude'),
  })
  .strict();
export type RoSAConfig = z.output<typeof rosaConfigSchema>;
export type RoSAConfigInput = z.input<typeof rosaConfigSchema>;
