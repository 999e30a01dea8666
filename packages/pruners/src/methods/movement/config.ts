// First-order pruning while training: the configs of movement pruning (Sanh et al. 2020, "Movement
// Pruning: Adaptive Sparsity by Fine-Tuning") and Static Model Pruning (Jiang et al. 2022, "Pruning
// Pre-trained Language Models Without Fine-Tuning"), and SMP's split of a kept count over the matrices
// of one kind. The scores themselves are @sparse/masks' MovementAccumulator: S = −Σ_t α_t (∂L/∂W')_t ⊙ W_t,
// W' = W ⊙ M the weight the forward pass uses (a straight-through estimator: pruned entries score too).

import { ArgumentError } from '@sparse/tensor';
import { cubicScheduleSchema } from '@sparse/masks/schemas';
import { z } from 'zod';
import { fraction, sparsityNumber } from '../magnitude/gradual.js';

/** 'hard': top-v of the scores on the cubic sparsity schedule; 'soft': a threshold on σ(S) with an L1 penalty on σ(S). */
export const MOVEMENT_VARIANTS = ['hard', 'soft'] as const;
export type MovementVariant = (typeof MOVEMENT_VARIANTS)[number];

/** How the kept count is split over the targeted layers: 'layer' (each at the schedule's sparsity) or 'global' (one ranking of the scores). */
export const MOVEMENT_BUDGETS = ['layer', 'global'] as const;
export type MovementBudget = (typeof MOVEMENT_BUDGETS)[number];

/** Defaults of the fields only one variant has (written out by the schema). */
export const MOVEMENT_DEFAULTS = { sparsity: 0.9, initialSparsity: 0, budget: 'layer' as MovementBudget, threshold: 0.1, lambda: 3e-4, scoreScale: 1000 };

const every = cubicScheduleSchema.shape.every.unwrap();

/** The cubic ramp of a stage: `start` and `end` as fractions of its steps, masks recomputed every `every` steps. */
const rampFields = {
  /** Fraction of the stage's steps done when the ramp starts: [0, 1). */
  start: fraction('start', 'closed', 'open').default(0),
  /** Fraction of the stage's steps done when the ramp reaches its final value: (0, 1]. */
  end: fraction('end', 'open', 'closed').default(0.75),
  /** Steps between mask updates, from ⌊start · steps⌋ to the end of the stage. */
  every: every.default(10),
};

/** zod's numbers are finite: Infinity is refused with the field's message. */
const nonNegative = (name: string) => {
  const error = `${name} must be a finite number >= 0`;
  return z.number({ error }).min(0, { error });
};
const positive = (name: string) => {
  const error = `${name} must be a finite number > 0`;
  return z.number({ error }).gt(0, { error });
};
const sigmoidThreshold = z.number({ error: 'threshold must be a number in (0, 1) (a threshold on σ(S))' }).gt(0, { error: 'threshold must be a number in (0, 1) (a threshold on σ(S))' }).lt(1, { error: 'threshold must be a number in (0, 1) (a threshold on σ(S))' });

const HARD_ONLY = ['sparsity', 'initialSparsity', 'budget'] as const;
const SOFT_ONLY = ['threshold', 'lambda', 'scoreScale'] as const;

/**
 * Movement pruning during a training stage of S steps. Every step, each targeted layer's score S gains
 * −α (∂L/∂W') ⊙ W, W' = W ⊙ M the weight of the forward pass (straight-through: a pruned entry keeps
 * scoring with the value it had when it was pruned, and can come back).
 *
 * - `variant: 'hard'` (default): the masks are the top-v of S, v = round((1 − s_t) · size) per layer
 *   ('layer') or over all targeted entries ('global'), s_t on the cubic ramp from `initialSparsity` at
 *   ⌊start · S⌋ to `sparsity` at max(⌊start · S⌋ + 1, ⌊end · S⌋), recomputed every `every` steps from the
 *   ramp's start to the end of the stage; the stage ends at exactly `sparsity`.
 * - `variant: 'soft'`: M = 1(σ(S) > τ_t), τ_t on the same cubic ramp from 0 to `threshold`, and S also
 *   descends the penalty λ_t Σ σ(S) (λ_t = λ · τ_t / threshold): S ← S − α (W ⊙ ∂L/∂W' + λ_t σ(S)(1 − σ(S)))
 *   each step, α = `scoreScale`; a layer keeps at least ⌊0.005 · size⌋ + 1 entries. The final sparsity is
 *   whatever the threshold reaches.
 */
export const movementConfigSchema = z
  .strictObject({
    variant: z.enum(MOVEMENT_VARIANTS, { error: "variant must be 'hard' or 'soft'" }).default('hard'),
    /** hard: the final sparsity (pruned fraction), default 0.9. */
    sparsity: sparsityNumber('sparsity').optional(),
    /** hard: the sparsity at the ramp's start, default 0. */
    initialSparsity: sparsityNumber('initialSparsity').optional(),
    /** hard: 'layer' (default) or 'global'. */
    budget: z.enum(MOVEMENT_BUDGETS, { error: "budget must be 'layer' or 'global'" }).optional(),
    /** soft: the final threshold τ on σ(S), default 0.1. */
    threshold: sigmoidThreshold.optional(),
    /** soft: the penalty weight λ on Σ σ(S) per entry, default 3e-4. */
    lambda: nonNegative('lambda').optional(),
    /**
     * soft: α, the step of the scores (each step's −W ⊙ ∂L/∂W' and penalty gradient times α), default 1000: for
     * the trainer's small GPTs W ⊙ ∂L/∂W' is of order 1e-5 per step, so this brings S to order 1 in a few hundred steps.
     */
    scoreScale: positive('scoreScale').optional(),
    ...rampFields,
  })
  .refine((c) => c.end > c.start, { error: 'end must be after start', path: ['end'] })
  .superRefine((c, ctx) => {
    const other = c.variant === 'hard' ? SOFT_ONLY : HARD_ONLY;
    for (const k of other) {
      if (c[k] !== undefined) ctx.addIssue({ code: 'custom', message: `${k} is a field of variant '${c.variant === 'hard' ? 'soft' : 'hard'}' (variant is '${c.variant}')`, path: [k] });
    }
  })
  .transform((c) =>
    c.variant === 'hard'
      ? {
          variant: 'hard' as const,
          sparsity: c.sparsity ?? MOVEMENT_DEFAULTS.sparsity,
          initialSparsity: c.initialSparsity ?? MOVEMENT_DEFAULTS.initialSparsity,
          budget: c.budget ?? MOVEMENT_DEFAULTS.budget,
          start: c.start,
          end: c.end,
          every: c.every,
        }
      : {
          variant: 'soft' as const,
          threshold: c.threshold ?? MOVEMENT_DEFAULTS.threshold,
          lambda: c.lambda ?? MOVEMENT_DEFAULTS.lambda,
          scoreScale: c.scoreScale ?? MOVEMENT_DEFAULTS.scoreScale,
          start: c.start,
          end: c.end,
          every: c.every,
        },
  )
  .refine((c) => c.variant !== 'hard' || c.initialSparsity <= c.sparsity, { error: 'initialSparsity must not exceed sparsity', path: ['initialSparsity'] });
export type MovementConfig = z.output<typeof movementConfigSchema>;
export type HardMovementConfig = Extract<MovementConfig, { variant: 'hard' }>;
export type SoftMovementConfig = Extract<MovementConfig, { variant: 'soft' }>;
export type MovementConfigInput = z.input<typeof movementConfigSchema>;

/** SMP-S ('global', the paper's masking function) or SMP-L ('local': every layer at the schedule's sparsity). */
export const SMP_MASKINGS = ['global', 'local'] as const;
export type SMPMasking = (typeof SMP_MASKINGS)[number];

/**
 * Static Model Pruning during a stage of S steps: the weights stay as they are and only the scores learn,
 * S ← S − lr_t (W ⊙ ∂L/∂W' + λ_t ∂R/∂S) each step with the stage's learning-rate schedule lr_t, R =
 * (1/N) Σ_l mean σ(S_l) over the N targeted layers (the paper's L1 penalty on σ(S)), λ_t = λ · ρ_t with ρ_t
 * the cubic ramp's progress in [0, 1]. The masks are top-v of S, v from the cubic ramp from `initialSparsity`
 * to `sparsity` (as in gmp), recomputed every `every` steps from the ramp's start to the end of the stage.
 * 'global' (SMP-S): the layers of one kind (role, e.g. every block's attention output) share
 * keepCount(their entries, s_t), split by smpLayerKeeps in proportion to size · mean σ(S_l); 'local'
 * (SMP-L): each layer keeps keepCount(size, s_t). The stage ends at exactly `sparsity` over each kind.
 */
export const smpConfigSchema = z
  .strictObject({
    /** The final sparsity (pruned fraction), default 0.9. */
    sparsity: sparsityNumber('sparsity').default(0.9),
    initialSparsity: sparsityNumber('initialSparsity').default(0),
    ...rampFields,
    masking: z.enum(SMP_MASKINGS, { error: "masking must be 'global' or 'local'" }).default('global'),
    /** λ of the penalty λ_t R(S), default 0 (none). */
    lambda: nonNegative('lambda').default(0),
  })
  .refine((c) => c.end > c.start, { error: 'end must be after start', path: ['end'] })
  .refine((c) => c.initialSparsity <= c.sparsity, { error: 'initialSparsity must not exceed sparsity', path: ['initialSparsity'] });
export type SMPConfig = z.output<typeof smpConfigSchema>;
export type SMPConfigInput = z.input<typeof smpConfigSchema>;

/**
 * SMP-S's split of `keep` entries over the matrices of one kind: matrix l gets density proportional to
 * its weight (SMP: the mean of σ(S_l)), i.e. a real quota q_l = keep · w_l · n_l / Σ w · n, never above
 * n_l (a full matrix's excess goes to the others in proportion, as often as needed); quotas are rounded
 * by largest remainder (ties to the earlier matrix), so the counts sum to exactly `keep`. All weights 0:
 * proportional to size.
 */
export function smpLayerKeeps(layers: readonly { size: number; weight: number }[], keep: number): number[] {
  const where = 'smpLayerKeeps';
  if (!Array.isArray(layers) || layers.length === 0) throw new ArgumentError(`${where}: layers must be a non-empty array`);
  layers.forEach((l, i) => {
    if (!Number.isSafeInteger(l?.size) || l.size < 0) throw new ArgumentError(`${where}: layers[${i}].size must be a non-negative integer, got ${String(l?.size)}`);
    if (typeof l.weight !== 'number' || !Number.isFinite(l.weight) || l.weight < 0) throw new ArgumentError(`${where}: layers[${i}].weight must be a finite number >= 0, got ${String(l.weight)}`);
  });
  const sizes = layers.map((l) => l.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (!Number.isSafeInteger(keep) || keep < 0 || keep > total) throw new ArgumentError(`${where}: keep must be an integer in [0, ${total}], got ${String(keep)}`);
  const allZero = layers.every((l) => l.weight === 0 || l.size === 0);
  const w = layers.map((l) => (allZero ? 1 : l.weight));
  const full = layers.map((l) => l.size === 0);
  let quotas: number[];
  for (;;) {
    const fixed = sizes.reduce((a, n, i) => a + (full[i] ? n : 0), 0);
    let divisor = 0;
    for (let i = 0; i < layers.length; i++) if (!full[i]) divisor += w[i]! * sizes[i]!;
    const rest = keep - fixed;
    if (divisor === 0) {
      quotas = sizes.map((n, i) => (full[i] ? n : 0));
      break;
    }
    const q = sizes.map((n, i) => (full[i] ? n : (rest * w[i]! * n) / divisor));
    const over = q.map((x, i) => !full[i] && x > sizes[i]!);
    if (!over.some(Boolean)) {
      quotas = q;
      break;
    }
    over.forEach((o, i) => o && (full[i] = true));
  }
  const out = quotas.map((q, i) => Math.max(0, Math.min(sizes[i]!, Math.floor(q + 1e-9 * Math.max(1, q)))));
  let rest = keep - out.reduce((a, b) => a + b, 0);
  const frac = quotas.map((q, i) => q - out[i]!);
  const order = [...quotas.keys()].sort((a, b) => (rest >= 0 ? frac[b]! - frac[a]! : frac[a]! - frac[b]!) || a - b);
  while (rest !== 0) {
    let moved = false;
    for (const i of order) {
      if (rest > 0 && out[i]! < sizes[i]!) {
        out[i]!++;
        rest--;
        moved = true;
      } else if (rest < 0 && out[i]! > 0) {
        out[i]!--;
        rest++;
        moved = true;
      }
      if (rest === 0) break;
    }
    if (!moved) throw new ArgumentError(`${where}: cannot place ${keep} entries in matrices of sizes [${sizes.join(', ')}]`);
  }
  return out;
}
