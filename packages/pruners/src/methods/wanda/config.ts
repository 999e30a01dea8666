import { z } from 'zod';
import { checkPattern, patternFields, withDefaultSparsity } from '../../pattern.js';

/**
 * Wanda (Sun et al. 2023): score |W_ij| * ||X_j||_2, compared within each output row (the paper's comparison
 * group; 'tensor' compares across the whole layer, the paper's ablation).
 */
export const wandaConfigSchema = z
  .strictObject({
    ...patternFields,
    granularity: z.enum(['row', 'tensor']).default('row'),
  })
  .superRefine(checkPattern)
  .transform(withDefaultSparsity);

export type WandaConfig = z.output<typeof wandaConfigSchema>;
export type WandaConfigInput = z.input<typeof wandaConfigSchema>;
