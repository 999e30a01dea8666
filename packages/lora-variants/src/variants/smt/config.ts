// The 'smt' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const smtConfigSchema = z
  .object({
    /** Side of the square sub-matrices; must divide both out and in. */
    blockSize: z.number().int().positive().default(64),
    /** How many blocks train. */
    blocks: z.number().int().positive().default(1),
    /** Data-free criterion when no scores are given. */
    score: z.enum(['magnitude', 'random']).default('magnitude'),
  })
  .strict();
export type SMTConfig = z.output<typeof smtConfigSchema>;
export type SMTConfigInput = z.input<typeof smtConfigSchema>;
