// Dynamic sparse training at constant sparsity, shared by the train methods 'set', 'rigl' and 'srigl': the
// targeted linear layers train through their masks (forward with W ⊙ M, so inactive weights get a zero
// gradient) and every `every` steps a fraction of each layer's active weights is dropped (smallest |w|)
// and as many inactive ones regrown by @sparse/masks' dropAndRegrow: at random (SET) or by the largest
// dense-gradient magnitude (RigL); SRigL's constant fan-in step is @sparse/nm's constantFanInRegrow
// (every row keeps the same number of inputs). Each layer keeps exactly its count of active weights.
//
// Masks never leak: dropped and regrown weights are set to exactly 0 and their Adam moments to 0
// (NamedAdam.resetEntries), so a dropped weight never moves again and a regrown one starts fresh at zero.
// Resume is exact: the masks are run masks (saved by every checkpoint), and the regrowth draws and
// RigL's gradient batches come from samplers whose states ride in the stage state.
//
// Departures from the papers: the first update is after `every` steps, not at step 0 (the mask was
// just drawn); an entry dropped at an update is not a regrowth candidate in the same update
// (dropAndRegrow's rule, so every rewiring is a real change); RigL's dense gradient is taken on a batch
// of its own sampler rather than the step's batch (the loop draws the step's batch after the update).

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, count, countPerRow, dropAndRegrow, dropFractionAt, isRegrowStep, maskFromIndices, type Mask, type RegrowSchedule } from '@sparse/masks';
import type { SETConfig } from '@sparse/masks/schemas';
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
import { keepCounts } from './sparse-budgets.js';
import { refuseAttachedAdapter } from './weights.js';

/** The fields SET and RigL share (their schemas differ in defaults only). */
export type DSTConfig = SETConfig;

/** How the inactive entries to regrow are chosen. */
export type Regrowth = 'random' | 'gradient' | 'fan-in';

/** A DST train method: SET ('random') and RigL ('gradient') are this with their schema. */
export function dstMethod(spec: { name: string; describe: string; schema: z.ZodType; regrowth: Regrowth; from?: string }): TrainerMethod<'train'> {
  return {
    kind: 'train',
    name: spec.name,
    describe: spec.describe,
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
export function initialMasks(layers: readonly LinearInfo[], cfg: DSTConfig, rng: Random, fanIn = false): Map<string, Mask> {
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
}

/**
 * One drop-and-regrow update of every layer (each keeps its active count): drop the smallest |w|,
 * regrow by |grads| when given (RigL) or at random with rng (SET); dropped and regrown weights become
 * exactly 0 with zero Adam moments; the new masks become the run's.
 */
export function rewire(
  ctx: RunContext,
  layers: readonly LinearInfo[],
  opts: { fraction: number; rng: Random; grads?: ReadonlyMap<string, Float32Array>; optimizer?: NamedAdam; fanIn?: boolean },
): Map<string, RewireResult> {
  const out = new Map<string, RewireResult>();
  for (const l of layers) {
    const v = ctx.model.params[l.name]!;
    const w = coreOf(v);
    const g = opts.grads?.get(l.name);
    const mask = ctx.masks.get(l.name)!;
    const r = opts.fanIn
      ? constantFanInRegrow(mask, { weights: w, grads: tensor(g!, w.shape), fraction: opts.fraction })
      : dropAndRegrow(mask, {
          dropScores: tensor(w.data.map(Math.abs), w.shape),
          ...(g ? { growScores: tensor(g.map(Math.abs), w.shape) } : {}),
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
    out.set(l.name, { dropped: r.dropped, grown: r.grown });
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

async function trainDST(args: StageArgs<StageOf<'train'>>, name: string, regrowth: Regrowth): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as DSTConfig;
  const where = `stages[${args.index}]`;
  const layers = selectLinears(ctx.linears(), stage.targets, where);
  // both samplers continue from the checkpoint on resume
  const rng = stageRng(args, 'regrow');
  const gradBatches = regrowth !== 'random' ? stageRng(args, 'gradBatches') : undefined;
  const fanIn = regrowth === 'fan-in';
  let start = "the run's masks";
  if (!args.resume) {
    const masked = layers.filter((l) => ctx.masks.has(l.name));
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
  }
  ctx.pattern = undefined; // rewiring keeps counts, not an N:M pattern
  const schedule = dstSchedule(cfg, stage.steps);
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = windowLength(args, data);
  const hooks = ctx.hooks({ maskBase: true });
  let updates = 0;
  const beforeStep = (step: number, optimizer: NamedAdam) => {
    const t = updateAt(schedule, step);
    if (t === undefined) return;
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
    const r = rewire(ctx, layers, { fraction, rng, optimizer, fanIn, ...(grads ? { grads } : {}) });
    updates++;
    ctx.log.event({ event: 'rewire', stage: args.index, label: args.label, step: t, fraction, rewired: Object.fromEntries([...r].map(([n, x]) => [n, x.dropped.length])) });
  };
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    beforeStep,
    stageState: () => ({ regrow: rng.state(), ...(gradBatches ? { gradBatches: gradBatches.state() } : {}) }),
  });
  const kept = layers.reduce((a, l) => a + count(ctx.masks.get(l.name)!), 0);
  const total = layers.reduce((a, l) => a + l.out * l.in, 0);
  return {
    summary: `${name} from ${start}: density ${(kept / total).toFixed(3)}, ${updates} update${updates === 1 ? '' : 's'} in this process, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}`,
  };
}
