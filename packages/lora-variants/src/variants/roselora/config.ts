// The 'roselora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const roseloraConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of each row of A (of the `in` inputs) kept (at least one entry). */
    densityA: z.number().gt(0).max(1).default(0.1),
    /** Fraction of each column of B (of the `out` outputs) kept (at least one entry). */
    densityB: z.number().gt(0).max(1).default(0.1),
  })
  .strict();
export type RoseLoRAConfig = z.output<typeof roseloraConfigSchema>;
export type RoseLoRAConfigInput = z.input<typeof roseloraConfigSchema>;
