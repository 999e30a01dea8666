import { ArgumentError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { layerBudgets, type LayerBudgetOptions, type LayerSpec } from './budgets.js';
import { dropFractionAt, isPruningStep, isRegrowStep, progressiveStage, sparsityAt, type ProgressiveSchedule, type RegrowSchedule, type SparsitySchedule } from './schedules.js';
import {
  constantScheduleSchema,
  cubicScheduleSchema,
  erBudgetSchema,
  erkBudgetSchema,
  layerBudgetOptionsSchema,
  linearScheduleSchema,
  oneShotScheduleSchema,
  progressiveScheduleSchema,
  regrowScheduleSchema,
  acdcConfigSchema,
  explorationConfigSchema,
  hypersparseConfigSchema,
  riglConfigSchema,
  setConfigSchema,
  staticConfigSchema,
  sriglConfigSchema,
  sparsityScheduleSchema,
  stepScheduleSchema,
  uniformBudgetSchema,
  type LayerBudgetConfig,
  type ProgressiveScheduleConfig,
  type RegrowScheduleConfig,
  type SparsityScheduleConfig,
} from './schemas.js';

// The parsed configs are what the code takes.
const _schedule: SparsitySchedule = {} as SparsityScheduleConfig;
const _progressive: ProgressiveSchedule = {} as ProgressiveScheduleConfig;
const _regrow: RegrowSchedule = {} as RegrowScheduleConfig;
const _budget: LayerBudgetOptions = {} as LayerBudgetConfig;
void [_schedule, _progressive, _regrow, _budget];

const LAYERS: LayerSpec[] = [{ shape: [784, 300] }, { shape: [300, 100] }, { shape: [100, 10] }, { shape: [3, 3, 16, 32] }];
const budgetsOf = (c: unknown) => layerBudgets(LAYERS, 0.9, c as LayerBudgetOptions).map((b) => b.keep);

// ---- generators: every field valid, at an edge, of the wrong type, or absent ----

const ABSENT = Symbol('absent');
type Gen = fc.Arbitrary<unknown>;

/** Wrong types and non-finite numbers; null only where the field has no default (see the stricter tests). */
const junk = (withNull: boolean): Gen =>
  fc.constantFrom<unknown[]>(NaN, Infinity, -Infinity, undefined, ABSENT, '0.5', '3', true, [], {}, ...(withNull ? [null] : []));

const field = (valid: Gen, edges: unknown[], defaulted = false, anyNumber: Gen = fc.double()): Gen =>
  fc.oneof({ arbitrary: valid, weight: 10 }, { arbitrary: fc.constantFrom(...edges), weight: 2 }, { arbitrary: junk(!defaulted), weight: 1 }, { arbitrary: anyNumber, weight: 1 });

const sparsityArb = (defaulted = false) =>
  field(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), [0, -0, 1, 1 - 2 ** -53, -Number.MIN_VALUE, 0.5], defaulted);
const stepArb = (defaulted = false) => field(fc.integer({ min: 0, max: 40 }), [0, -0, 1, -1, 0.5, 2 ** 53, 2 ** 53 - 1, -(2 ** 53)], defaulted);
const positiveStepArb = (defaulted = false) => field(fc.integer({ min: 1, max: 40 }), [0, -0, 1, -1, 1.5, 2 ** 53, 2 ** 53 - 1], defaulted);

/** Steps that are often increasing (cumulative increments in [-2, 10]) and sometimes broken. */
const stepListArb = (first: number, item: (step: Gen) => Gen): Gen =>
  fc.oneof(
    { arbitrary: fc.array(fc.integer({ min: -2, max: 10 }), { maxLength: 4 }).chain((inc) => {
        let t = first;
        return fc.tuple(...inc.map((d) => item(fc.constant((t += d)))));
      }), weight: 6 },
    { arbitrary: fc.array(item(stepArb()), { maxLength: 4 }), weight: 3 },
    { arbitrary: junk(true), weight: 1 },
  );

function record(fields: Record<string, Gen>): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(fields).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== ABSENT)));
}

const milestoneArb = (step: Gen): Gen =>
  fc.oneof({ arbitrary: record({ step, sparsity: sparsityArb() }), weight: 9 }, { arbitrary: junk(true), weight: 1 });

const scheduleFields: Record<SparsitySchedule['kind'], Record<string, Gen>> = {
  constant: { sparsity: sparsityArb() },
  oneShot: { sparsity: sparsityArb(), step: stepArb(), initial: sparsityArb(true) },
  linear: { initial: sparsityArb(), final: sparsityArb(), begin: stepArb(), end: stepArb(), every: positiveStepArb(true) },
  cubic: { initial: sparsityArb(), final: sparsityArb(), begin: stepArb(), end: stepArb(), every: positiveStepArb(true) },
  step: { initial: sparsityArb(), milestones: stepListArb(0, milestoneArb) },
};
const kinds = Object.keys(scheduleFields) as SparsitySchedule['kind'][];

/** A schedule of one kind (or, one time in ten, a wrong kind with another kind's fields). */
const scheduleArb = (only?: SparsitySchedule['kind']) =>
  fc.constantFrom(...(only ? [only] : kinds)).chain((k) =>
    fc.tuple(fc.oneof({ arbitrary: fc.constant<unknown>(k), weight: 9 }, { arbitrary: fc.constantFrom<unknown>('Cubic', 'gmp', undefined, ABSENT, 1, null), weight: 1 }), record(scheduleFields[k])).map(
      ([kind, fields]) => (kind === ABSENT ? fields : { kind, ...fields }),
    ),
  );

const progressiveArb = record({ reselectSteps: stepListArb(1, (step) => step) });

const regrowArb = record({
  every: positiveStepArb(),
  begin: stepArb(true),
  end: stepArb(),
  fraction: field(fc.double({ min: 0, max: 1, noNaN: true }), [0, -0, 1, 1 + 2 ** -52, -Number.MIN_VALUE]),
  decay: field(fc.constantFrom('cosine', 'constant'), ['linear', 'Cosine', ''], true),
});

// erkPowerScale stays below 8: a power large enough to underflow (or overflow) every layer's
// (sum / product of dims)^power makes layerBudgets fail for any layers (e.g. 1000 here), which no
// config schema can know.
const budgetArb = fc.oneof(
  record({ method: fc.constantFrom<unknown>('uniform', 'er', undefined, ABSENT, 'ERK', 'dense', 1, '') }),
  record({ method: fc.constant('erk'), erkPowerScale: field(fc.double({ min: 0, max: 8, noNaN: true }), [0, -0, 1, -Number.MIN_VALUE, 0.5], true, fc.double({ max: 8 })) }),
);

// ---- agreement ----

const formatPath = (path: readonly PropertyKey[]) => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');

/**
 * schema.safeParse(c) succeeds exactly when run(c) does not throw; when it throws, the schema has an issue
 * at the field the code names, whose message names it too; when it succeeds, the parsed config (defaults
 * filled in) gives the same results as the raw one.
 */
function checkAgreement(schema: z.ZodType, arb: fc.Arbitrary<unknown>, run: (c: unknown) => unknown, numRuns = 3000) {
  let accepted = 0;
  fc.assert(
    fc.property(arb, (c) => {
      let error: unknown;
      let raw: unknown;
      try {
        raw = run(c);
      } catch (e) {
        error = e;
      }
      const parsed = schema.safeParse(c);
      if (error === undefined) {
        expect(parsed.error?.issues, JSON.stringify(c)).toBeUndefined();
        expect(run(parsed.data)).toEqual(raw);
        accepted++;
        return;
      }
      expect(error, String(error)).toBeInstanceOf(ArgumentError);
      const message = (error as Error).message;
      const named = /^\w+: ([\w.[\]]+)/.exec(message)![1]!;
      const leaf = named.replace(/\[\d+\]/g, '').split('.').pop()!;
      expect(parsed.success, `${JSON.stringify(c)}: code says ${message}`).toBe(false);
      // At the field, or at an element that holds it but is not even an object.
      const atField = (i: z.core.$ZodIssue) => {
        const path = formatPath(i.path);
        return named === path || (named.startsWith(path) && /^[.[]/.test(named.slice(path.length)));
      };
      const issues = parsed.error!.issues;
      expect(
        issues.some((i) => atField(i) && i.message.includes(leaf)),
        `${message} vs ${issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')}`,
      ).toBe(true);
    }),
    { numRuns },
  );
  // Both sides of the boundary were exercised.
  expect(accepted).toBeGreaterThan(numRuns / 10);
  expect(accepted).toBeLessThan(numRuns - numRuns / 10);
}

const scheduleRun = (c: unknown) => {
  const s = c as SparsitySchedule;
  return [0, 1, 7, 20, 45].map((t) => [sparsityAt(s, t), isPruningStep(s, t)]);
};

describe('schedule schemas agree with validateSchedule (sparsityAt)', () => {
  const perKind = {
    constant: constantScheduleSchema,
    oneShot: oneShotScheduleSchema,
    linear: linearScheduleSchema,
    cubic: cubicScheduleSchema,
    step: stepScheduleSchema,
  } satisfies Record<SparsitySchedule['kind'], z.ZodType>;
  for (const kind of kinds) {
    it(`${kind}: its own schema and the union`, () => {
      checkAgreement(perKind[kind], scheduleArb(kind), scheduleRun, 1500);
      checkAgreement(sparsityScheduleSchema, scheduleArb(kind), scheduleRun, 1500);
    });
  }
  it('any kind, or a wrong one', () => checkAgreement(sparsityScheduleSchema, scheduleArb(), scheduleRun));
});

describe('progressive, regrow and budget schemas agree with the code', () => {
  it('progressiveScheduleSchema and progressiveStage', () =>
    checkAgreement(progressiveScheduleSchema, progressiveArb, (c) => [0, 3, 9, 30].map((t) => progressiveStage(c as ProgressiveSchedule, t))));
  it('regrowScheduleSchema and dropFractionAt / isRegrowStep', () =>
    checkAgreement(regrowScheduleSchema, regrowArb, (c) => [0, 2, 9, 30].map((t) => [dropFractionAt(c as RegrowSchedule, t), isRegrowStep(c as RegrowSchedule, t)])));
  it('layerBudgetOptionsSchema and layerBudgets', () => checkAgreement(layerBudgetOptionsSchema, budgetArb, budgetsOf, 1000));
});

describe('defaults', () => {
  it('fill in as the code reads absent fields', () => {
    expect(oneShotScheduleSchema.parse({ kind: 'oneShot', sparsity: 0.5, step: 3 })).toEqual({ kind: 'oneShot', sparsity: 0.5, step: 3, initial: 0 });
    const ramp = { initial: 0, final: 0.9, begin: 0, end: 100 };
    expect(cubicScheduleSchema.parse({ kind: 'cubic', ...ramp })).toEqual({ kind: 'cubic', ...ramp, every: 1 });
    expect(sparsityScheduleSchema.parse({ kind: 'linear', ...ramp })).toEqual({ kind: 'linear', ...ramp, every: 1 });
    expect(regrowScheduleSchema.parse({ every: 100, end: 1000, fraction: 0.3 })).toEqual({ every: 100, begin: 0, end: 1000, fraction: 0.3, decay: 'cosine' });
    expect(layerBudgetOptionsSchema.parse({})).toEqual({ method: 'uniform' });
    expect(uniformBudgetSchema.parse({})).toEqual({ method: 'uniform' });
    expect(erBudgetSchema.parse({ method: 'er' })).toEqual({ method: 'er' });
    expect(erkBudgetSchema.parse({ method: 'erk' })).toEqual({ method: 'erk', erkPowerScale: 1 });
    expect(layerBudgetOptionsSchema.parse({ method: 'erk' })).toEqual({ method: 'erk', erkPowerScale: 1 });
    expect(budgetsOf(layerBudgetOptionsSchema.parse({ method: 'erk' }))).toEqual(budgetsOf({ method: 'erk' }));
  });
});

describe('stricter than the code, on purpose', () => {
  const refusedButRun = (schema: z.ZodType, c: unknown, run: (c: unknown) => unknown, field: string) => {
    expect(() => run(c)).not.toThrow();
    const issues = schema.safeParse(c).error?.issues ?? [];
    expect(issues.some((i) => formatPath(i.path) === field || ('keys' in i && i.keys.includes(field))), JSON.stringify(issues)).toBe(true);
  };
  it('unknown keys (a misspelt field is not silently ignored)', () => {
    refusedButRun(sparsityScheduleSchema, { kind: 'cubic', initial: 0, final: 0.9, begin: 0, end: 10, evrey: 2 }, scheduleRun, 'evrey');
    // the ramps' cadence was `frequency` before it became `every`
    refusedButRun(sparsityScheduleSchema, { kind: 'linear', initial: 0, final: 0.9, begin: 0, end: 10, frequency: 2 }, scheduleRun, 'frequency');
    refusedButRun(sparsityScheduleSchema, { kind: 'step', initial: 0, milestones: [{ step: 1, sparsity: 0.5, note: 'x' }] }, scheduleRun, 'note');
    refusedButRun(regrowScheduleSchema, { every: 1, end: 10, fraction: 0.3, decays: 'constant' }, (c) => dropFractionAt(c as RegrowSchedule, 0), 'decays');
    refusedButRun(progressiveScheduleSchema, { reselectSteps: [5], stages: 2 }, (c) => progressiveStage(c as ProgressiveSchedule, 0), 'stages');
  });
  it("erkPowerScale with a method other than 'erk', which layerBudgets validates and ignores", () => {
    for (const c of [{ erkPowerScale: 2 }, { method: 'uniform', erkPowerScale: 2 }, { method: 'er', erkPowerScale: 0.5 }]) {
      refusedButRun(layerBudgetOptionsSchema, c, budgetsOf, 'erkPowerScale');
    }
  });
  it("null for a field with a default (the code's ?? reads it as absent)", () => {
    refusedButRun(sparsityScheduleSchema, { kind: 'oneShot', sparsity: 0.5, step: 3, initial: null }, scheduleRun, 'initial');
    refusedButRun(sparsityScheduleSchema, { kind: 'cubic', initial: 0, final: 0.9, begin: 0, end: 10, every: null }, scheduleRun, 'every');
    for (const f of ['begin', 'decay']) {
      refusedButRun(regrowScheduleSchema, { every: 1, end: 10, fraction: 0.3, [f]: null }, (c) => dropFractionAt(c as RegrowSchedule, 0), f);
    }
    refusedButRun(layerBudgetOptionsSchema, { method: null }, budgetsOf, 'method');
    refusedButRun(layerBudgetOptionsSchema, { method: 'erk', erkPowerScale: null }, budgetsOf, 'erkPowerScale');
  });
});

describe('DST configs (set, rigl)', () => {
  it('fill in the papers\' defaults', () => {
    expect(riglConfigSchema.parse({})).toEqual({ sparsity: 0.9, budget: 'erk', every: 100, end: 0.75, fraction: 0.3, decay: 'cosine' });
    expect(setConfigSchema.parse({})).toEqual({ sparsity: 0.9, budget: 'erk', every: 100, end: 1, fraction: 0.3, decay: 'constant' });
    expect(sriglConfigSchema.parse({})).toEqual({ ...riglConfigSchema.parse({}), gammaSal: 0.3 });
    expect(sriglConfigSchema.parse({ gammaSal: 0 }).gammaSal).toBe(0);
    expect(riglConfigSchema.parse({ budget: 'erk', erkPowerScale: 0.5 }).erkPowerScale).toBe(0.5);
  });
  it('a parsed config gives layerBudgets and the regrow schedule what they take', () => {
    const c = riglConfigSchema.parse({ sparsity: 0.8, budget: 'er', every: 3, end: 0.5, fraction: 0.4 });
    expect(layerBudgets(LAYERS, c.sparsity, { method: c.budget }).map((b) => b.keep)).toEqual(layerBudgets(LAYERS, 0.8, { method: 'er' }).map((b) => b.keep));
    const schedule = regrowScheduleSchema.parse({ every: c.every, end: Math.round(c.end * 40), fraction: c.fraction, decay: c.decay });
    expect(dropFractionAt(schedule, 10)).toBeCloseTo(0.2, 12);
  });
  const issuesAt = (schema: z.ZodType, c: unknown) => (schema.safeParse(c).error?.issues ?? []).map((i) => formatPath(i.path));
  it('refuse, naming the field, what the code would refuse or ignore', () => {
    for (const schema of [riglConfigSchema, setConfigSchema, sriglConfigSchema]) {
      expect(issuesAt(schema, { sparsity: 1 })).toEqual(['sparsity']);
      expect(issuesAt(schema, { budget: 'random' })).toEqual(['budget']);
      expect(issuesAt(schema, { every: 0 })).toEqual(['every']);
      expect(issuesAt(schema, { every: 1.5 })).toEqual(['every']);
      expect(issuesAt(schema, { fraction: 1.2 })).toEqual(['fraction']);
      expect(issuesAt(schema, { end: 0 })).toEqual(['end']);
      expect(issuesAt(schema, { end: 1.5 })).toEqual(['end']);
      expect(issuesAt(schema, { decay: 'linear' })).toEqual(['decay']);
      expect(issuesAt(schema, { budget: 'uniform', erkPowerScale: 2 })).toEqual(['erkPowerScale']);
      expect(issuesAt(schema, { budget: 'erk', erkPowerScale: -1 })).toEqual(['erkPowerScale']);
      expect(issuesAt(schema, { density: 0.1 })).toEqual(['']);
    }
    expect(issuesAt(sriglConfigSchema, { gammaSal: -0.1 })).toEqual(['gammaSal']);
    expect(issuesAt(sriglConfigSchema, { gammaSal: 1.5 })).toEqual(['gammaSal']);
    expect(issuesAt(sriglConfigSchema, { gammaSal: null })).toEqual(['gammaSal']);
    expect(issuesAt(riglConfigSchema, { gammaSal: 0.3 })).toEqual(['']);
  });
});

describe('static, exploration, AC/DC and HyperSparse configs', () => {
  const issuesAt = (schema: z.ZodType, c: unknown) => (schema.safeParse(c).error?.issues ?? []).map((i) => formatPath(i.path));
  it('fill in their defaults', () => {
    expect(staticConfigSchema.parse({})).toEqual({ sparsity: 0.9, budget: 'erk' });
    expect(explorationConfigSchema.parse({})).toEqual({ ...riglConfigSchema.parse({}), c: 1e-3 });
    expect(acdcConfigSchema.parse({})).toEqual({ sparsity: 0.9, budget: 'global', warmup: 0.1, compressed: 0.05, decompressed: 0.05, finetune: 0.1 });
    expect(hypersparseConfigSchema.parse({})).toEqual({ sparsity: 0.9, budget: 'global', lambda: 1e-3, eta: 1.1, every: 10, warmup: 0 });
    // a parsed config parses to itself (resolved recipes are parsed again on resume)
    for (const schema of [staticConfigSchema, explorationConfigSchema, acdcConfigSchema, hypersparseConfigSchema]) {
      const c = schema.parse({});
      expect(schema.parse(c)).toEqual(c);
    }
    expect(staticConfigSchema.parse({ sparsity: 0.8, budget: 'erk', erkPowerScale: 0.5 })).toEqual({ sparsity: 0.8, budget: 'erk', erkPowerScale: 0.5 });
    expect(acdcConfigSchema.parse({ warmup: 0.4, finetune: 0.6 }).finetune).toBe(0.6);
  });
  it('refuse, naming the field, what the methods cannot run', () => {
    for (const schema of [staticConfigSchema, explorationConfigSchema]) {
      expect(issuesAt(schema, { sparsity: 1 })).toEqual(['sparsity']);
      expect(issuesAt(schema, { budget: 'global' })).toEqual(['budget']);
      expect(issuesAt(schema, { budget: 'er', erkPowerScale: 1 })).toEqual(['erkPowerScale']);
      expect(issuesAt(schema, { every2: 1 })).toEqual(['']);
    }
    expect(issuesAt(explorationConfigSchema, { c: -1 })).toEqual(['c']);
    expect(issuesAt(explorationConfigSchema, { c: Infinity })).toEqual(['c']);
    expect(issuesAt(explorationConfigSchema, { every: 0 })).toEqual(['every']);
    expect(issuesAt(staticConfigSchema, { every: 10 })).toEqual(['']);
    for (const schema of [acdcConfigSchema, hypersparseConfigSchema]) {
      expect(issuesAt(schema, { budget: 'uniform' })).toEqual(['budget']);
      expect(issuesAt(schema, { budget: 'layer', erkPowerScale: 1 })).toEqual(['erkPowerScale']);
      expect(issuesAt(schema, { sparsity: -0.1 })).toEqual(['sparsity']);
      expect(issuesAt(schema, { warmup: 1 })).toEqual(['warmup']);
    }
    expect(issuesAt(acdcConfigSchema, { compressed: 0 })).toEqual(['compressed']);
    expect(issuesAt(acdcConfigSchema, { decompressed: 1.5 })).toEqual(['decompressed']);
    expect(issuesAt(acdcConfigSchema, { finetune: 0 })).toEqual(['finetune']);
    expect(issuesAt(acdcConfigSchema, { warmup: 0.5, finetune: 0.6 })).toEqual(['finetune']);
    expect(issuesAt(acdcConfigSchema, { finetune: 0.95 })).toEqual(['finetune']); // with the default warm-up 0.1
    expect(issuesAt(hypersparseConfigSchema, { lambda: 0 })).toEqual(['lambda']);
    expect(issuesAt(hypersparseConfigSchema, { eta: 0.9 })).toEqual(['eta']);
    expect(issuesAt(hypersparseConfigSchema, { every: 0 })).toEqual(['every']);
    expect(issuesAt(hypersparseConfigSchema, { every: 2.5 })).toEqual(['every']);
  });
});
