import { z } from 'zod';
import { DENSE_LINEAR_ROLES, rolesField, sparsityField } from '../common.js';

/**
 * R-Sparse: per token, the input channels of largest |x| go through the full weight (the sparse part) and
 * the dropped ones through a rank-r approximation of the weight from its SVD (the low-rank part). Give the
 * rank as `rank` (clamped to min(in, out)) or as `lowRankFraction` of min(in, out); neither means 0.1.
 */
export const rSparseConfigSchema = z
  .strictObject({
    /** Fraction of each token's input channels left to the low-rank part, in [0, 1) (default 0.5). */
    sparsity: sparsityField('sparsity').default(0.5),
    /** Rank of the correction (0: no correction; clamped to min(in, out)). */
    rank: z.int('rank must be an integer').min(0, 'rank must be >= 0').optional(),
    /** Rank as a fraction of min(in, out), rounded (default 0.1 when rank is not given). */
    lowRankFraction: z.number().min(0, 'lowRankFraction must be in [0, 1]').max(1, 'lowRankFraction must be in [0, 1]').optional(),
    /** Site roles acted on (default the inputs of every dense linear layer). */
    roles: rolesField(DENSE_LINEAR_ROLES),
  })
  .refine((c) => c.rank === undefined || c.lowRankFraction === undefined, { message: 'give either rank or lowRankFraction, not both', path: ['rank'] })
  .transform((c) => (c.rank === undefined && c.lowRankFraction === undefined ? { ...c, lowRankFraction: 0.1 } : c));

export type RSparseConfig = z.output<typeof rSparseConfigSchema>;
export type RSparseConfigInput = z.input<typeof rSparseConfigSchema>;
