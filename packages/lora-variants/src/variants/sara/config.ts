// The 'sara' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const saraConfigSchema = z
  .object({
    /** Fraction of W's entries trained: those with the smallest |W| among its nonzeros. */
    density: z.number().gt(0).max(1).default(0.1),
    /**
     * Weight λ of the nuclear-norm penalty: in training, λ · Σ_layers ‖ΔW‖_* is added to the loss (the
     * tfjs form's `loss` hook), so the learned sparse update stays low rank. 0: no penalty.
     */
    lambda: z.number().min(0).default(0),
    /**
     * Progressive re-selection: after this fraction of the run's steps (before step floor(reselectAt · steps) + 1),
     * the trained values go into the weight and a fresh zero update starts on the entries that are now the
     * smallest |W + ΔW|, with fresh optimizer moments. Absent: the support stays.
     */
    reselectAt: z.number().gt(0).lt(1).optional(),
  })
  .strict();
export type SaRAConfig = z.output<typeof saraConfigSchema>;
export type SaRAConfigInput = z.input<typeof saraConfigSchema>;
