// Iterative magnitude pruning with weight rewinding (Frankle & Carbin 2019, "The Lottery Ticket
// Hypothesis"; Frankle et al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis") and
// SWAMP (Choi et al. 2023, "SWAMP: Sparse Weight Averaging with Multiple Particles for Iterative
// Magnitude Pruning"): their configs and how a training stage's steps are laid out in rounds.

import { ArgumentError } from '@sparse/tensor';
import { z } from 'zod';
import { count, fraction } from '../magnitude/gradual.js';

/** How a round's prune is split over the targeted layers: 'layer' (each loses `rate` of its kept entries) or 'global' (one |W| ranking). */
export const LOTTERY_BUDGETS = ['layer', 'global'] as const;
export type LotteryBudget = (typeof LOTTERY_BUDGETS)[number];

/** The rewind point, as a fraction of the stage's steps, when the config names neither `rewindStep` nor `rewind`. */
export const LOTTERY_DEFAULT_REWIND = 0.02;

const rateError = 'rate must be a number in (0, 1) (the fraction of the remaining weights each round prunes)';

const lotteryShape = {
  /** Prune-and-rewind rounds; the stage trains rounds + 1 phases (the last one trains the final ticket). */
  rounds: count('rounds', 1).default(3),
  /** Fraction of the still-kept weights each round prunes: after round r the density is (1 − rate)^r. */
  rate: z.number({ error: rateError }).gt(0, { error: rateError }).lt(1, { error: rateError }).default(0.2),
  /** The rewind point in steps: the weights after this many steps are what every round rewinds to. */
  rewindStep: count('rewindStep', 0).optional(),
  /** The rewind point as a fraction of the stage's steps (⌊rewind · steps⌋); default 0.02 when rewindStep is not given. */
  rewind: fraction('rewind', 'closed', 'open').optional(),
  budget: z.enum(LOTTERY_BUDGETS, { error: "budget must be 'layer' or 'global'" }).default('layer'),
};

const oneRewind = { error: 'give rewindStep (steps) or rewind (a fraction of the stage), not both', path: ['rewind'] };
const withRewind = <C extends { rewindStep?: number | undefined; rewind?: number | undefined }>(c: C): C => (c.rewindStep === undefined && c.rewind === undefined ? { ...c, rewind: LOTTERY_DEFAULT_REWIND } : c);

/**
 * IMP with weight rewinding during a training stage of S steps. The first k steps (k = `rewindStep`, or
 * ⌊rewind · S⌋) train the dense model once and the weights after them are saved (k = 0: the initial
 * weights). Then rounds + 1 phases of L = ⌊(S − k) / (rounds + 1)⌋ steps each: every phase starts from
 * the saved weights (pruned entries 0, fresh Adam moments) and trains L steps with the learning rate of
 * steps k + 1 .. k + L of a (k + L)-step warmup + cosine schedule; phases 1 .. rounds end by pruning `rate`
 * of the remaining weights by |W| ('layer' or 'global' `budget`), the last phase trains the final ticket.
 * The stage runs k + (rounds + 1) · L steps (the resolved recipe writes out that count and k).
 */
export const impConfigSchema = z
  .strictObject(lotteryShape)
  .refine((c) => c.rewindStep === undefined || c.rewind === undefined, oneRewind)
  .transform(withRewind);
export type IMPConfig = z.output<typeof impConfigSchema>;
export type IMPConfigInput = z.input<typeof impConfigSchema>;

/**
 * SWAMP: IMP whose every phase trains `particles` copies of the same ticket, each on its own order of the
 * data, one after the other, and continues from the mean of their weights (pruning by its |W|). Each
 * particle trains L = ⌊(S − k) / ((rounds + 1) · particles)⌋ steps; the stage runs k + (rounds + 1) ·
 * particles · L steps. With one particle it is IMP.
 */
export const swampConfigSchema = z
  .strictObject({
    ...lotteryShape,
    /** Copies trained from the same ticket in every phase, averaged. */
    particles: count('particles', 1).default(4),
  })
  .refine((c) => c.rewindStep === undefined || c.rewind === undefined, oneRewind)
  .transform(withRewind);
export type SWAMPConfig = z.output<typeof swampConfigSchema>;
export type SWAMPConfigInput = z.input<typeof swampConfigSchema>;

/** Where a lottery stage's steps go. */
export interface LotteryLayout {
  /** Steps before the rewind point (trained once, dense). */
  rewindStep: number;
  /** Steps each particle of each phase trains. */
  phaseSteps: number;
  /** Prune-and-rewind rounds (phases: rounds + 1). */
  rounds: number;
  particles: number;
  /** Steps the stage runs: rewindStep + (rounds + 1) · particles · phaseSteps. */
  steps: number;
  /** Length of the learning-rate schedule a phase follows from step rewindStep + 1: rewindStep + phaseSteps. */
  scheduleSteps: number;
}

/** The layout of a stage of `steps` steps (see impConfigSchema); throws when there are too few steps. */
export function lotteryLayout(config: { rounds: number; rewindStep?: number | undefined; rewind?: number | undefined; particles?: number | undefined }, steps: number): LotteryLayout {
  if (!Number.isSafeInteger(steps) || steps < 1) throw new ArgumentError(`lotteryLayout: steps must be a positive integer, got ${String(steps)}`);
  const rounds = config.rounds;
  const particles = config.particles ?? 1;
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new ArgumentError(`lotteryLayout: rounds must be a positive integer, got ${String(rounds)}`);
  if (!Number.isSafeInteger(particles) || particles < 1) throw new ArgumentError(`lotteryLayout: particles must be a positive integer, got ${String(particles)}`);
  const k = config.rewindStep ?? Math.floor((config.rewind ?? LOTTERY_DEFAULT_REWIND) * steps);
  const segments = (rounds + 1) * particles;
  const phaseSteps = Math.floor((steps - k) / segments);
  if (phaseSteps < 1) {
    throw new ArgumentError(`lotteryLayout: ${steps} steps leave no phase: the rewind point at ${k} and (rounds + 1) · particles = ${segments} phases of at least one step need steps >= ${k + segments}`);
  }
  return { rewindStep: k, phaseSteps, rounds, particles, steps: k + segments * phaseSteps, scheduleSteps: k + phaseSteps };
}

/** The sparsity after `round` prunes of `rate` each: 1 − (1 − rate)^round. */
export function lotterySparsity(rate: number, round: number): number {
  if (!(rate > 0 && rate < 1)) throw new ArgumentError(`lotterySparsity: rate must be in (0, 1), got ${String(rate)}`);
  if (!Number.isSafeInteger(round) || round < 0) throw new ArgumentError(`lotterySparsity: round must be a non-negative integer, got ${String(round)}`);
  return 1 - (1 - rate) ** round;
}
