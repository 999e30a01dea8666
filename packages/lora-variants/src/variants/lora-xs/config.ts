// The 'lora-xs' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const loraXSConfigSchema = z
  .object({
    /** Rank: the number of singular triplets of W kept as frozen factors. */
    r: z.number().int().positive().default(8),
  })
  .strict();
export type LoRAXSConfig = z.output<typeof loraXSConfigSchema>;
