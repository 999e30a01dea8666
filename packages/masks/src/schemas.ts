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
