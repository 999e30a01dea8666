// The 'spp' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const sppConfigSchema = z.object({
  /** Initial value of every column scale v (u starts at 0, so ΔW starts at 0 whatever this is). */
  colInit: z.number().default(1),
})
  // Strict, like LoRA's: unknown keys are errors.
  .strict();
export type SPPConfig = z.output<typeof sppConfigSchema>;
export type SPPConfigInput = z.input<typeof sppConfigSchema>;
