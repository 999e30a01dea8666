// The 'lora-dropout' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const loraDropoutConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Probability of dropping each input column of A and each output row of B while training. */
    p: z.number().min(0).lt(1).default(0.1),
    /** Seed of the masks drawn by the tfjs form. */
    seed: z.number().int().default(0),
  })
  .strict();
export type LoRADropoutConfig = z.output<typeof loraDropoutConfigSchema>;
