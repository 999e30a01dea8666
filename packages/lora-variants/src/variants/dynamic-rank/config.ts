// The 'dynamic-rank' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const dynamicRankConfigSchema = z
  .object({
    /** Rank at attach time (the most any layer can keep). */
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
  })
  .strict();
export type DynamicRankConfig = z.output<typeof dynamicRankConfigSchema>;
