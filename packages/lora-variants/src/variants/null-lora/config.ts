// The 'null-lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { calibrationFields } from '../shared/family.js';

export const nullLoraConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    /** Whose null space: W's own or the calibration inputs' (then covariance or inputs is required). */
    space: z.enum(['weight', 'inputs']).default('weight'),
    ...calibrationFields,
  })
  .strict();
export type NullLoraConfig = z.output<typeof nullLoraConfigSchema>;
export type NullLoraConfigInput = z.input<typeof nullLoraConfigSchema>;
