// The 'lors' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const lorsConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
  })
  .strict();
export type LoRSConfig = z.output<typeof lorsConfigSchema>;
export type LoRSConfigInput = z.input<typeof lorsConfigSchema>;
