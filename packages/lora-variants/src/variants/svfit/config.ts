// The 'svfit' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const svfitConfigSchema = z
  .object({
    /** How many of the largest singular values train. */
    r: z.number().int().positive().default(8),
  })
  .strict();
export type SVFitConfig = z.output<typeof svfitConfigSchema>;
