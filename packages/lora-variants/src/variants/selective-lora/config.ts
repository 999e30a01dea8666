// The 'selective-lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const selectiveLoRAConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    /** Rank blocks, each with one gate; must divide r. */
    blocks: z.number().int().positive().default(1),
    /** Initial gate value (the block is on while its gate is > 0). */
    gateInit: z.number().default(1),
  })
  .strict();
export type SelectiveLoRAConfig = z.output<typeof selectiveLoRAConfigSchema>;
