// The config of sparse fine-tuning as a training method (SparseFineTuner in ./tfjs.ts): what a recipe
// gives, validated before any work starts.
import { z } from 'zod';
import { istConfigSchema } from './ist.js';
import { LOTTERY_BUDGETS } from './lottery.js';

/** Sparse fine-tuning (SpIEL-style): a trainable delta on a random support of each targeted weight, Adam on its values only. */
export const sftConfigSchema = z.strictObject({
  /** Fraction of each weight's entries trained. */
  density: z.number().gt(0).max(1).default(0.01),
  /** Drop-and-regrow every this many steps (0: keep the initial support). */
  every: z.int().min(0).default(0),
  /** Fraction of the active entries dropped and regrown by accumulated gradient at each reselection. */
  regrowFraction: z.number().gt(0).max(1).default(0.3),
  weightDecay: z.number().min(0).default(0),
  /**
   * LT-SFT (Ansell et al. 2022): first fine-tune every targeted entry for `steps` steps, then keep the
   * `density` share with the largest |Δ| (one ranking over all targeted weights: budget 'global', the
   * paper's; or per weight: 'layer'), rewind to the weights the stage started from and train only those
   * entries for the stage's `steps`. Replaces the random / scored initial support; no drop-and-regrow.
   */
  lottery: z
    .strictObject({
      steps: z.int('lottery.steps must be an integer').min(1, 'lottery.steps must be at least 1'),
      budget: z.enum(LOTTERY_BUDGETS).default('global'),
    })
    .optional(),
  /**
   * Composable SFT: names of earlier `sft` stages of the run (with merge: false) whose saved deltas are
   * added to the weights before this stage trains, so it trains on θ + Σ Δ and (with merge) leaves
   * θ + Σ Δ + its own Δ.
   */
  compose: z.array(z.string().min(1)).min(1, 'compose needs at least one stage name').optional(),
  /**
   * IST (Yao et al. 2024): each step only the deltas of a sampled subset of the transformer blocks
   * move, drawn by per-block importance scores learned from suppression probes (see ./ist.ts).
   */
  ist: istConfigSchema.optional(),
}).superRefine((c, ctx) => {
  if (c.lottery !== undefined && c.every > 0) ctx.addIssue({ code: 'custom', path: ['every'], message: 'every: drop-and-regrow does not combine with lottery (LT-SFT keeps the ticket fixed); use every: 0' });
});
export type SFTConfig = z.output<typeof sftConfigSchema>;

/**
 * Diff pruning (Guo et al., "Parameter-Efficient Transfer Learning with Diff Pruning") as a training
 * method (DiffPruning in ./tfjs.ts): a dense diff w and a stretched hard-concrete gate per entry, trained
 * with the task loss plus λ times the expected fraction of open gates; the delta kept at the end is
 * ẑ ⊙ w with the deterministic gate, optionally cut to the `density` largest |ẑ ⊙ w| (the paper's
 * magnitude projection to a fixed budget).
 */
export const diffPruningConfigSchema = z.strictObject({
  /** Weight of the L0 penalty, which is the expected fraction of open gates over all targeted entries (so λ does not scale with the model). */
  lambda: z.number().min(0).default(1),
  /** Initial log α of every gate (0 opens a gate with probability about 0.83 at the default stretch). */
  initLogAlpha: z.number().default(0),
  /** Hard-concrete temperature β and stretch interval (γ, ζ). */
  beta: z.number().gt(0).default(2 / 3),
  gamma: z.number().lt(0).default(-0.1),
  zeta: z.number().gt(1).default(1.1),
  /** Keep at most this fraction of each weight's entries in the final delta, the largest |ẑ ⊙ w| (omitted: every entry whose gate is open). */
  density: z.number().gt(0).max(1).optional(),
});
export type DiffPruningConfig = z.output<typeof diffPruningConfigSchema>;
