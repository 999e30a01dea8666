// The 'lora-sb' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { matrixField } from '../helpers/family.js';

export const loraSBConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    /** ∂L/∂W [out, in] from a few calibration batches; required by init, not kept in the state. */
    gradient: matrixField.optional(),
    /** η of the approximated SGD step −η G. */
    stepSize: z.number().positive().default(1),
    /** Start at the approximated first step (R₀ = 0) instead of leaving the forward unchanged. */
    firstStep: z.boolean().default(false),
  })
  .strict();
export type LoRASBConfig = z.output<typeof loraSBConfigSchema>;
export type LoRASBConfigInput = z.input<typeof loraSBConfigSchema>;
