import { z } from 'zod';
import { checkPattern, patternFields, withDefaultSparsity } from '../../pattern.js';

/** Magnitude pruning: keep the largest |W|, per layer ('tensor') or per output row ('row'). */
export const magnitudeConfigSchema = z
  .strictObject({
    ...patternFields,
    /** Where the unstructured comparison happens: the whole layer (default, as in the Wanda paper's baseline) or each output row. */
    granularity: z.enum(['tensor', 'row']).default('tensor'),
  })
  .superRefine(checkPattern)
  .transform(withDefaultSparsity);

export type MagnitudeConfig = z.output<typeof magnitudeConfigSchema>;
export type MagnitudeConfigInput = z.input<typeof magnitudeConfigSchema>;
