// The 'snell' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const snellConfigSchema = z
  .object({
    /** Dimension of each row's and column's kernel vector. */
    dim: z.number().int().positive().default(4),
    /** Fraction of K's entries zeroed by the competition (with `allocate`: the average over the layers). */
    sparsity: z.number().min(0).lt(1).default(0.9),
    /** The distance's norm: 1 or 2. */
    p: z.union([z.literal(1), z.literal(2)]).default(2),
    /** Coefficient of the head difference. */
    scale: z.number().positive().default(0.1),
    /**
     * How the factors start. zero: head 1 a copy of head 0, so K = 0 and the adapter starts as the identity
     * (the library's contract for a fresh adapter); random: the paper's init, every head's factors drawn
     * independently, U(±1/√(n · dim)) with n the rows (out) or columns (in) they index, so K ≠ 0 at the start.
     */
    init: z.enum(['zero', 'random']).default('zero'),
    /**
     * Bi-level competition (the SNELL authors' follow-up): in training, the layers compete for one budget of
     * kept entries, Σ_l round((1 − sparsity) · n_l). Every `every` steps each layer's share is set in proportion
     * to its importance, the mean over its factors of s̄ · ū (s̄ an EMA (beta1) of the sensitivity |θ · ∂L/∂θ|,
     * ū an EMA (beta2) of |s − s̄|), at least one entry and at most all of a layer; within a layer the
     * largest |K| survive as before. Absent: every layer keeps its own (1 − sparsity) share.
     * initialSparsity (optional, at most sparsity): the follow-up's shrinking budget, every layer starting at
     * this level and the budget's level following the cubic ramp from it to `sparsity` between the fractions
     * scheduleStart and scheduleEnd of the run (held after); absent, the budget is the target throughout.
     */
    allocate: z
      .object({
        every: z.number().int().positive().default(10),
        beta1: z.number().gt(0).lt(1).default(0.85),
        beta2: z.number().gt(0).lt(1).default(0.85),
        initialSparsity: z.number().min(0).lt(1).optional(),
        scheduleStart: z.number().min(0).max(1).default(0.1),
        scheduleEnd: z.number().min(0).max(1).default(0.7),
      })
      .strict()
      .optional(),
  })
  .strict();
export type SNELLConfig = z.output<typeof snellConfigSchema>;
export type SNELLConfigInput = z.input<typeof snellConfigSchema>;
