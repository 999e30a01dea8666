// Sparsity schedules as pure functions of the step (plain-data specs, so recipes can hold them), SaRA's
// progressive re-selection steps, and the drop-and-regrow update of dynamic sparse training.

import { ArgumentError, Random, sizeOf, type Tensor } from '@sparse/tensor';
import { checkNoNaN, checkSameShape, checkStep, flatValues } from './internal.js';
import { count, forEachKept, maskWords, validateMask, type Mask } from './mask.js';
import { selectTopK } from './select.js';

/**
 * - constant: the same sparsity at every step (a static mask computed at step 0).
 * - oneShot: `initial` (default 0) before `step`, `sparsity` from `step` on.
 * - linear / cubic: from `initial` at `begin` to `final` at `end`, updated every `every` steps
 *   (default 1). cubic is Zhu & Gupta's gradual magnitude pruning ramp
 *   s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))^3, with t0 = begin, n Δt = end - begin, Δt = every.
 * - step: `initial` until the first milestone, then each milestone's sparsity from its step on.
 */
export type SparsitySchedule =
  | { kind: 'constant'; sparsity: number }
  | { kind: 'oneShot'; sparsity: number; step: number; initial?: number }
  | { kind: 'linear'; initial: number; final: number; begin: number; end: number; every?: number }
  | { kind: 'cubic'; initial: number; final: number; begin: number; end: number; every?: number }
  | { kind: 'step'; initial: number; milestones: readonly { step: number; sparsity: number }[] };

function sparsityArg(where: string, name: string, s: unknown): number {
  if (typeof s !== 'number' || !(s >= 0 && s < 1)) throw new ArgumentError(`${where}: ${name} must be a number in [0, 1), got ${String(s)}`);
  return s;
}

/** Throws ArgumentError naming the field unless the schedule is well formed. */
export function validateSchedule(schedule: SparsitySchedule): void {
  const where = 'validateSchedule';
  const s = schedule as SparsitySchedule & Record<string, unknown>;
  const kind: unknown = (schedule as { kind?: unknown } | undefined)?.kind;
  switch (s?.kind) {
    case 'constant':
      sparsityArg(where, 'sparsity', s.sparsity);
      return;
    case 'oneShot':
      sparsityArg(where, 'sparsity', s.sparsity);
      sparsityArg(where, 'initial', s.initial ?? 0);
      checkStep(where, 'step', s.step);
      return;
    case 'linear':
    case 'cubic': {
      sparsityArg(where, 'initial', s.initial);
      sparsityArg(where, 'final', s.final);
      const begin = checkStep(where, 'begin', s.begin);
      const end = checkStep(where, 'end', s.end);
      if (end <= begin) throw new ArgumentError(`${where}: end (${end}) must be after begin (${begin})`);
      const f = s.every ?? 1;
      if (!Number.isSafeInteger(f) || f < 1) throw new ArgumentError(`${where}: every must be a positive integer, got ${String(f)}`);
      return;
    }
    case 'step': {
      sparsityArg(where, 'initial', s.initial);
      if (!Array.isArray(s.milestones)) throw new ArgumentError(`${where}: milestones must be an array`);
      let last = -1;
      s.milestones.forEach((m, i) => {
        const t = checkStep(where, `milestones[${i}].step`, m?.step);
        if (t <= last) throw new ArgumentError(`${where}: milestones[${i}].step (${t}) must be after the previous milestone (${last})`);
        sparsityArg(where, `milestones[${i}].sparsity`, m.sparsity);
        last = t;
      });
      return;
    }
    default:
      throw new ArgumentError(`${where}: kind must be 'constant', 'oneShot', 'linear', 'cubic' or 'step', got ${JSON.stringify(kind)}`);
  }
}

/** The last update step at or before t of a ramp, or end when t >= end. */
function rampStep(begin: number, end: number, every: number, t: number): number {
  if (t >= end) return end;
  return begin + Math.floor((t - begin) / every) * every;
}

/**
 * The target sparsity at step t. Ramps hold their value between update steps (begin + j * every) and
 * reach `final` exactly at `end`, whether or not end - begin is a multiple of `every`.
 */
export function sparsityAt(schedule: SparsitySchedule, t: number): number {
  validateSchedule(schedule);
  checkStep('sparsityAt', 'step', t);
  switch (schedule.kind) {
    case 'constant':
      return schedule.sparsity;
    case 'oneShot':
      return t >= schedule.step ? schedule.sparsity : (schedule.initial ?? 0);
    case 'linear':
    case 'cubic': {
      const { initial, final, begin, end } = schedule;
      if (t < begin) return initial;
      if (t >= end) return final;
      const tq = rampStep(begin, end, schedule.every ?? 1, t);
      if (tq === begin) return initial; // exact, where the formula could be off by a rounding
      const p = (tq - begin) / (end - begin);
      return schedule.kind === 'linear' ? initial + (final - initial) * p : final + (initial - final) * (1 - p) ** 3;
    }
    case 'step': {
      let s = schedule.initial;
      for (const m of schedule.milestones) if (t >= m.step) s = m.sparsity;
      return s;
    }
  }
}

/**
 * Whether masks should be recomputed at step t: step 0 for constant, `step` for oneShot, every milestone for
 * step, and for ramps each begin + j * every in [begin, end] plus end itself.
 */
export function isPruningStep(schedule: SparsitySchedule, t: number): boolean {
  validateSchedule(schedule);
  checkStep('isPruningStep', 'step', t);
  switch (schedule.kind) {
    case 'constant':
      return t === 0;
    case 'oneShot':
      return t === schedule.step;
    case 'linear':
    case 'cubic': {
      const { begin, end } = schedule;
      if (t < begin || t > end) return false;
      return t === end || (t - begin) % (schedule.every ?? 1) === 0;
    }
    case 'step':
      return schedule.milestones.some((m) => m.step === t);
  }
}

// ---- SaRA: progressive re-selection ----

/**
 * SaRA's progressive parameter adjustment (Hu et al. 2024): train the entries selected at step 0 (SaRA:
 * the weights with |w| below a threshold, see `thresholdMask(…, { below: true })`), then at each
 * re-selection step select again on the current weights and train the new set. The reference code
 * re-selects once, half-way through training.
 */
export interface ProgressiveSchedule {
  /** Steps (increasing, > 0) at which the trainable set is selected again. */
  reselectSteps: readonly number[];
}

/** A progressive schedule with `stages` equal stages over `totalSteps` (stages = 2: re-select at the middle). */
export function progressiveSchedule(totalSteps: number, stages = 2): ProgressiveSchedule {
  checkStep('progressiveSchedule', 'totalSteps', totalSteps);
  if (!Number.isSafeInteger(stages) || stages < 1 || stages > Math.max(1, totalSteps)) {
    throw new ArgumentError(`progressiveSchedule: stages must be an integer in [1, ${Math.max(1, totalSteps)}], got ${String(stages)}`);
  }
  const steps: number[] = [];
  for (let j = 1; j < stages; j++) steps.push(Math.floor((j * totalSteps) / stages));
  return { reselectSteps: steps };
}

function checkProgressive(where: string, s: ProgressiveSchedule): void {
  if (!Array.isArray(s?.reselectSteps)) throw new ArgumentError(`${where}: reselectSteps must be an array`);
  let last = 0;
  s.reselectSteps.forEach((t, i) => {
    checkStep(where, `reselectSteps[${i}]`, t);
    if (t <= last) throw new ArgumentError(`${where}: reselectSteps[${i}] (${t}) must be > ${last}`);
    last = t;
  });
}

/** The stage at step t: 0 before the first re-selection, then 1, 2, ... */
export function progressiveStage(schedule: ProgressiveSchedule, t: number): number {
  checkProgressive('progressiveStage', schedule);
  checkStep('progressiveStage', 'step', t);
  let stage = 0;
  for (const r of schedule.reselectSteps) if (t >= r) stage++;
  return stage;
}

/** Whether the trainable set is (re)selected at step t: step 0 and every re-selection step. */
export function isReselectionStep(schedule: ProgressiveSchedule, t: number): boolean {
  checkProgressive('isReselectionStep', schedule);
  checkStep('isReselectionStep', 'step', t);
  return t === 0 || schedule.reselectSteps.includes(t);
}

// ---- Dynamic sparse training: drop and regrow ----

/**
 * When and how much dynamic sparse training (SET, RigL, SpIEL) rewires: every `every` steps from `begin`
 * (default 0) while t < `end`, a fraction of the active entries is dropped and as many regrown. The fraction
 * starts at `fraction` and decays to 0 at `end`: 'cosine' (RigL: f(t) = fraction/2 · (1 + cos(π (t - begin) /
 * (end - begin)))) or 'constant'.
 */
export interface RegrowSchedule {
  every: number;
  begin?: number;
  end: number;
  fraction: number;
  decay?: 'cosine' | 'constant';
}

function checkRegrow(where: string, s: RegrowSchedule): void {
  if (!Number.isSafeInteger(s?.every) || s.every < 1) throw new ArgumentError(`${where}: every must be a positive integer, got ${String(s?.every)}`);
  const begin = checkStep(where, 'begin', s.begin ?? 0);
  const end = checkStep(where, 'end', s.end);
  if (end <= begin) throw new ArgumentError(`${where}: end (${end}) must be after begin (${begin})`);
  if (typeof s.fraction !== 'number' || !(s.fraction >= 0 && s.fraction <= 1)) {
    throw new ArgumentError(`${where}: fraction must be a number in [0, 1], got ${String(s.fraction)}`);
  }
  const decay = s.decay ?? 'cosine';
  if (decay !== 'cosine' && decay !== 'constant') throw new ArgumentError(`${where}: decay must be 'cosine' or 'constant', got ${JSON.stringify(decay)}`);
}

/** The drop fraction at step t (0 before begin and from end on). */
export function dropFractionAt(schedule: RegrowSchedule, t: number): number {
  checkRegrow('dropFractionAt', schedule);
  checkStep('dropFractionAt', 'step', t);
  const begin = schedule.begin ?? 0;
  if (t < begin || t >= schedule.end) return 0;
  if ((schedule.decay ?? 'cosine') === 'constant') return schedule.fraction;
  return (schedule.fraction / 2) * (1 + Math.cos((Math.PI * (t - begin)) / (schedule.end - begin)));
}

/** Whether a drop-and-regrow update happens at step t: begin + j * every, strictly before end. */
export function isRegrowStep(schedule: RegrowSchedule, t: number): boolean {
  checkRegrow('isRegrowStep', schedule);
  checkStep('isRegrowStep', 'step', t);
  const begin = schedule.begin ?? 0;
  return t >= begin && t < schedule.end && (t - begin) % schedule.every === 0;
}

export interface DropAndRegrowOptions {
  /** Scores of the active entries; the lowest are dropped (RigL/SET: |W|; SpIEL: |W - W0|). */
  dropScores: Tensor;
  /**
   * Scores of the inactive entries; the highest are regrown (RigL: |G|; SpIEL: |accumulated G|). Without
   * it, regrowth is uniformly random over the candidates (SET) and `rng` is required.
   */
  growScores?: Tensor;
  /** Fraction of the active entries to rewire, in [0, 1]. */
  fraction: number;
  rng?: Random;
}

export interface DropAndRegrowResult {
  mask: Mask;
  /** Flat indices that were active and are now pruned, increasing. */
  dropped: Int32Array;
  /** Flat indices that were inactive and are now active, increasing (initialize these weights, e.g. to 0). */
  grown: Int32Array;
}

/**
 * One drop-and-regrow step that keeps the number of active entries exactly constant.
 *
 * - Number rewired: d = min(round(fraction * active), inactive), where inactive counts the entries pruned
 *   *before* this step. Candidates for regrowth are only those entries, so a just-dropped entry is never
 *   regrown in the same step (implementations that rank growth candidates after dropping can bring one
 *   straight back); every rewiring is a real change and `dropped` and `grown` are disjoint.
 * - Drop: the d active entries with the lowest dropScores; among ties the higher flat index is dropped first
 *   (equivalently: the active entries are ranked like topKMask, lower index wins, and the last d go).
 * - Grow: the d candidates with the highest growScores (ties: lower flat index first), or d candidates drawn
 *   uniformly without replacement with rng when growScores is absent.
 */
export function dropAndRegrow(mask: Mask, opts: DropAndRegrowOptions): DropAndRegrowResult {
  const where = 'dropAndRegrow';
  validateMask(mask, where);
  const { dropScores, growScores, fraction, rng } = opts ?? ({} as DropAndRegrowOptions);
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
    throw new ArgumentError(`${where}: fraction must be a number in [0, 1], got ${String(fraction)}`);
  }
  const ds = flatValues(dropScores, where, 'dropScores');
  checkSameShape(where, 'mask', mask.shape, 'dropScores', dropScores.shape);
  checkNoNaN(ds, dropScores.shape, where, 'dropScores');
  let gs: Float32Array | Float64Array | undefined;
  if (growScores !== undefined) {
    gs = flatValues(growScores, where, 'growScores');
    checkSameShape(where, 'mask', mask.shape, 'growScores', growScores.shape);
    checkNoNaN(gs, growScores.shape, where, 'growScores');
  } else if (!rng || typeof (rng as Random).sample !== 'function') {
    throw new ArgumentError(`${where}: without growScores, regrowth is random and needs rng (a Random)`);
  }
  const size = sizeOf(mask.shape);
  const active = count(mask);
  const d = Math.min(Math.round(fraction * active), size - active);
  const activeIdx = new Int32Array(active);
  let a = 0;
  forEachKept(mask, (i) => (activeIdx[a++] = i));
  const inactiveIdx = new Int32Array(size - active);
  let b = 0;
  for (let i = 0, j = 0; i < size; i++) {
    if (j < active && activeIdx[j] === i) j++;
    else inactiveIdx[b++] = i;
  }
  // Drop: keep the (active - d) best active entries as topKMask would (lower index wins ties), drop the rest.
  const keepActive = new Uint8Array(active);
  selectTopK(gather(activeIdx, ds), active - d, true, (j) => (keepActive[j] = 1));
  const dropped = activeIdx.filter((_, j) => keepActive[j] === 0);
  let grown: Int32Array;
  if (gs) {
    const picked = new Uint8Array(inactiveIdx.length);
    selectTopK(gather(inactiveIdx, gs), d, true, (j) => (picked[j] = 1));
    grown = inactiveIdx.filter((_, j) => picked[j] === 1);
  } else {
    grown = Int32Array.from(rng!.sample(d, inactiveIdx.length), (j) => inactiveIdx[j]!).sort();
  }
  const bits = new Uint32Array(maskWords(size));
  bits.set(mask.bits);
  for (const i of dropped) bits[i >>> 5]! &= ~(1 << (i & 31));
  for (const i of grown) bits[i >>> 5]! |= 1 << (i & 31);
  return { mask: { shape: [...mask.shape], bits }, dropped, grown };
}

/** The scores of the candidate indices, in candidate order (same array kind, so float32 stays exact). */
function gather(candidates: Int32Array, scores: Float32Array | Float64Array): Float32Array | Float64Array {
  const out = scores instanceof Float32Array ? new Float32Array(candidates.length) : new Float64Array(candidates.length);
  for (let j = 0; j < candidates.length; j++) out[j] = scores[candidates[j]!]!;
  return out;
}
