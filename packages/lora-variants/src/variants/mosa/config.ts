// The 'mosa' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { bottleneckFields } from '../sparse-adapter/bottleneck.js';

export const mosaConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** K: sparse modules per factor (each needs at least one entry of A and of B). */
    modules: z.number().int().min(1).default(4),
    ...bottleneckFields,
  })
  .strict();
export type MoSAConfig = z.output<typeof mosaConfigSchema>;
export type MoSAConfigInput = z.input<typeof mosaConfigSchema>;
