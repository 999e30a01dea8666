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

/** Global magnitude: one |W| ranking across every layer of a model (`globalMagnitudeMasks`), so layers with many small weights lose more. */
export const globalMagnitudeConfigSchema = z.strictObject({
  sparsity: z.number().min(0).lt(1, 'sparsity must be in [0, 1)').default(0.5),
});
export type GlobalMagnitudeConfig = z.output<typeof globalMagnitudeConfigSchema>;
