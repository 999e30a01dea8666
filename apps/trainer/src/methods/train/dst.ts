// Dynamic sparse training at constant sparsity, shared by the train methods 'set', 'rigl' and 'srigl': the
// targeted linear layers train through their masks (forward with W ⊙ M, so inactive weights get a zero
// gradient) and every `every` steps a fraction of each layer's active weights is dropped (smallest |w|)
// and as many inactive ones regrown by @sparse/masks' dropAndRegrow: at random (SET) or by the largest
// dense-gradient magnitude (RigL); SRigL's constant fan-in step is @sparse/nm's constantFanInRegrow
// (every row keeps the same number of inputs); 'exploration' (Huang et al. 2023) regrows by |dense gradient|
// plus an upper-confidence bonus for entries that have rarely been active (activity.ts). Each layer keeps
// exactly its count of active weights, except under SRigL's dynamic neuron ablation (gammaSal > 0): there a
// layer of budget B (its count when the stage started) with n neurons left holds n · ⌊B / n⌋ entries (the
// authors' code rounds so), and its count moves with the number of neurons ablated (the budgets ride in
// the stage state; on the sparse path the packed layer is resized).
//
// Masks never leak: dropped and regrown weights are set to exactly 0 and their Adam moments to 0
// (NamedAdam.resetEntries), so a dropped weight never moves again and a regrown one starts fresh at zero.
// Resume is exact: the masks are run masks (saved by every checkpoint), and the regrowth draws and
// RigL's gradient batches come from samplers whose states ride in the stage state, as do the exploration
// method's activity counts.
//
// Departures from the papers: the first update is after `every` steps, not at step 0 (the mask was
// just drawn); an entry dropped at an update is not a regrowth candidate in the same update
// (dropAndRegrow's rule, so every rewiring is a real change); RigL's dense gradient is taken on a batch
// of its own sampler rather than the step's batch (the loop draws the step's batch after the update).

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, count, countPerRow, dropAndRegrow, dropFractionAt, isRegrowStep, maskFromIndices, type Mask, type RegrowSchedule } from '@sparse/masks';
import type { ExplorationConfig, SETConfig, SRigLConfig } from '@sparse/masks/schemas';
import { constantFanInRegrow } from '@sparse/nm';
import { tensor, type Random } from '@sparse/tensor';
import type { z } from 'zod';
import { sampleBatch } from '../../data/dataset.js';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { assignValues, coreOf, selectLinears, stageRng, windowLength, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { NamedAdam } from '../../train/adam.js';
import type { TrainerMethod } from '../types.js';
import { ActivityCounts, explorationBonus, type ActivityState } from './activity.js';
import { keepCounts } from './sparse-budgets.js';
import { maskedTraining, refuseAttachedAdapter } from './weights.js';

/** The fields SET and RigL share (their schemas differ in defaults only). */
export type DSTConfig = SETConfig;

/** The fields that draw a random mask: `sparsity` split over the layers by `budget`. */
export type RandomBudget = Pick<DSTConfig, 'sparsity' | 'budget' | 'erkPowerScale'>;

/** How the inactive entries to regrow are chosen ('exploration': |dense gradient| plus the activity bonus). */
export type Regrowth = 'random' | 'gradient' | 'fan-in' | 'exploration';

/** A DST train method: SET ('random') and RigL ('gradient') are this with their schema. */
export function dstMethod(spec: { name: string; describe: string; paper: string; differs: readonly string[]; schema: z.ZodType; regrowth: Regrowth; from?: string }): TrainerMethod<'train'> {
  return {
    kind: 'train',
    sparsePath: true,
    name: spec.name,
    describe: spec.describe,
    paper: spec.paper,
    differs: spec.differs,
    schema: spec.schema,
    from: spec.from ?? '@sparse/masks',
    run: (args) => {
      refuseAttachedAdapter(args);
      return trainDST(args, spec.name, spec.regrowth);
    },
  };
}

/** The stage's regrow schedule: `end` (a fraction of the stage) as a step, at least 1. */
export function dstSchedule(cfg: DSTConfig, steps: number): RegrowSchedule {
  return { every: cfg.every, begin: 0, end: Math.max(1, Math.round(cfg.end * steps)), fraction: cfg.fraction, decay: cfg.decay };
}

/** The number of steps done when the update before 1-based `step` happens, or undefined if none does. */
export function updateAt(schedule: RegrowSchedule, step: number): number | undefined {
  const t = step - 1;
  return t > 0 && isRegrowStep(schedule, t) ? t : undefined;
}

/**
 * Random masks with each layer's keep count of layerBudgets(sparsity, budget) (sparse-budgets.ts, shared
 * with gmp); with `fanIn`, every row keeps round(keep / rows) inputs (at least 1), drawn row by row.
 */
export function initialMasks(layers: readonly LinearInfo[], cfg: RandomBudget, rng: Random, fanIn = false): Map<string, Mask> {
  const keeps = keepCounts(layers.map((l) => ({ name: l.name, shape: [l.out, l.in] })), cfg.sparsity, cfg.budget, cfg.erkPowerScale);
  return new Map(
    layers.map((l, i) => {
      if (!fanIn) return [l.name, maskFromIndices([l.out, l.in], rng.sample(keeps[i]!, l.out * l.in))];
      const k = fanInOf(keeps[i]!, l);
      const idx = new Int32Array(l.out * k);
      for (let r = 0; r < l.out; r++) rng.sample(k, l.in).forEach((c, j) => (idx[r * k + j] = r * l.in + c));
      return [l.name, maskFromIndices([l.out, l.in], idx)];
    }),
  );
}

/** A layer's constant fan-in for a budget of `keep` entries: round(keep / rows), in [1, inputs]. */
export function fanInOf(keep: number, l: LinearInfo): number {
  return Math.min(l.in, Math.max(1, Math.round(keep / l.out)));
}

/**
 * The dense gradient of the loss on (ids, targets) with respect to each layer's effective weight W ⊙ M
 * (RigL's regrowth score: what the gradient of an inactive weight would be if it were active).
 */
export function denseGradients(ctx: RunContext, layers: readonly LinearInfo[], ids: tf.Tensor2D, targets: tf.Tensor2D): Map<string, Float32Array> {
  const base = ctx.hooks({ maskBase: true });
  const at = new Map(layers.map((l, i) => [l.name, i]));
  const out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const effective = layers.map((l) => {
      const p = ctx.model.params[l.name]!;
      const m = ctx.maskTensor(l.name);
      return m ? tf.mul(p, m) : p;
    });
    const grads = tf.grads((...xs: tf.Tensor[]) => ctx.model.loss(ids, targets, { weight: (name, p) => (at.has(name) ? xs[at.get(name)!]! : base.weight!(name, p)) }))(effective);
    layers.forEach((l, i) => out.set(l.name, Float32Array.from(grads[i]!.dataSync() as Float32Array)));
  });
  return out;
}

export interface RewireResult {
  dropped: Int32Array;
  grown: Int32Array;
  /** With SRigL's ablation: the rows with no active entry after the update (ablated neurons), increasing. */
  ablated?: Int32Array;
  /** With SRigL's ablation: the fan-in of every active row after the update. */
  fanIn?: number;
}

/** SRigL's dynamic neuron ablation: γ_sal and each layer's budget B of active entries (constantFanInRegrow's ablation). */
export interface FanInAblation {
  gammaSal: number;
  budgets: ReadonlyMap<string, number>;
}

/**
 * One drop-and-regrow update of every layer (each keeps its active count, but see `ablation`): drop the
 * smallest |w|, regrow by |grads| when given (RigL), plus `bonus` when given (exploration), or at random
 * with rng (SET); with `fanIn` every row keeps the same fan-in (SRigL), and with `ablation` neurons with
 * too few salient weights lose their whole row, the others sharing the layer's budget. Dropped and
 * regrown weights (an ablated row's included) become exactly 0 with zero Adam moments; the new masks
 * become the run's.
 */
export function rewire(
  ctx: RunContext,
  layers: readonly LinearInfo[],
  opts: { fraction: number; rng: Random; grads?: ReadonlyMap<string, Float32Array>; bonus?: ReadonlyMap<string, Float32Array>; optimizer?: NamedAdam; fanIn?: boolean; ablation?: FanInAblation },
): Map<string, RewireResult> {
  const out = new Map<string, RewireResult>();
  for (const l of layers) {
    const v = ctx.model.params[l.name]!;
    const w = coreOf(v);
    const g = opts.grads?.get(l.name);
    const b = opts.bonus?.get(l.name);
    const mask = ctx.masks.get(l.name)!;
    const ablation = opts.fanIn && opts.ablation ? { gammaSal: opts.ablation.gammaSal, budget: opts.ablation.budgets.get(l.name)! } : undefined;
    const f = opts.fanIn ? constantFanInRegrow(mask, { weights: w, grads: tensor(g!, w.shape), fraction: opts.fraction, ...(ablation ? { ablation } : {}) }) : undefined;
    const r =
      f ??
      dropAndRegrow(mask, {
        dropScores: tensor(w.data.map(Math.abs), w.shape),
        ...(g ? { growScores: tensor(b ? Float32Array.from(g, (x, i) => Math.abs(x) + b[i]!) : g.map(Math.abs), w.shape) } : {}),
        fraction: opts.fraction,
        rng: opts.rng,
      });
    if (r.dropped.length + r.grown.length > 0) {
      const keep = new Float32Array(w.data.length).fill(1);
      for (const i of r.dropped) w.data[i] = keep[i] = 0;
      for (const i of r.grown) w.data[i] = keep[i] = 0;
      assignValues(v, w.data);
      if (opts.optimizer) {
        const k = tf.tensor(keep, w.shape);
        opts.optimizer.resetEntries(l.name, k);
        k.dispose();
      }
    }
    ctx.setMask(l.name, r.mask);
    out.set(l.name, { dropped: r.dropped, grown: r.grown, ...(f && ablation ? { ablated: f.ablated, fanIn: f.fanIn } : {}) });
  }
  return out;
}

/** Sets the weights outside each layer's run mask to exactly 0. */
function zeroOutside(ctx: RunContext, layers: readonly LinearInfo[]): void {
  for (const l of layers) {
    const v = ctx.model.params[l.name]!;
    assignValues(v, applyMask(ctx.masks.get(l.name)!, coreOf(v)).data as Float32Array);
  }
}

/**
 * The masks a sparse-from-scratch stage starts from (not on resume): random ones at cfg's budget when no
 * targeted layer is pruned, or the run's masks when all are (a partly pruned stage is refused; `fanIn`
 * masks must have a constant fan-in); the weights outside them become exactly 0. Returns what it started from.
 */
export function startMasks(args: StageArgs<StageOf<'train'>>, layers: readonly LinearInfo[], cfg: RandomBudget, rng: Random, name: string, fanIn = false): string {
  const { ctx } = args;
  const where = `stages[${args.index}]`;
  const masked = layers.filter((l) => ctx.masks.has(l.name));
  let start = "the run's masks";
  if (masked.length === 0) {
    for (const [n, m] of initialMasks(layers, cfg, rng, fanIn)) ctx.setMask(n, m);
    start = `random masks at sparsity ${cfg.sparsity} (${cfg.budget})`;
  } else if (masked.length < layers.length) {
    const bare = layers.filter((l) => !ctx.masks.has(l.name)).map((l) => l.name);
    throw new Error(`${where}: ${name} needs all or none of its layers pruned; ${bare.join(', ')} ${bare.length === 1 ? 'has' : 'have'} no mask (set targets, or prune them first)`);
  } else {
    for (const l of fanIn ? layers : []) {
      const rows = countPerRow(ctx.masks.get(l.name)!).filter((c) => c > 0);
      if (rows.some((c) => c !== rows[0])) throw new Error(`${where}: ${name} keeps a constant fan-in, but the run's mask of ${l.name} has rows with ${Math.min(...rows)} to ${Math.max(...rows)} inputs`);
    }
    ctx.log.say(`${args.label}: starting from the run's masks, each layer keeps its count (config.sparsity and budget are not used)`);
  }
  zeroOutside(ctx, layers);
  return start;
}

async function trainDST(args: StageArgs<StageOf<'train'>>, name: string, regrowth: Regrowth): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as DSTConfig;
  const where = `stages[${args.index}]`;
  const layers = selectLinears(ctx.linears(), stage.targets, where);
  // both samplers continue from the checkpoint on resume
  const rng = stageRng(args, 'regrow');
  const gradBatches = regrowth !== 'random' ? stageRng(args, 'gradBatches') : undefined;
  const fanIn = regrowth === 'fan-in';
  const start = args.resume ? "the run's masks" : startMasks(args, layers, cfg, rng, name, fanIn);
  // exploration: the steps each entry has been active, continued from the checkpoint on resume
  const saved = args.resume?.stageState?.activity as ActivityState | undefined;
  if (regrowth === 'exploration' && args.resume && saved === undefined) throw new Error(`${where}: the checkpoint has no exploration counts (stage state 'activity') to resume ${name} from`);
  const activity = regrowth === 'exploration' ? (saved ? ActivityCounts.fromState(saved, layers) : ActivityCounts.fresh(layers)) : undefined;
  // SRigL's neuron ablation: each layer's budget B is its count when the stage started, carried in the stage state
  const gammaSal = fanIn ? (cfg as SRigLConfig).gammaSal : 0;
  const ablation = gammaSal > 0 ? { gammaSal, budgets: fanInBudgets(args, layers, where, name) } : undefined;
  ctx.pattern = undefined; // rewiring keeps counts, not an N:M pattern
  const schedule = dstSchedule(cfg, stage.steps);
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = windowLength(args, data);
  const path = maskedTraining(args, layers);
  let updates = 0;
  const beforeStep = (step: number, optimizer: NamedAdam) => {
    const t = updateAt(schedule, step);
    if (t === undefined) return;
    // the update reads and writes the dense weights; packed layers are packed again after it
    path.sparse?.syncDense();
    const fraction = dropFractionAt(schedule, t);
    let grads: Map<string, Float32Array> | undefined;
    if (gradBatches) {
      const b = sampleBatch(data, stage.batch, len, gradBatches);
      const ids = tf.tensor2d(b.inputs, [stage.batch, len], 'int32');
      const targets = tf.tensor2d(b.targets, [stage.batch, len], 'int32');
      try {
        grads = denseGradients(ctx, layers, ids, targets);
      } finally {
        tf.dispose([ids, targets]);
      }
    }
    let bonus: Map<string, Float32Array> | undefined;
    if (activity) {
      activity.advance(t, (n) => ctx.masks.get(n)!);
      const c = (cfg as ExplorationConfig).c;
      bonus = new Map(layers.map((l) => [l.name, explorationBonus(activity.counts.get(l.name)!, t, c)]));
    }
    const r = rewire(ctx, layers, { fraction, rng, optimizer, fanIn, ...(grads ? { grads } : {}), ...(bonus ? { bonus } : {}), ...(ablation ? { ablation } : {}) });
    for (const l of layers) path.sparse?.repack(l.name, ctx.masks.get(l.name)!, optimizer);
    updates++;
    // exploration: how many of the regrown entries had never been active in this stage
    const fresh = activity ? { fresh: Object.fromEntries([...r].map(([n, x]) => [n, x.grown.filter((i) => activity.counts.get(n)![i] === 0).length])) } : {};
    // SRigL's ablation: the neurons of each layer ablated after this update, and the fan-in of the others
    const ablated = ablation ? { ablated: Object.fromEntries([...r].map(([n, x]) => [n, x.ablated!.length])), fanIn: Object.fromEntries([...r].map(([n, x]) => [n, x.fanIn!])) } : {};
    ctx.log.event({ event: 'rewire', stage: args.index, label: args.label, step: t, fraction, rewired: Object.fromEntries([...r].map(([n, x]) => [n, x.dropped.length])), ...fresh, ...ablated });
  };
  let r;
  try {
    r = await optimize(args, stage, {
      variables: path.variables,
      loss: (ids, targets) => ctx.model.loss(ids, targets, path.hooks),
      beforeStep,
      stageState: () => ({
        regrow: rng.state(),
        ...(gradBatches ? { gradBatches: gradBatches.state() } : {}),
        ...(activity ? { activity: activity.state() } : {}),
        ...(ablation ? { fanInBudget: Object.fromEntries(ablation.budgets) } : {}),
      }),
      ...(path.sparse ? { sparse: path.sparse } : {}),
    });
  } finally {
    path.sparse?.dispose();
  }
  const kept = layers.reduce((a, l) => a + count(ctx.masks.get(l.name)!), 0);
  const total = layers.reduce((a, l) => a + l.out * l.in, 0);
  let coverage = '';
  if (activity) {
    // the share of entries active at some step of the stage (the paper's coverage)
    activity.advance(stage.steps, (n) => ctx.masks.get(n)!);
    const seen = [...activity.counts.values()].reduce((a, c) => a + c.reduce((k, n) => k + (n > 0 ? 1 : 0), 0), 0);
    coverage = `, ${((100 * seen) / Math.max(1, total)).toFixed(1)}% of entries active at some step`;
  }
  let neurons = '';
  if (ablation) {
    // neurons ablated at the end (rows with no active entry) and in how many layers
    const off = layers.map((l) => countPerRow(ctx.masks.get(l.name)!).filter((c) => c === 0).length);
    const rows = layers.reduce((a, l) => a + l.out, 0);
    const hit = off.filter((n) => n > 0).length;
    neurons = `, ${off.reduce((a, n) => a + n, 0)} of ${rows} neurons ablated (γ_sal ${ablation.gammaSal}) in ${hit} of ${layers.length} layer${layers.length === 1 ? '' : 's'}`;
  }
  return {
    summary: `${name} from ${start}: density ${(kept / total).toFixed(3)}, ${updates} update${updates === 1 ? '' : 's'} in this process${coverage}${neurons}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}`,
  };
}

/**
 * Each layer's budget of active entries for SRigL's neuron ablation: its count at the stage's start (a
 * fresh stage, after startMasks), else the stage state's `fanInBudget`. A checkpoint without it (written
 * before the ablation existed) is accepted only while no row is empty: nothing can have been ablated,
 * so the count is still the budget.
 */
function fanInBudgets(args: StageArgs<StageOf<'train'>>, layers: readonly LinearInfo[], where: string, name: string): Map<string, number> {
  const { ctx } = args;
  const saved = args.resume?.stageState?.fanInBudget as Record<string, number> | undefined;
  if (saved !== undefined) {
    const budgets = new Map(layers.map((l) => [l.name, saved[l.name]]));
    for (const [n, b] of budgets) if (!(Number.isSafeInteger(b) && b! > 0)) throw new Error(`${where}: the checkpoint's stage state 'fanInBudget' has no budget for ${n}`);
    return budgets as Map<string, number>;
  }
  if (args.resume) {
    const empty = layers.filter((l) => countPerRow(ctx.masks.get(l.name)!).some((c) => c === 0)).map((l) => l.name);
    if (empty.length > 0) throw new Error(`${where}: the checkpoint has no neuron-ablation budgets (stage state 'fanInBudget') to resume ${name} from, and ${empty.join(', ')} ${empty.length === 1 ? 'has' : 'have'} ablated neurons`);
  }
  const budgets = new Map(layers.map((l) => [l.name, count(ctx.masks.get(l.name)!)]));
  for (const l of layers) {
    const b = budgets.get(l.name)!;
    if (b < l.out) throw new Error(`${where}: ${name}'s neuron ablation spreads a layer's count over its rows, but the run's mask of ${l.name} has ${b} active entries for ${l.out} rows (set gammaSal: 0)`);
  }
  return budgets;
}
