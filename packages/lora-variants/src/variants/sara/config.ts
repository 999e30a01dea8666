// The 'sara' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const saraConfigSchema = z
  .object({
    /** Fraction of W's entries trained: those with the smallest |W| among its nonzeros. */
    fraction: z.number().gt(0).max(1).default(0.1),
  })
  .strict();
export type SaraConfig = z.output<typeof saraConfigSchema>;
export type SaraConfigInput = z.input<typeof saraConfigSchema>;
