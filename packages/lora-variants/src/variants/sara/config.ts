// The 'sara' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const saraConfigSchema = z
  .object({
    /** Fraction of W's entries trained: those with the smallest |W| among its nonzeros. */
    density: z.number().gt(0).max(1).default(0.1),
  })
  .strict();
export type SaRAConfig = z.output<typeof saraConfigSchema>;
export type SaRAConfigInput = z.input<typeof saraConfigSchema>;
