// @sparse/masks/schemas: config schemas (zod, an optional peer) of the sparsity schedules, SaRA's
// progressive re-selection, the drop-and-regrow schedule of dynamic sparse training and the layer
// budgets, so recipes (gradual magnitude pruning, RigL/SET, ...) validate them before any work starts.
// They refuse exactly what validateSchedule, progressiveStage, dropFractionAt and layerBudgets refuse,
// with a message naming the field, and are stricter in three ways only: unknown keys (a misspelt
// `evrey` is not silently ignored), null for a field with a default (the code's `??` reads it as
// absent) and `erkPowerScale` with a method other than 'erk' (which layerBudgets ignores) are refused.

import { z } from 'zod';
import type { BudgetMethod } from './budgets.js';
import type { SparsitySchedule } from './schedules.js';

/** A number in [min, max] ([min, max) with maxExcluded), with one message for every way to miss it. */
function numberField(error: string, min: number, max = Infinity, maxExcluded = false) {
  const n = z.number({ error }).min(min, { error });
  return max === Infinity ? n : maxExcluded ? n.lt(max, { error }) : n.max(max, { error });
}

/** A sparsity (pruned fraction) in [0, 1): 1 would prune everything. */
const sparsityField = (name: string) => numberField(`${name} must be a number in [0, 1)`, 0, 1, true);

/**
 * A step: a safe integer >= min. The integer test is a refinement rather than z.int(), whose failure
 * aborts the object's own checks, so that `end must be after begin` is reported alongside it.
 */
function stepField(name: string, min = 0) {
  const error = min === 0 ? `${name} must be a non-negative integer` : `${name} must be a positive integer`;
  return z
    .number({ error })
    .min(min, { error })
    .refine((v) => v < min || Number.isSafeInteger(v), { error });
}

const isStep = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** `end` after `begin` (begin defaults to 0), checked whenever both are valid steps. */
function endAfterBegin<S extends z.ZodType<{ begin?: number | undefined; end: number }>>(schema: S): S {
  return schema.refine((c) => c.end > (c.begin ?? 0), {
    error: 'end must be after begin',
    path: ['end'],
    when: ({ value }) => {
      const c = value as { begin?: unknown; end?: unknown };
      return isStep(c.begin ?? 0) && isStep(c.end);
    },
  });
}

const kindField = <K extends SparsitySchedule['kind']>(kind: K) => z.literal(kind, { error: `kind must be '${kind}'` });

/** The same sparsity at every step (a static mask computed at step 0). */
export const constantScheduleSchema = z.strictObject({
  kind: kindField('constant'),
  sparsity: sparsityField('sparsity'),
});

/** `initial` before `step`, `sparsity` from `step` on. */
export const oneShotScheduleSchema = z.strictObject({
  kind: kindField('oneShot'),
  sparsity: sparsityField('sparsity'),
  step: stepField('step'),
  initial: sparsityField('initial').default(0),
});

function rampSchema<K extends 'linear' | 'cubic'>(kind: K) {
  return endAfterBegin(
    z.strictObject({
      kind: kindField(kind),
      initial: sparsityField('initial'),
      final: sparsityField('final'),
      begin: stepField('begin'),
      end: stepField('end'),
      /** Update every this many steps from begin. */
      every: stepField('every', 1).default(1),
    }),
  );
}

/** From `initial` at `begin` to `final` at `end`, linearly, updated every `every` steps. */
export const linearScheduleSchema = rampSchema('linear');

/** Zhu & Gupta's gradual magnitude pruning ramp from `initial` at `begin` to `final` at `end`, updated every `every` steps. */
export const cubicScheduleSchema = rampSchema('cubic');

/** `initial` until the first milestone, then each milestone's sparsity from its step on (steps increasing). */
export const stepScheduleSchema = z.strictObject({
  kind: kindField('step'),
  initial: sparsityField('initial'),
  milestones: z
    .array(
      z.strictObject({ step: stepField('step'), sparsity: sparsityField('sparsity') }, { error: 'a milestone must be an object { step, sparsity }' }),
      { error: 'milestones must be an array' },
    )
    .superRefine(
      (ms, ctx) => {
        let last = -1;
        ms.forEach((m, i) => {
          const t: unknown = (m as { step?: unknown } | undefined)?.step;
          if (!isStep(t)) return;
          if (t <= last) ctx.addIssue({ code: 'custom', message: 'step must be after the previous milestone', path: [i, 'step'] });
          last = t;
        });
      },
      { when: ({ value }) => Array.isArray(value) },
    ),
});

/** A `SparsitySchedule` of `sparsityAt` / `isPruningStep`, told apart by `kind`. */
export const sparsityScheduleSchema = z.discriminatedUnion(
  'kind',
  [constantScheduleSchema, oneShotScheduleSchema, linearScheduleSchema, cubicScheduleSchema, stepScheduleSchema],
  { error: "kind must be 'constant', 'oneShot', 'linear', 'cubic' or 'step'" },
);
export type SparsityScheduleConfig = z.output<typeof sparsityScheduleSchema>;

/** SaRA's progressive re-selection (`progressiveStage` / `isReselectionStep`): increasing steps > 0. */
export const progressiveScheduleSchema = z.strictObject({
  reselectSteps: z
    .array(stepField('reselectSteps'), { error: 'reselectSteps must be an array' })
    .superRefine(
      (steps, ctx) => {
        let last = 0;
        steps.forEach((t: unknown, i) => {
          if (!isStep(t)) return;
          if (t <= last) ctx.addIssue({ code: 'custom', message: 'reselectSteps must be increasing and > 0', path: [i] });
          last = t;
        });
      },
      { when: ({ value }) => Array.isArray(value) },
    ),
});
export type ProgressiveScheduleConfig = z.output<typeof progressiveScheduleSchema>;

/**
 * When and how much dynamic sparse training (SET, RigL, SpIEL) rewires (`dropFractionAt` / `isRegrowStep`):
 * every `every` steps from `begin` while t < `end`, `fraction` of the active entries decaying to 0 at `end`.
 */
export const regrowScheduleSchema = endAfterBegin(
  z.strictObject({
    every: stepField('every', 1),
    begin: stepField('begin').default(0),
    end: stepField('end'),
    /** Fraction of the active entries dropped and regrown (not a sparsity): [0, 1]. */
    fraction: numberField('fraction must be a number in [0, 1]', 0, 1),
    decay: z.enum(['cosine', 'constant'], { error: "decay must be 'cosine' or 'constant'" }).default('cosine'),
  }),
);
export type RegrowScheduleConfig = z.output<typeof regrowScheduleSchema>;

const methodField = <M extends BudgetMethod>(method: M) => z.literal(method, { error: `method must be '${method}'` });

/** Every non-dense layer gets the same density. The default method. */
export const uniformBudgetSchema = z.strictObject({
  method: methodField('uniform').default('uniform'),
});

/** Erdős–Rényi: density proportional to (n_in + n_out) / (n_in n_out) over a layer's last two dimensions. */
export const erBudgetSchema = z.strictObject({
  method: methodField('er'),
});

/** Erdős–Rényi-Kernel: density proportional to (sum of dims / product of dims)^erkPowerScale. */
export const erkBudgetSchema = z.strictObject({
  method: methodField('erk'),
  /** RigL's erk_power_scale: < 1 is softer. */
  erkPowerScale: numberField('erkPowerScale must be a finite number >= 0', 0).default(1),
});

/**
 * The options of `layerBudgets(layers, sparsity, options)`, told apart by `method` (default 'uniform').
 * `erkPowerScale` belongs to 'erk' only: layerBudgets validates and ignores it for the other methods.
 */
export const layerBudgetOptionsSchema = z.discriminatedUnion('method', [uniformBudgetSchema, erBudgetSchema, erkBudgetSchema], {
  error: "method must be 'uniform', 'er' or 'erk'",
});
export type LayerBudgetConfig = z.output<typeof layerBudgetOptionsSchema>;

// ---- Dynamic sparse training at constant sparsity (SET, RigL) ----

/** The budget methods of `layerBudgets`, as the `budget` field of the DST configs names them. */
const budgetField = z.enum(['uniform', 'er', 'erk'] as const satisfies readonly BudgetMethod[], { error: "budget must be 'uniform', 'er' or 'erk'" });

/** The fraction of a stage `name` spans, in [0, 1] with each end closed or open. */
function stageFraction(name: string, lo: 'closed' | 'open', hi: 'closed' | 'open') {
  const error = `${name} must be a fraction of the stage in ${lo === 'closed' ? '[' : '('}0, 1${hi === 'closed' ? ']' : ')'}`;
  const n = z.number({ error });
  const low = lo === 'closed' ? n.min(0, { error }) : n.gt(0, { error });
  return hi === 'closed' ? low.max(1, { error }) : low.lt(1, { error });
}

/** `sparsity` (default 0.9) split over the layers by `budget` (layerBudgets' method, default 'erk'), `erkPowerScale` with 'erk' only. */
const randomBudgetShape = {
  sparsity: sparsityField('sparsity').default(0.9),
  budget: budgetField.default('erk'),
  erkPowerScale: erkBudgetSchema.shape.erkPowerScale.unwrap().optional(),
};

const erkPowerScaleNeedsErk = <C extends { budget: string; erkPowerScale?: number | undefined }>(c: C) => c.erkPowerScale === undefined || c.budget === 'erk';
const erkPowerScaleIssue = { error: "erkPowerScale needs budget: 'erk'", path: ['erkPowerScale'] };

/**
 * The fields SET and RigL share: the layers start from a random mask of `sparsity` (the pruned fraction)
 * split over them by `budget` (layerBudgets' method; `erkPowerScale` with 'erk' only), unless they are
 * already pruned; then every `every` steps while fewer than `end` × the stage's steps are done, a
 * `fraction` of each layer's active weights is dropped and as many regrown, `fraction` decaying to 0 at
 * `end` by `decay`. `every`, `fraction` and `decay` are regrowScheduleSchema's fields; `end` is a
 * fraction of the stage here, not a step, since a recipe does not know the step count of a stage ahead.
 */
function dstShape(defaults: { decay: 'cosine' | 'constant'; end: number }) {
  const regrow = regrowScheduleSchema.shape;
  return {
    ...randomBudgetShape,
    every: regrow.every.default(100),
    /** Fraction of the stage's steps after which the mask stays fixed: (0, 1]. */
    end: stageFraction('end', 'open', 'closed').default(defaults.end),
    fraction: regrow.fraction.default(0.3),
    decay: regrow.decay.unwrap().default(defaults.decay),
  };
}

function dstConfigSchema(defaults: { decay: 'cosine' | 'constant'; end: number }) {
  return z.strictObject(dstShape(defaults)).refine(erkPowerScaleNeedsErk, erkPowerScaleIssue);
}

/**
 * SET (Mocanu et al. 2018, "Scalable training of artificial neural networks with adaptive sparse
 * connectivity inspired by network science"): drop the smallest-|w| active weights, regrow as many at
 * random among the inactive ones. The paper's ζ = 0.3 is constant (`decay: 'constant'`, the default).
 */
export const setConfigSchema = dstConfigSchema({ decay: 'constant', end: 1 });
export type SETConfig = z.output<typeof setConfigSchema>;

/**
 * RigL (Evci et al. 2020, "Rigging the Lottery: Making All Tickets Winners"): drop the smallest-|w| active
 * weights, regrow the inactive ones with the largest dense-gradient magnitude, at zero. Defaults are the
 * paper's: α = 0.3 decaying on a cosine to 0 at 75% of training, ERK budgets.
 */
export const riglConfigSchema = dstConfigSchema({ decay: 'cosine', end: 0.75 });
export type RigLConfig = z.output<typeof riglConfigSchema>;

/**
 * SRigL (Lasby et al. 2024, "Dynamic Sparse Training with Structured Sparsity"): RigL where every output
 * neuron keeps the same number of inputs (constant fan-in; @sparse/nm's constantFanInRegrow). RigL's
 * fields and defaults; a layer's fan-in is its budget divided by its rows, rounded. Plus `gammaSal`, the
 * paper's γ_sal for its dynamic neuron ablation: at each update a neuron with fewer than
 * max(1, ⌊γ_sal · k⌋) salient weights (k the layer's fan-in before any ablation) is switched off and the
 * layer's budget is spread over the others; 0.3 as in the paper's experiments, 0 turns ablation off.
 */
export const sriglConfigSchema = z
  .strictObject({
    ...dstShape({ decay: 'cosine', end: 0.75 }),
    /** γ_sal: the fraction of the fan-in a neuron must have salient to stay active, in [0, 1]; 0: no ablation. */
    gammaSal: numberField('gammaSal must be a number in [0, 1]', 0, 1).default(0.3),
  })
  .refine(erkPowerScaleNeedsErk, erkPowerScaleIssue);
export type SRigLConfig = z.output<typeof sriglConfigSchema>;

/**
 * DST with exploration (Huang et al. 2023, "Dynamic Sparse Training via Balancing the
 * Exploration-Exploitation Trade-off"): RigL's drop (smallest |w|) and schedule, with the inactive entries
 * regrown by the acquisition score |dense gradient| + c · sqrt(ln t / (1 + n)), t the steps done and n the
 * steps an entry has been active so far: entries rarely or never active get an upper-confidence bonus.
 * RigL's fields and defaults, plus `c` (>= 0; 0 is RigL).
 */
export const explorationConfigSchema = z
  .strictObject({
    ...dstShape({ decay: 'cosine', end: 0.75 }),
    /** Weight of the exploration bonus c · sqrt(ln t / (1 + n)) added to |dense gradient|. */
    c: numberField('c must be a finite number >= 0', 0).default(1e-3),
  })
  .refine(erkPowerScaleNeedsErk, erkPowerScaleIssue);
export type ExplorationConfig = z.output<typeof explorationConfigSchema>;

/**
 * Static sparse training at random (the "random pruning" baselines, e.g. Liu et al. 2022, "The Unreasonable
 * Effectiveness of Random Pruning"): one random mask of `sparsity` split over the layers by `budget`
 * ('uniform' | 'er' | 'erk'), drawn once and never changed.
 */
export const staticConfigSchema = z.strictObject(randomBudgetShape).refine(erkPowerScaleNeedsErk, erkPowerScaleIssue);
export type StaticConfig = z.output<typeof staticConfigSchema>;

/**
 * How a magnitude method splits its sparsity over the layers: 'layer' (each layer at the sparsity),
 * 'global' (one |W| ranking across the layers), 'er' / 'erk' (layerBudgets' counts, then |W| within each layer).
 */
export const MAGNITUDE_BUDGETS = ['layer', 'global', 'er', 'erk'] as const;
export type MagnitudeBudget = (typeof MAGNITUDE_BUDGETS)[number];
const magnitudeBudgetField = z.enum(MAGNITUDE_BUDGETS, { error: "budget must be 'layer', 'global', 'er' or 'erk'" });

/**
 * AC/DC (Peste et al. 2021, "AC/DC: Alternating Compressed/DeCompressed Training of Deep Neural
 * Networks"): a dense warm-up of `warmup` of the stage, then compressed phases (a top-|W| mask at
 * `sparsity` under `budget`, recomputed at the start of each, training through it) of `compressed` of the
 * stage alternating with dense (decompressed) phases of `decompressed`, and the last `finetune` of the
 * stage compressed. Lengths are fractions of the stage (a recipe does not know its step count ahead);
 * the paper's 100-epoch schedule is the default: 10 dense, then 5 compressed / 5 dense, the last 10 compressed.
 */
export const acdcConfigSchema = z
  .strictObject({
    sparsity: sparsityField('sparsity').default(0.9),
    budget: magnitudeBudgetField.default('global'),
    erkPowerScale: erkBudgetSchema.shape.erkPowerScale.unwrap().optional(),
    /** Dense warm-up before the first compressed phase: [0, 1). */
    warmup: stageFraction('warmup', 'closed', 'open').default(0.1),
    /** Length of each compressed phase (at least one step): (0, 1]. */
    compressed: stageFraction('compressed', 'open', 'closed').default(0.05),
    /** Length of each decompressed (dense) phase (at least one step): (0, 1]. */
    decompressed: stageFraction('decompressed', 'open', 'closed').default(0.05),
    /** The final compressed phase, to the end of the stage (at least one step): (0, 1]. */
    finetune: stageFraction('finetune', 'open', 'closed').default(0.1),
  })
  .refine(erkPowerScaleNeedsErk, erkPowerScaleIssue)
  .refine((c) => c.warmup + c.finetune <= 1, {
    error: 'warmup + finetune must not exceed the stage (1)',
    path: ['finetune'],
    // only when both are valid fractions (a field's own issue says the rest)
    when: ({ value }) => {
      const c = value as { warmup?: unknown; finetune?: unknown };
      const inUnit = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;
      return inUnit(c.warmup) && c.warmup !== 1 && inUnit(c.finetune) && c.finetune !== 0;
    },
  });
export type ACDCConfig = z.output<typeof acdcConfigSchema>;

/**
 * HyperSparse with Adaptive Regularized Training (Glandorf et al. 2023, "HyperSparse Neural Networks:
 * Shifting Exploration to Exploitation through Adaptive Regularization"): dense training with λ_t · HS(w)
 * added to the loss, HS penalizing the weights outside the top set (the largest |w| at `sparsity` under
 * `budget`) most and those in it least, λ_t = `lambda` · `eta`^⌊(t − W) / every⌋ from the end of the
 * `warmup` (W, a fraction of the stage; no regularization before), then a magnitude prune to `sparsity`.
 * The defaults (λ 1e-3, η 1.1 every 10 steps) are for Adam on a small GPT, not the paper's SGD setting (η
 * 1.05 per epoch): λ at the end of a stage of S steps is lambda · eta^⌊(S − 1 − W) / every⌋.
 */
export const hypersparseConfigSchema = z
  .strictObject({
    sparsity: sparsityField('sparsity').default(0.9),
    budget: magnitudeBudgetField.default('global'),
    erkPowerScale: erkBudgetSchema.shape.erkPowerScale.unwrap().optional(),
    /** λ at the end of the warm-up. */
    lambda: z.number({ error: 'lambda must be a finite number > 0' }).gt(0, { error: 'lambda must be a finite number > 0' }).default(1e-3),
    /** Factor λ is multiplied by every `every` steps (>= 1). */
    eta: numberField('eta must be a finite number >= 1', 1).default(1.1),
    every: stepField('every', 1).default(10),
    /** Unregularized dense training before λ starts: [0, 1). */
    warmup: stageFraction('warmup', 'closed', 'open').default(0),
  })
  .refine(erkPowerScaleNeedsErk, erkPowerScaleIssue);
export type HyperSparseConfig = z.output<typeof hypersparseConfigSchema>;
