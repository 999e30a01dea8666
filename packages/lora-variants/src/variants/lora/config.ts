// The 'lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const loraConfigSchema = z.object({
  /** Rank of the update. */
  r: z.number().int().positive().default(8),
  /** Scale numerator (PEFT's lora_alpha). */
  alpha: z.number().positive().default(8),
  /** rsLoRA: scale by alpha / √r instead of alpha / r. */
  rslora: z.boolean().default(false),
  /** Dropout on the adapter's input while training (PEFT's lora_dropout); not part of ΔW. */
  dropout: z.number().min(0).lt(1).default(0),
})
  // Strict: a misspelt key (say `rank`) is an error naming it, not a silently ignored option.
  .strict();
export type LoRAConfig = z.output<typeof loraConfigSchema>;
export type LoRAConfigInput = z.input<typeof loraConfigSchema>;
