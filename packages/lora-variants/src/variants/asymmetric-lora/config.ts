// The 'asymmetric-lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const asymmetricLoRAConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** How the frozen A is drawn. */
    aInit: z.enum(['uniform', 'orthogonal']).default('uniform'),
  })
  .strict();
export type AsymmetricLoRAConfig = z.output<typeof asymmetricLoRAConfigSchema>;
