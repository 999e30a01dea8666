// train method 'gmp': gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"). The
// stage trains through W ⊙ M while the sparsity of the targeted layers rises on the cubic schedule
// s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n Δt))³ (gmpSchedule of @sparse/pruners, t = steps done); at each
// update step (t0, t0 + every, ... before end, and end) the masks are recomputed from |W| under the budget.
//
// Masks never leak: an update sets the newly pruned weights to exactly 0 and zeroes their Adam moments
// (NamedAdam.resetEntries); the forward through W ⊙ M gives them a zero gradient, so Adam's step on them
// is exactly 0 until the next update. Masks only shrink (a pruned entry is never chosen again).
//
// N:M (`pattern: { n, m }`, final sparsity 1 − n/m): the same cubic schedule, and at each update every group
// of m consecutive inputs of a row keeps k_t = round((1 − s_t) · m) (gmpGroupKeep, clamped to [n, m]) of
// its largest |W|: dense, then (m−1):m, ..., then n:m from the update at end; ctx.pattern is n:m afterwards.
//
// Structured (`structure: 'neurons' | 'heads'`, structures.ts): the same schedule over whole MLP hidden units
// or attention heads; at each update every block keeps max(1, round((1 − s_t) · count)) of its alive
// structures with the largest L2 norm (or one ranking across blocks with budget 'global'), and a pruned
// structure's rows and columns are masked in every member layer.
//
// Resume: the masks are run masks (checkpointed) and the schedule is a function of the step, so a resumed
// stage redoes exactly the updates it had not done; the stage state records the last update for the record.

import { applyMask, count, isPruningStep, sparsityAt, type Mask } from '@sparse/masks';
import { gmpConfigSchema, gmpGroupKeep, gmpSchedule, type GMPConfig } from '@sparse/pruners';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { NamedAdam } from '../../train/adam.js';
import type { TrainerMethod } from '../types.js';
import { magnitudeMasksByBudget, nmMagnitudeMaskWithin } from './sparse-budgets.js';
import { aliveStructures, headSets, neuronSets, structureMasks, structureSquares } from './structures.js';
import { refuseAttachedAdapter } from './weights.js';

export const gmpMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'gmp',
  describe: 'gradual magnitude pruning (Zhu & Gupta 2017): |W| masks on a cubic sparsity schedule while training, per layer, global, ER or ERK budgets, to N:M through coarser patterns, or of whole MLP neurons / attention heads by norm',
  paper: 'Zhu & Gupta 2017, To prune, or not to prune: exploring the efficacy of pruning for model compression',
  differs: [],
  schema: gmpConfigSchema,
  from: '@sparse/pruners',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainGMP(args);
  },
};

/** What a GMP update logs (event 'gmp') and a checkpoint keeps (stage state 'gmp'). */
export interface GMPUpdate {
  /** Steps done when the masks were recomputed. */
  step: number;
  /** The schedule's sparsity then. */
  sparsity: number;
  /** Entries each targeted layer keeps (structures kept per block with `structure`). */
  kept: Record<string, number>;
  /** With a pattern: entries kept in every group of m. */
  group?: number;
}

async function trainGMP(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as GMPConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  if (cfg.pattern) {
    for (const l of layers) {
      if (l.in % cfg.pattern.m !== 0) throw new Error(`stages[${index}].config.pattern.m: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.pattern.m}`);
    }
  }
  const schedule = gmpSchedule(cfg, stage.steps);
  let last = args.resume?.stageState?.gmp as GMPUpdate | undefined;
  const sets = cfg.structure === undefined ? undefined : cfg.structure === 'neurons' ? neuronSets(layers) : headSets(layers, Number(ctx.model.spec.heads));
  if (sets !== undefined && sets.length === 0) {
    throw new Error(`stages[${index}].config.structure: the targeted layers have no ${cfg.structure === 'neurons' ? 'dense MLP (up and down projections of one block)' : 'attention (query and output projections of one block)'} to prune ${cfg.structure} from`);
  }

  /** Structured update: each set keeps the round((1 − s) · count) alive structures of largest norm (at least one; 'global' ranks across sets). */
  const structuredUpdate = (s: number): { kept: Record<string, number>; changed: Map<string, Mask> } => {
    const alive = sets!.map((set) => aliveStructures(set, ctx.masks));
    const norms = sets!.map((set) => structureSquares(set, (n) => coreOf(ctx.model.params[n]!).data as Float32Array));
    const keep = sets!.map((set) => new Uint8Array(set.count));
    const ranked = (i: number) => Array.from({ length: sets![i]!.count }, (_, g) => g).filter((g) => alive[i]![g] === 1).sort((a, b) => norms[i]![b]! - norms[i]![a]! || a - b);
    if (cfg.budget === 'global') {
      const total = sets!.reduce((n, set) => n + set.count, 0);
      let budget = Math.max(sets!.length, Math.round((1 - s) * total));
      // every set keeps its best structure, then the rest by norm across sets
      const rest: { i: number; g: number; norm: number }[] = [];
      sets!.forEach((_, i) => {
        const r = ranked(i);
        if (r.length > 0) {
          keep[i]![r[0]!] = 1;
          budget--;
        }
        for (const g of r.slice(1)) rest.push({ i, g, norm: norms[i]![g]! });
      });
      rest.sort((a, b) => b.norm - a.norm || a.i - b.i || a.g - b.g);
      for (const x of rest.slice(0, Math.max(0, budget))) keep[x.i]![x.g] = 1;
    } else {
      sets!.forEach((set, i) => {
        for (const g of ranked(i).slice(0, Math.max(1, Math.round((1 - s) * set.count)))) keep[i]![g] = 1;
      });
    }
    const kept = Object.fromEntries(sets!.map((set, i) => [`block ${set.block}`, keep[i]!.reduce((a, b) => a + b, 0)]));
    return { kept, changed: structureMasks(sets!, keep, ctx.masks) };
  };

  /** The masks at `t` steps done (when the schedule says so); newly pruned weights become 0 with zero moments. */
  const update = (t: number, optimizer?: NamedAdam) => {
    if (!isPruningStep(schedule, t)) return;
    const s = sparsityAt(schedule, t);
    if (sets !== undefined) {
      const { kept, changed } = structuredUpdate(s);
      for (const [name, m] of changed) {
        const before = ctx.masks.get(name);
        if (before !== undefined ? count(m) === count(before) : count(m) === m.shape[0]! * m.shape[1]!) continue;
        const v = ctx.model.params[name]!;
        assignValues(v, applyMask(m, coreOf(v)).data as Float32Array);
        ctx.setMask(name, m);
        optimizer?.resetEntries(name, ctx.maskTensor(name)!);
      }
      last = { step: t, sparsity: s, kept };
      ctx.log.event({ event: 'gmp', stage: index, structure: cfg.structure, ...last });
      return;
    }
    const current = layers.map((l) => ({ name: l.name, weight: coreOf(ctx.model.params[l.name]!), mask: ctx.masks.get(l.name) }));
    // N:M: k of every m per group while k < m; at k = m (dense groups) nothing is pruned yet
    const group = cfg.pattern ? gmpGroupKeep(cfg.pattern, s) : undefined;
    const next =
      cfg.pattern === undefined
        ? magnitudeMasksByBudget(current, s, cfg.budget, cfg.erkPowerScale)
        : new Map(current.filter((c) => group! < cfg.pattern!.m).map((c) => [c.name, nmMagnitudeMaskWithin(c, group!, cfg.pattern!.m)]));
    const kept: Record<string, number> = {};
    for (const l of layers) {
      const m = next.get(l.name) ?? ctx.masks.get(l.name);
      const k = m ? count(m) : l.out * l.in;
      kept[l.name] = k;
      if (m === undefined) continue;
      const before = ctx.masks.get(l.name);
      // nothing pruned: a dense layer stays without a mask, a pruned one keeps its mask
      if ((before === undefined && k === l.out * l.in) || (before !== undefined && k === count(before))) continue;
      const v = ctx.model.params[l.name]!;
      assignValues(v, applyMask(m, coreOf(v)).data as Float32Array);
      ctx.setMask(l.name, m);
      optimizer?.resetEntries(l.name, ctx.maskTensor(l.name)!);
    }
    last = { step: t, sparsity: s, kept, ...(group !== undefined ? { group } : {}) };
    ctx.log.event({ event: 'gmp', stage: index, ...last });
  };

  const hooks = ctx.hooks({ maskBase: true });
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    // before step t + 1: the update due at t steps done
    beforeStep: (step, optimizer) => update(step - 1, optimizer),
    stageState: () => (last ? { gmp: last } : {}),
  });
  // the update at end when end is the stage's last step (nothing trains after it: no moments to reset)
  update(stage.steps);
  // the update at end left n of every m (the ramp ends within the stage); unstructured masks have no pattern
  ctx.pattern = cfg.pattern ? { n: cfg.pattern.n, m: cfg.pattern.m } : undefined;
  if (sets !== undefined) {
    const alive = sets.map((set) => aliveStructures(set, ctx.masks).reduce((a, b) => a + b, 0));
    const all = sets.reduce((n, set) => n + set.count, 0);
    const pruned = 1 - alive.reduce((a, b) => a + b, 0) / all;
    ctx.pattern = undefined;
    ctx.log.say(`${args.label}: gradual structured pruning of ${cfg.structure}: ${alive.join(', ')} of ${sets.map((x) => x.count).join(', ')} kept per block (${(pruned * 100).toFixed(1)}% pruned, ${cfg.budget} budget)`);
    return { summary: `GMP ${cfg.structure} ${(cfg.sparsity * 100).toFixed(0)}% (${cfg.budget}), reached ${(pruned * 100).toFixed(1)}% of ${cfg.structure} pruned, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  }
  const total = layers.reduce((n, l) => n + l.out * l.in, 0);
  const keptNow = layers.reduce((n, l) => n + (ctx.masks.has(l.name) ? count(ctx.masks.get(l.name)!) : l.out * l.in), 0);
  const reached = total === 0 ? 0 : 1 - keptNow / total;
  ctx.log.say(`${args.label}: gradual magnitude pruning to ${(reached * 100).toFixed(1)}% over ${layers.length} layers (${cfg.pattern ? `to ${cfg.pattern.n}:${cfg.pattern.m}` : `${cfg.budget} budget`}), cubic from step ${schedule.begin} to ${schedule.end} every ${cfg.every}`);
  return { summary: `GMP ${cfg.pattern ? `${cfg.pattern.n}:${cfg.pattern.m}` : `${(cfg.sparsity * 100).toFixed(0)}% (${cfg.budget})`}, reached ${(reached * 100).toFixed(1)}%, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}
