// Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune: exploring the efficacy of
// pruning for model compression"): the config of a training stage that prunes by |W| while it trains,
// the sparsity rising on the cubic schedule of @sparse/masks, and its translation into that schedule.

import { ArgumentError } from '@sparse/tensor';
import { validateSchedule, type SparsitySchedule } from '@sparse/masks';
import { cubicScheduleSchema, erkBudgetSchema } from '@sparse/masks/schemas';
import { z } from 'zod';

/** A sparsity (pruned fraction) field in [0, 1); the message names the field (shared by the training-time pruning configs). */
export const sparsityNumber = (name: string) => {
  const error = `${name} must be a number in [0, 1)`;
  return z.number({ error }).min(0, { error }).lt(1, { error });
};

/** A fraction of a training stage with closed or open ends; the message names the field. */
export const fraction = (name: string, lo: 'closed' | 'open', hi: 'closed' | 'open') => {
  const error = `${name} must be a fraction of the stage in ${lo === 'closed' ? '[' : '('}0, 1${hi === 'closed' ? ']' : ')'}`;
  const n = z.number({ error });
  const low = lo === 'closed' ? n.min(0, { error }) : n.gt(0, { error });
  return hi === 'closed' ? low.max(1, { error }) : low.lt(1, { error });
};

/**
 * How the schedule's sparsity is split over the targeted layers at each update:
 * - 'layer': every layer at the schedule's sparsity, keeping keepCount(size, s) = round((1 − s) · size) (Zhu & Gupta);
 * - 'global': one |W| ranking across the layers (globalMagnitudeMasks), keepCount(total, s) in all;
 * - 'er' / 'erk': per-layer counts from layerBudgets(layers, s, { method }) of @sparse/masks, then |W| within each layer.
 */
export const GMP_BUDGETS = ['layer', 'global', 'er', 'erk'] as const;
export type GMPBudget = (typeof GMP_BUDGETS)[number];

const cubic = cubicScheduleSchema.shape;

/** Structures structured GMP prunes whole: MLP hidden units or attention heads. */
export const GMP_STRUCTURES = ['neurons', 'heads'] as const;
export type GMPStructure = (typeof GMP_STRUCTURES)[number];

/** The final sparsity when the config names neither `sparsity` nor `pattern`. */
export const GMP_DEFAULT_SPARSITY = 0.8;

/** An integer field >= min; the message names the field. */
export const count = (name: string, min: number) => z.int(`${name} must be an integer >= ${min}`).min(min, `${name} must be an integer >= ${min}`);

/**
 * Gradual magnitude pruning during a training stage of S steps. The sparsity (pruned fraction) follows
 * the cubic ramp s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n Δt))³ from `initialSparsity` at t0 =
 * ⌊start · S⌋ to `sparsity` at t0 + n Δt = max(t0 + 1, ⌊end · S⌋) (`start`, `end`: fractions of the stage,
 * since a recipe does not know a stage's step count ahead), with t the steps done. The masks are recomputed
 * from |W| at t0, t0 + every, t0 + 2·every, ... before end and at end itself, and held fixed in between.
 *
 * With `pattern: { n, m }` the final sparsity is 1 − n/m (`sparsity` omitted, or equal to it) and every
 * group of m consecutive inputs of a row keeps k_t = round((1 − s_t) · m) entries (clamped to [n, m]): from
 * dense through the coarser patterns (m−1):m, ... to n:m, each held from the first update whose s_t rounds to
 * it. `budget` must then be 'layer'.
 */
export const gmpConfigSchema = z
  .strictObject({
    /** Final sparsity s_f (the pruned fraction), reached exactly at `end`. Default 0.8, or 1 − n/m with `pattern`. */
    sparsity: sparsityNumber('sparsity').optional(),
    /** Sparsity s_i at `start` (Zhu & Gupta: usually 0). */
    initialSparsity: sparsityNumber('initialSparsity').default(0),
    /** Fraction of the stage's steps done when pruning starts: [0, 1). */
    start: fraction('start', 'closed', 'open').default(0),
    /** Fraction of the stage's steps done when the final sparsity is reached: (0, 1]; the rest of the stage recovers at it. */
    end: fraction('end', 'open', 'closed').default(0.75),
    /** Steps between mask updates (Δt), the cubic schedule's `every`. */
    every: cubic.every.unwrap().default(10),
    budget: z.enum(GMP_BUDGETS, { error: "budget must be 'layer', 'global', 'er' or 'erk'" }).default('layer'),
    /** ERK's exponent (layerBudgets' erkPowerScale, default 1), with budget 'erk' only. */
    erkPowerScale: erkBudgetSchema.shape.erkPowerScale.unwrap().optional(),
    /**
     * Prune whole structures instead of entries: 'neurons' (an MLP hidden unit: its row of the up and gate
     * projections and its column of the down projection) or 'heads' (an attention head: its rows of the
     * query, key and value projections and its columns of the output projection). The schedule's sparsity is
     * the fraction of structures pruned, ranked by the L2 norm of their weights; budget 'layer' keeps each
     * block at it (at least one structure per block), 'global' ranks across blocks.
     */
    structure: z.enum(GMP_STRUCTURES, { error: "structure must be 'neurons' or 'heads'" }).optional(),
    /** N:M at the end (n kept in every group of m consecutive inputs of a row), reached through coarser patterns. */
    pattern: z
      .strictObject({ n: count('pattern.n', 1), m: count('pattern.m', 2) }, { error: 'pattern must be an object { n, m }' })
      .refine((p) => p.n < p.m, { error: 'pattern needs n < m (n kept in every group of m)', path: ['n'] })
      .optional(),
  })
  .refine((c) => c.end > c.start, { error: 'end must be after start', path: ['end'] })
  .refine((c) => c.erkPowerScale === undefined || c.budget === 'erk', { error: "erkPowerScale needs budget: 'erk'", path: ['erkPowerScale'] })
  // a resolved config (written out, parsed again on resume) holds both, sparsity = 1 − n/m
  .refine((c) => c.pattern === undefined || c.sparsity === undefined || c.sparsity === 1 - c.pattern.n / c.pattern.m, {
    error: 'with a pattern n:m the sparsity is 1 − n/m: omit sparsity',
    path: ['sparsity'],
  })
  .refine((c) => c.pattern === undefined || c.budget === 'layer', { error: "pattern needs budget: 'layer' (N:M is kept per group of m)", path: ['budget'] })
  .refine((c) => c.structure === undefined || c.pattern === undefined, { error: 'structure and pattern exclude each other (whole structures, or N:M entries)', path: ['structure'] })
  .refine((c) => c.structure === undefined || c.budget === 'layer' || c.budget === 'global', { error: "structure needs budget 'layer' (per block) or 'global'", path: ['budget'] })
  .transform((c) => ({ ...c, sparsity: c.pattern ? 1 - c.pattern.n / c.pattern.m : (c.sparsity ?? GMP_DEFAULT_SPARSITY) }))
  .refine((c) => c.initialSparsity <= c.sparsity, { error: 'initialSparsity must not exceed sparsity', path: ['initialSparsity'] });
export type GMPConfig = z.output<typeof gmpConfigSchema>;
export type GMPConfigInput = z.input<typeof gmpConfigSchema>;

/**
 * The cubic SparsitySchedule (`sparsityAt` / `isPruningStep` of @sparse/masks, in steps done) of a GMP
 * config over a stage of `steps` steps: begin = ⌊start · steps⌋, end = max(begin + 1, ⌊end · steps⌋).
 */
export function gmpSchedule(config: Pick<GMPConfig, 'sparsity' | 'initialSparsity' | 'start' | 'end' | 'every'>, steps: number): Extract<SparsitySchedule, { kind: 'cubic' }> {
  if (!Number.isSafeInteger(steps) || steps < 1) throw new ArgumentError(`gmpSchedule: steps must be a positive integer, got ${String(steps)}`);
  const begin = Math.floor(config.start * steps);
  const end = Math.min(steps, Math.max(begin + 1, Math.floor(config.end * steps)));
  const schedule = { kind: 'cubic' as const, initial: config.initialSparsity, final: config.sparsity, begin, end, every: config.every };
  validateSchedule(schedule);
  return schedule;
}

/**
 * Entries kept per group of m at sparsity s under an n:m pattern: round((1 − s) · m), clamped to [n, m]
 * (so the final sparsity 1 − n/m gives exactly n).
 */
export function gmpGroupKeep(pattern: { n: number; m: number }, sparsity: number): number {
  return Math.min(pattern.m, Math.max(pattern.n, Math.round((1 - sparsity) * pattern.m)));
}
