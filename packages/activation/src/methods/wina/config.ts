import { z } from 'zod';
import { DENSE_LINEAR_ROLES, rolesField, sparsityField } from '../common.js';

/**
 * WINA: per token, keep the input channels with the largest |x_j| * ||W_{:,j}||_2 (the size of the
 * channel's contribution to the layer's output, up to the direction of its column). Every acted-on layer
 * at `sparsity`, or with `greedy` the per-layer levels TEAL's greedy allocation picks (steps of `step`,
 * by each layer's output error under WINA's selection) to meet `sparsity` as a parameter-weighted average.
 */
export const winaConfigSchema = z.strictObject({
  /** Fraction of each token's input channels zeroed, in [0, 1) (default 0.5). */
  sparsity: sparsityField('sparsity').default(0.5),
  /** Allocate per-layer levels greedily (needs the calibration activations) instead of one level for all. */
  greedy: z.boolean().default(false),
  /** Increment of the greedy allocation (default 0.05). */
  step: z.number().gt(0, 'step must be in (0, 1)').lt(1, 'step must be in (0, 1)').default(0.05),
  /** Site roles acted on (default the inputs of every dense linear layer). */
  roles: rolesField(DENSE_LINEAR_ROLES),
});

export type WinaConfig = z.output<typeof winaConfigSchema>;
export type WinaConfigInput = z.input<typeof winaConfigSchema>;
