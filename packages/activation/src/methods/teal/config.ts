import { z } from 'zod';
import { DENSE_LINEAR_ROLES, rolesField, sparsityField } from '../common.js';

/**
 * TEAL: a magnitude threshold on the input of every linear layer, each the level-quantile of that input's
 * |x| on calibration data. The levels meet a model-wide `sparsity`: equal at every site (`uniform`), or
 * chosen greedily in steps of `step` where raising a level costs the least output error per unit of work.
 */
export const tealConfigSchema = z.strictObject({
  /** Target parameter-weighted average sparsity of the acted-on inputs, in [0, 1) (default 0.5). */
  sparsity: sparsityField('sparsity').default(0.5),
  /** Increment of the greedy search (default 0.05). */
  step: z.number().gt(0, 'step must be in (0, 1)').lt(1, 'step must be in (0, 1)').default(0.05),
  /** Every site at level = sparsity instead of the greedy allocation (needs no weights). */
  uniform: z.boolean().default(false),
  /**
   * Which sites compete for the budget: 'model' (default: every acted-on site, the target met by the model
   * as a whole) or 'block' (the greedy runs per transformer block, each block meeting the target).
   */
  scope: z.enum(['model', 'block']).default('model'),
  /** Site roles acted on (default the inputs of every dense linear layer: attention q/k/v/qkv and out, MLP up/gate/down). */
  roles: rolesField(DENSE_LINEAR_ROLES),
});

export type TealConfig = z.output<typeof tealConfigSchema>;
export type TealConfigInput = z.input<typeof tealConfigSchema>;
