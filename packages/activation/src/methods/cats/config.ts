import { z } from 'zod';
import { rolesField, sparsityField } from '../common.js';

/**
 * CATS: one magnitude threshold per site, the `sparsity`-quantile of |a| over the calibration activations;
 * applying it zeroes |a| < threshold, so about a `sparsity` fraction of activations from the same
 * distribution is dropped.
 */
export const catsConfigSchema = z.strictObject({
  /** Target fraction of activations zeroed, in [0, 1) (default 0.5). */
  sparsity: sparsityField('sparsity').default(0.5),
  /** Site roles acted on (default the MLP activation: the activated gate of a gated MLP). */
  roles: rolesField(['mlp.act']),
});

export type CatsConfig = z.output<typeof catsConfigSchema>;
export type CatsConfigInput = z.input<typeof catsConfigSchema>;
