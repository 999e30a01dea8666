// The 'clover' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const cloverConfigSchema = z
  .object({
    /** Row blocks (attention heads) decomposed separately; must divide out. */
    heads: z.number().int().positive().default(1),
  })
  .strict();
export type CLOVERConfig = z.output<typeof cloverConfigSchema>;
