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

/**
 * CLOVER's pruning of an attention's absorbed products (`cloverPrune`): per head keep `rank` singular
 * values, or the fewest whose squares reach `energy` of the total. Exactly one of the two.
 */
export const cloverPruneConfigSchema = z
  .object({
    rank: z.number().int().min(0).optional(),
    energy: z.number().gt(0).max(1).optional(),
  })
  .strict()
  .refine((c) => (c.rank === undefined) !== (c.energy === undefined), { message: 'give exactly one of rank and energy', path: ['rank'] });
export type CLOVERPruneConfig = z.output<typeof cloverPruneConfigSchema>;
