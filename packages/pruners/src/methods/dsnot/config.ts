import { z } from 'zod';
import { checkPattern, patternFields, withDefaultSparsity } from '../../pattern.js';

/**
 * DSnoT (Zhang et al. 2024, "Dynamic Sparse No Training"): prune-and-grow swaps on top of a sparse layer.
 * The defaults follow the reference implementation, with the threshold rescaled (see updateThreshold). A
 * swap is applied only if it lowers the row's expected error |ε| without raising the variance of its error
 * on the calibration tokens; the first proposal that fails ends the row.
 */
export const dsnotConfigSchema = z
  .strictObject({
    ...patternFields,
    /** The pruner that gives the starting mask when the input has none (the reference's initial_method). */
    initial: z.enum(['wanda', 'magnitude', 'sparsegpt']).default('wanda'),
    /** Most swaps proposed per output row (the reference's max_cycle_time); a row also ends at its first rejected proposal. */
    maxCycles: z.int('maxCycles must be an integer').min(0, 'maxCycles must be non-negative').default(50),
    /**
     * A row stops once its expected error |ε| is at most this. ε is measured per token (input means) here,
     * while the reference sums over 2048-token sequences, so its 0.1 corresponds to about 5e-5.
     */
    updateThreshold: z.number().min(0, 'updateThreshold must be non-negative').default(5e-5),
    /** Regrowth ranks W_ij E[x_j] / Var(x_j)^p (the reference's pow_of_var_regrowing). */
    powerOfVariance: z.number().min(0, 'powerOfVariance must be non-negative').default(1),
    /**
     * Stop a row when a swap would flip the sign of ε (otherwise a flip is allowed when |ε| still falls).
     * Default: on for N:M, off for unstructured, which is what the reference runs (its --without_same_sign
     * flag is always true for unstructured).
     */
    sameSign: z.boolean().optional(),
  })
  .superRefine(checkPattern)
  .transform(withDefaultSparsity);

export type DSnoTConfig = z.output<typeof dsnotConfigSchema>;
export type DSnoTConfigInput = z.input<typeof dsnotConfigSchema>;
