// What the train methods 'imp' and 'swamp' share: iterative magnitude pruning with weight rewinding
// (Frankle & Carbin 2019; Frankle et al. 2020, "Linear Mode Connectivity and the Lottery Ticket
// Hypothesis"), and SWAMP (Choi et al. 2023), which trains several particles from each ticket and prunes
// from their mean. IMP is SWAMP with one particle.
//
// The stage's steps (lotteryLayout of @sparse/pruners): k = rewindStep steps of dense training, after which
// every parameter's value is saved (the rewind point; k = 0: the values the stage starts from), then
// rounds + 1 phases, each of `particles` segments of L steps. Every segment starts from the saved values
// with the targeted weights masked (the ticket), fresh Adam moments and its own batch sampler (a fork per
// phase and particle), and trains L steps at the learning rates of steps k + 1 .. k + L of a (k + L)-step
// warmup + cosine schedule (the rewound schedule). After the last segment of a phase the model takes the
// exact mean of the particles' values (each parameter summed in float64 in particle order, divided, rounded
// to float32), and phases 1 .. rounds end by pruning: each layer keeps round(K₀ · (1 − rate)^r) of its
// largest |W| among its kept entries ('layer', K₀ its kept count when the stage began) or one |W| ranking
// keeps round(ΣK₀ · (1 − rate)^r) ('global'). The final phase trains the last ticket; its mean is the model.
//
// Masks never leak: each segment starts with the pruned weights at exactly 0 and zero Adam moments, trains
// through W ⊙ M (a zero gradient off the mask), and the mean of zeros is zero.
//
// Resume is exact inside any segment: a checkpoint holds the rewind point's values and the float64 sums of
// the finished particles of the phase as typed arrays of its stage state (tensors of the checkpoint file),
// with the segment's sampler and Adam state. A checkpoint after a segment's last step comes before the
// segment's closing work (summing, averaging, pruning), which a resumed run then does.

import { applyMask, count, type Mask } from '@sparse/masks';
import { lotteryLayout, lotterySparsity, type IMPConfig, type LotteryLayout, type SWAMPConfig } from '@sparse/pruners';
import { Random, tensor } from '@sparse/tensor';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { assignValues, coreOf, selectLinears, stageRng, windowLength, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { MaskStats } from '../../stages/mask-stats.js';
import { NamedAdam } from '../../train/adam.js';
import { runSteps, type StepInfo } from '../../train/steps.js';
import type { StageIssue, TrainerMethod } from '../types.js';
import { bytesFloat64, float64Bytes } from './first-order.js';
import { magnitudeMasksByBudget } from './sparse-budgets.js';
import { refuseAttachedAdapter } from './weights.js';

type LotteryConfig = IMPConfig | SWAMPConfig;

/** The batch sampler of particle `particle` in phase `phase` of stage `stage`: forks of the recipe seed. */
export function lotterySampler(seed: number, stage: number, phase: number, particle: number): Random {
  return new Random(seed).fork(`stage-${stage}`).fork(`phase-${phase}`).fork(`particle-${particle}`);
}

/** The layout of a stage's config (IMP: one particle). */
function layoutOf(cfg: LotteryConfig, steps: number): LotteryLayout {
  return lotteryLayout({ rounds: cfg.rounds, rewindStep: cfg.rewindStep, rewind: cfg.rewind, particles: 'particles' in cfg ? cfg.particles : 1 }, steps);
}

/** An IMP-like train method: 'imp' (one particle) and 'swamp' (its config's particles). */
export function lotteryMethod(spec: { name: string; describe: string; paper: string; differs: readonly string[]; schema: TrainerMethod<'train'>['schema'] }): TrainerMethod<'train'> {
  return {
    kind: 'train',
    name: spec.name,
    describe: spec.describe,
    paper: spec.paper,
    differs: spec.differs,
    schema: spec.schema,
    from: '@sparse/pruners',
    checkStage: (stage) => {
      try {
        layoutOf(stage.config as LotteryConfig, stage.steps);
        return [];
      } catch (err) {
        return [{ path: ['steps'], message: (err as Error).message.replace(/^lotteryLayout: /, '') } satisfies StageIssue];
      }
    },
    // the layout written out: the rewind point in steps and the steps the stage runs
    resolveStage: (stage) => {
      const cfg = stage.config as LotteryConfig;
      const l = layoutOf(cfg, stage.steps);
      const { rewind: _r, ...rest } = cfg;
      return { ...stage, steps: l.steps, config: { ...rest, rewindStep: l.rewindStep } };
    },
    run: (args) => {
      refuseAttachedAdapter(args);
      return trainLottery(args, spec.name);
    },
  };
}

/** A piece of the stage: the steps before the rewind point, or one particle of one phase. */
type Segment = { kind: 'prefix'; start: number; end: number } | { kind: 'particle'; phase: number; particle: number; start: number; end: number };

function segment(layout: LotteryLayout, i: number): Segment {
  if (i < 0) return { kind: 'prefix', start: 0, end: layout.rewindStep };
  const start = layout.rewindStep + i * layout.phaseSteps;
  return { kind: 'particle', phase: Math.floor(i / layout.particles), particle: i % layout.particles, start, end: start + layout.phaseSteps };
}

/** The segment a checkpoint after `g` steps was taken in (start < g <= end), or -1 for the prefix. */
function segmentAt(layout: LotteryLayout, g: number): number {
  if (g <= layout.rewindStep) return -1;
  return Math.ceil((g - layout.rewindStep) / layout.phaseSteps) - 1;
}

interface SavedState {
  batches?: unknown;
  /** The rewind point's value of every parameter. */
  rewind?: Record<string, Float32Array>;
  /** Per parameter, the float64 sums (as bytes) of the phase's finished particles. */
  sum?: Record<string, Uint8Array>;
  /** Each targeted layer's kept count when the stage began. */
  start?: Record<string, number>;
}

async function trainLottery(args: StageArgs<StageOf<'train'>>, name: string): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as LotteryConfig;
  const where = `stages[${index}]`;
  const layout = layoutOf(cfg, stage.steps);
  const layers = selectLinears(ctx.linears(), stage.targets, where);
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = windowLength(args, data);
  const saved = args.resume?.stageState as SavedState | undefined;
  let g = args.resume?.step ?? 0;
  if (!args.resume) zeroOffMask(ctx, layers);
  const startKept = saved?.start ?? Object.fromEntries(layers.map((l) => [l.name, ctx.masks.has(l.name) ? count(ctx.masks.get(l.name)!) : l.out * l.in]));
  let rewind = saved?.rewind ? new Map(Object.entries(saved.rewind)) : layout.rewindStep === 0 && g === 0 ? ctx.paramValues() : undefined;
  let sum = saved?.sum ? new Map(Object.entries(saved.sum).map(([k, b]) => [k, bytesFloat64(b)])) : undefined;
  if (rewind && layout.rewindStep === 0 && g === 0) ctx.log.event({ event: name, stage: index, label, action: 'rewind-point', step: 0 });

  const variables = new Map(Object.entries(ctx.model.params));
  const hooks = ctx.hooks({ maskBase: true });
  const curve = ctx.report.lossCurves.find((c) => c.label === label) ?? { label, points: [] };
  if (!ctx.report.lossCurves.includes(curve)) ctx.report.lossCurves.push(curve);
  const maskStats = new MaskStats(ctx, index, label, stage.batch * len);
  const progress = ctx.log.stageProgress(`[${index + 1}/${ctx.recipe.stages.length}] ${label}`);
  const P = layout.particles;
  ctx.log.say(
    `${label}: ${layout.steps} steps x batch ${stage.batch} x ${len} tokens: ${layout.rewindStep} to the rewind point, then ${layout.rounds + 1} phases of ${P === 1 ? '' : `${P} particles x `}${layout.phaseSteps} steps, pruning ${(cfg.rate * 100).toFixed(0)}% (${cfg.budget}) after each of the first ${layout.rounds}${args.resume ? `; resuming after step ${g}` : ''}`,
  );
  const losses: number[] = [];

  const stageState = (rng: Random) => ({
    batches: rng.state(),
    start: startKept,
    ...(rewind ? { rewind: Object.fromEntries(rewind) } : {}),
    ...(sum ? { sum: Object.fromEntries([...sum].map(([k, s]) => [k, float64Bytes(s)])) } : {}),
  });

  /** Trains segment `seg` from g (its start, or a resumed position inside it) to its end. */
  const train = async (seg: Segment, fresh: boolean) => {
    const rng = seg.kind === 'prefix' ? stageRng(args) : fresh ? lotterySampler(ctx.recipe.seed, index, seg.phase, seg.particle) : Random.fromState(saved!.batches as ReturnType<Random['state']>);
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    if (!fresh && args.resume?.optimizer) optimizer.load(args.resume.optimizer);
    // schedule positions: the prefix is steps 1..k, a particle k+1..k+L of the (k + L)-step schedule
    const offset = seg.kind === 'prefix' ? 0 : seg.start - layout.rewindStep;
    try {
      await runSteps({
        data,
        batch: stage.batch,
        len,
        lr: stage.lr,
        warmup: stage.warmup,
        minLrRatio: stage.minLrRatio,
        clipNorm: stage.clipNorm,
        rng,
        steps: seg.kind === 'prefix' ? layout.rewindStep : layout.scheduleSteps,
        scheduleSteps: layout.scheduleSteps,
        startStep: g - offset,
        variables,
        optimizer,
        loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
        afterStep: async (info: StepInfo) => {
          g = info.step + offset;
          losses.push(info.loss);
          const at = { ...info, step: g, steps: layout.steps };
          progress(at);
          curve.points.push({ step: g, loss: info.loss });
          const masks = maskStats.afterStep(g);
          ctx.log.event({ event: 'step', stage: index, label, step: g, steps: layout.steps, loss: info.loss, lr: info.lr, ...(info.gradNorm !== undefined ? { gradNorm: info.gradNorm } : {}), tokensPerSec: info.tokensPerSec, ...masks });
          if (seg.kind === 'prefix' && g === layout.rewindStep) {
            rewind = ctx.paramValues();
            ctx.log.event({ event: name, stage: index, label, action: 'rewind-point', step: g });
          }
          if (g % stage.checkpointEvery === 0 || g === layout.steps) await args.checkpoint(g, stageState(rng), optimizer.state());
        },
      });
    } finally {
      optimizer.dispose();
    }
  };

  /** A segment's first step: the ticket (rewind point, targeted weights masked). */
  const loadTicket = (seg: Extract<Segment, { kind: 'particle' }>) => {
    for (const [k, v] of Object.entries(ctx.model.params)) {
      const m = ctx.masks.get(k);
      const values = rewind!.get(k)!;
      assignValues(v, m ? (applyMask(m, tensor(values, [...v.shape])).data as Float32Array) : values);
    }
    ctx.log.event({ event: name, stage: index, label, action: 'rewind', step: g, phase: seg.phase, particle: seg.particle });
  };

  /** A segment's closing work: add the particle to the phase's sum; after the last, average and prune. */
  const close = (seg: Extract<Segment, { kind: 'particle' }>) => {
    if (P > 1) {
      sum ??= new Map(Object.keys(ctx.model.params).map((k) => [k, new Float64Array(ctx.model.params[k]!.size)]));
      for (const [k, v] of Object.entries(ctx.model.params)) {
        const s = sum.get(k)!;
        const x = v.dataSync() as Float32Array;
        for (let i = 0; i < s.length; i++) s[i]! += x[i]!;
      }
    }
    if (seg.particle < P - 1) return;
    if (P > 1) {
      for (const [k, v] of Object.entries(ctx.model.params)) assignValues(v, Float32Array.from(sum!.get(k)!, (x) => x / P));
      sum = undefined;
      ctx.log.event({ event: name, stage: index, label, action: 'average', step: g, phase: seg.phase, particles: P });
    }
    if (seg.phase < layout.rounds) prune(seg.phase + 1);
  };

  /** Round r's prune from the current (averaged) weights. */
  const prune = (round: number) => {
    const density = 1 - lotterySparsity(cfg.rate, round);
    const current = layers.map((l) => ({ name: l.name, weight: coreOf(ctx.model.params[l.name]!), mask: ctx.masks.get(l.name) }));
    let next: Map<string, Mask>;
    if (cfg.budget === 'global') {
      const total = layers.reduce((n, l) => n + l.out * l.in, 0);
      const k0 = layers.reduce((n, l) => n + startKept[l.name]!, 0);
      next = magnitudeMasksByBudget(current, 1 - (k0 / total) * density, 'global');
    } else {
      next = new Map(current.map((c, i) => [c.name, magnitudeMasksByBudget([c], 1 - (startKept[c.name]! / (layers[i]!.out * layers[i]!.in)) * density, 'layer').get(c.name)!]));
    }
    for (const [n, m] of next) ctx.setMask(n, m);
    ctx.log.event({ event: name, stage: index, label, action: 'prune', step: g, round, density, kept: Object.fromEntries(layers.map((l) => [l.name, count(ctx.masks.get(l.name)!)])) });
  };

  // where to continue: the segment the checkpoint was taken in (a fresh stage: the prefix, or phase 0)
  let i = g === 0 ? (layout.rewindStep > 0 ? -1 : 0) : segmentAt(layout, g);
  let fresh = g === 0;
  const last = layout.rounds * P + P - 1;
  for (; i <= last; i++) {
    const seg = segment(layout, i);
    if (seg.kind === 'particle' && fresh) loadTicket(seg);
    await train(seg, fresh);
    if (seg.kind === 'particle') close(seg);
    fresh = true;
  }
  ctx.log.endProgress();
  ctx.pattern = undefined;
  const total = layers.reduce((n, l) => n + l.out * l.in, 0);
  const kept = layers.reduce((n, l) => n + (ctx.masks.has(l.name) ? count(ctx.masks.get(l.name)!) : l.out * l.in), 0);
  const density = total === 0 ? 1 : kept / total;
  ctx.log.say(`${label}: ${layout.rounds} rounds of ${name}, density ${density.toFixed(3)} over ${layers.length} layers${P > 1 ? `, each phase the mean of ${P} particles` : ''}`);
  return { summary: `${name} ${layout.rounds} rounds x ${(cfg.rate * 100).toFixed(0)}% (${cfg.budget}${P > 1 ? `, ${P} particles` : ''}): density ${density.toFixed(3)}, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}` };
}

/** Targeted weights outside the run's masks at exactly 0 (a stage that starts from a pruned model). */
function zeroOffMask(ctx: RunContext, layers: readonly LinearInfo[]): void {
  for (const l of layers) {
    const m = ctx.masks.get(l.name);
    if (!m) continue;
    const v = ctx.model.params[l.name]!;
    assignValues(v, applyMask(m, coreOf(v)).data as Float32Array);
  }
}
