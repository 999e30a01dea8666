// The 'null-lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { calibrationFields } from '../helpers/family.js';

export const nullLoRAConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    /** Whose null space: W's own or the calibration inputs' (then covariance or inputs is required). */
    space: z.enum(['weight', 'inputs']).default('weight'),
    ...calibrationFields,
  })
  .strict();
export type NullLoRAConfig = z.output<typeof nullLoRAConfigSchema>;
export type NullLoRAConfigInput = z.input<typeof nullLoRAConfigSchema>;
