// The 'clover' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const cloverConfigSchema = z
  .object({
    /** Row blocks (attention heads) decomposed separately, for a weight in no coupled group; must divide out. */
    heads: z.number().int().positive().default(1),
    /**
     * When the caller gives the model's coupled groups (sparse-train does): absorb Q with K and V with O
     * per head and train the singular values of those products, as the paper does.
     */
    coupled: z.boolean().default(true),
  })
  .strict();
export type CLOVERConfig = z.output<typeof cloverConfigSchema>;
