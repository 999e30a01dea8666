// The 'roselora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const roseloraConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /** Fraction of each row of A (of the `in` inputs) kept (at least one entry). */
    densityA: z.number().gt(0).max(1).default(0.1),
    /** Fraction of each column of B (of the `out` outputs) kept (at least one entry). */
    densityB: z.number().gt(0).max(1).default(0.1),
    /**
     * How the supports are chosen. 'sensitivity' (the paper's): top-k of the smoothed sensitivity
     * Ī ← β Ī + (1 − β) |θ · ∂L/∂θ|, recomputed by the training hooks on the cubic schedule below and
     * kept in the state's indices (dense until the schedule starts). 'magnitude': top-k |θ|, re-selected
     * from the current values at every use (no schedule, no training state).
     */
    selection: z.enum(['sensitivity', 'magnitude']).default('sensitivity'),
    /** EMA factor β of the sensitivity (sensitivity selection). */
    beta: z.number().min(0).lt(1).default(0.85),
    /** Fraction of the run before the schedule starts pruning (dense until then). */
    scheduleStart: z.number().min(0).max(1).default(0.1),
    /** Fraction of the run at which the target densities are reached (fixed supports after). */
    scheduleEnd: z.number().min(0).max(1).default(0.7),
    /** Re-select every this many steps between scheduleStart and scheduleEnd (and at scheduleEnd). */
    scheduleEvery: z.number().int().positive().default(1),
  })
  .strict()
  .refine((c) => c.scheduleStart < c.scheduleEnd, { message: 'scheduleStart must be below scheduleEnd', path: ['scheduleEnd'] });
export type RoseLoRAConfig = z.output<typeof roseloraConfigSchema>;
export type RoseLoRAConfigInput = z.input<typeof roseloraConfigSchema>;
