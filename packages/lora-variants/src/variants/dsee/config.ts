// The 'dsee' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const dseeConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of W's entries in the sparse residual's support Ω. */
    density: z.number().gt(0).max(1).default(0.01),
    /** Rank of the low-rank part L removed from W before Ω is chosen by |W − L|. */
    decompositionRank: z.number().int().nonnegative().default(8),
    /**
     * DSEE's second half, sparsity of the final weight: the merge writes W + ΔW pruned inside the base mask
     * and the layer's mask becomes what it kept. unstructured: the round((1 − sparsity) · out · in) largest
     * |W + ΔW| stay (one-shot magnitude pruning; a base already that sparse loses nothing more); rows: the
     * round(sparsity · out) output rows of smallest ℓ1 norm of W + ΔW go whole, on top of the base's zeros.
     * Absent: the merge keeps the base's mask. A pruned merge cannot be undone (no unmerge).
     */
    prune: z
      .object({
        sparsity: z.number().gt(0).lt(1),
        structure: z.enum(['unstructured', 'rows']).default('unstructured'),
      })
      .strict()
      .optional(),
  })
  .strict();
export type DSEEConfig = z.output<typeof dseeConfigSchema>;
export type DSEEConfigInput = z.input<typeof dseeConfigSchema>;
