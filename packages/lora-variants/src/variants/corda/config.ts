// The 'corda' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';
import { calibrationFields } from '../helpers/family.js';

export const cordaConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    mode: z.enum(['instruction-previewed', 'knowledge-preserved']).default('instruction-previewed'),
    ...calibrationFields,
    /** Ridge added to C's diagonal, relative to its mean diagonal entry. */
    damping: z.number().positive().default(1e-4),
  })
  .strict();
export type CorDAConfig = z.output<typeof cordaConfigSchema>;
export type CorDAConfigInput = z.input<typeof cordaConfigSchema>;
