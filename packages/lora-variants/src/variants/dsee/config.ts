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
     * DSEE's second half, sparsity of the final weight: the merge writes W + ΔW pruned to `sparsity` of the
     * layer's entries (inside the base mask; a base already that sparse loses nothing more) and the layer's
     * mask becomes what it kept. unstructured: the largest |W + ΔW| stay (one-shot magnitude pruning);
     * rows: whole output rows go, those with the smallest ℓ1 norm of W + ΔW. Absent: the merge keeps the
     * base's mask. A pruned merge cannot be undone (no unmerge).
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
