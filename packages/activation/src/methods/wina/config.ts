import { z } from 'zod';
import { DENSE_LINEAR_ROLES, rolesField, sparsityField } from '../common.js';

/**
 * WINA: per token, keep the input channels with the largest |x_j| * ||W_{:,j}||_2 (the size of the
 * channel's contribution to the layer's output, up to the direction of its column), at one `sparsity` for
 * every acted-on layer.
 */
export const winaConfigSchema = z.strictObject({
  /** Fraction of each token's input channels zeroed, in [0, 1) (default 0.5). */
  sparsity: sparsityField('sparsity').default(0.5),
  /** Site roles acted on (default the inputs of every dense linear layer). */
  roles: rolesField(DENSE_LINEAR_ROLES),
});

export type WinaConfig = z.output<typeof winaConfigSchema>;
export type WinaConfigInput = z.input<typeof winaConfigSchema>;
