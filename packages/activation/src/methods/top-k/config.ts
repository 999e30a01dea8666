import { z } from 'zod';
import { rolesField, sparsityField } from '../common.js';

/**
 * Top-k per token ("lazy neuron" activation sparsity): every token keeps its k largest |x| at each site it
 * acts on. Give either `sparsity` (k = round((1 - sparsity) * features)) or `k` (clamped to the features);
 * neither means sparsity 0.5.
 */
export const topKConfigSchema = z
  .strictObject({
    /** Fraction of each token's features zeroed, in [0, 1). */
    sparsity: sparsityField('sparsity').optional(),
    /** Features kept per token (a count; at most the site's features are kept). */
    k: z.int('k must be an integer').min(1, 'k must be at least 1').optional(),
    /** Site roles acted on (default the MLP activation). */
    roles: rolesField(['mlp.act']),
  })
  .refine((c) => c.sparsity === undefined || c.k === undefined, { message: 'give either sparsity or k, not both', path: ['k'] })
  .transform((c) => (c.k === undefined && c.sparsity === undefined ? { ...c, sparsity: 0.5 } : c));

export type TopKConfig = z.output<typeof topKConfigSchema>;
export type TopKConfigInput = z.input<typeof topKConfigSchema>;
