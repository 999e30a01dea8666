// The 'spectral-adapter' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const spectralAdapterConfigSchema = z
  .object({
    /** How many of the top singular vector pairs are tuned. */
    r: z.number().int().positive().default(8),
  })
  .strict();
export type SpectralAdapterConfig = z.output<typeof spectralAdapterConfigSchema>;
