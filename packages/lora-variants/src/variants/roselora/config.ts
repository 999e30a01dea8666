// The 'roselora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const roseloraConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of each row of A (of the `in` inputs) kept (at least one entry). */
    keepA: z.number().gt(0).max(1).default(0.1),
    /** Fraction of each column of B (of the `out` outputs) kept (at least one entry). */
    keepB: z.number().gt(0).max(1).default(0.1),
  })
  .strict();
export type RoseloraConfig = z.output<typeof roseloraConfigSchema>;
export type RoseloraConfigInput = z.input<typeof roseloraConfigSchema>;
