// train method 'movement': movement pruning (Sanh et al. 2020, "Movement Pruning: Adaptive Sparsity by
// Fine-Tuning") while fine-tuning. Every step each targeted layer's score gains −α W ⊙ ∂L/∂W' (W' = W ⊙ M,
// @sparse/masks' MovementAccumulator through first-order.ts), the gradient taken before the mask so
// pruned entries keep scoring (the straight-through estimator); the weights train through W ⊙ M with Adam.
//
// - hard: at each mask step the masks are the top-v scores, v on gmp's cubic sparsity ramp (gmpSchedule
//   of @sparse/pruners), per layer or in one global ranking; the stage ends at exactly `sparsity`.
// - soft: M = 1(σ(S) > τ_t), τ_t on the cubic ramp from 0 to `threshold`, and the scores also descend the
//   penalty λ_t Σ σ(S) (λ_t = λ τ_t / threshold, as the reference code couples them); each layer keeps at
//   least ⌊0.005 · size⌋ + 1 entries. The sparsity reached is reported, not chosen.
//
// Masks never leak: a newly pruned weight's value is set aside (it is what the paper's frozen pruned weight
// would be, and what its score keeps using), the weight becomes exactly 0 with zeroed Adam moments, and
// the forward pass through W ⊙ M gives it a zero gradient. A pruned entry whose score climbs back into the
// mask returns with its set-aside value and zero moments.
//
// Departures from the paper: the scores are plain first-order sums (the paper's approximation of what its
// Adam-trained scores do; α = 1 for hard, whose top-v does not depend on it), the masks are recomputed every
// `every` steps rather than at every forward pass, and pruned weights do not move while pruned (with the
// paper's Adam their momentum would still carry them for a while).
//
// Resume is exact: the scores (float64 sums), the set-aside values and the masks are in the checkpoint,
// and the schedule is a function of the step.

import { count, equals, globalTopKMasks, isKept, keepCount, maskAll, sparsityAt, thresholdMask, topKMask, type Mask } from '@sparse/masks';
import { gmpSchedule, movementConfigSchema, type MovementConfig } from '@sparse/pruners';
import { tensor } from '@sparse/tensor';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { NamedAdam } from '../../train/adam.js';
import type { TrainerMethod } from '../types.js';
import { FirstOrderScores, isMaskStep, keptCounts, refusePruned, scoreTapHooks, sigmoid, type ScoresState } from './first-order.js';
import { refuseAttachedAdapter } from './weights.js';

export const movementMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'movement',
  describe:
    "movement pruning (Sanh et al. 2020) while fine-tuning: scores S += −W ⊙ ∂L/∂(W ⊙ M) each step (straight-through), 'hard' top-v on a cubic sparsity ramp or 'soft' σ(S) > τ with an L1 penalty on σ(S); first-order score sums instead of the paper's Adam-trained scores, masks every `every` steps",
  paper: 'Sanh et al. 2020, Movement Pruning: Adaptive Sparsity by Fine-Tuning',
  differs: [
    'the scores are plain first-order sums (the paper\'s own approximation of its Adam-trained scores)',
    'the masks are recomputed every `every` steps rather than at every forward pass',
    'a pruned weight does not move while pruned (the paper\'s Adam momentum would still carry it for a few steps)',
  ],
  schema: movementConfigSchema,
  from: '@sparse/pruners',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainMovement(args);
  },
};

/** What a mask step logs (event 'movement') and a checkpoint keeps. */
export interface MovementUpdate {
  /** Steps done at the mask step. */
  step: number;
  /** hard: the ramp's sparsity; soft: the threshold τ on σ(S). */
  sparsity?: number;
  threshold?: number;
  /** Entries each targeted layer keeps. */
  kept: Record<string, number>;
  /** Entries pruned and brought back by this step, over all layers. */
  pruned: number;
  revived: number;
}

/** The masks of a soft mask step: σ(S) > τ, at least ⌊0.005 · size⌋ + 1 entries by S (the reference code's floor). */
export function softMasks(layers: readonly { name: string; out: number; in: number }[], scores: (name: string) => Float64Array, threshold: number): Map<string, Mask> {
  return new Map(
    layers.map((l) => {
      const s = scores(l.name);
      const m = thresholdMask(tensor(Float64Array.from(s, sigmoid), [l.out, l.in]), threshold);
      const floor = Math.floor(0.005 * s.length) + 1;
      return [l.name, count(m) >= floor ? m : topKMask(tensor(s, [l.out, l.in]), Math.min(floor, s.length))];
    }),
  );
}

async function trainMovement(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as MovementConfig;
  const where = `stages[${index}]`;
  const layers = selectLinears(ctx.linears(), stage.targets, where);
  if (!args.resume) refusePruned(ctx, layers, where, 'movement');
  const soft = cfg.variant === 'soft';
  const schedule = cfg.variant === 'hard' ? gmpSchedule(cfg, stage.steps) : gmpSchedule({ sparsity: cfg.threshold, initialSparsity: 0, start: cfg.start, end: cfg.end, every: cfg.every }, stage.steps);
  const saved = args.resume?.stageState as { scores?: ScoresState; aside?: Record<string, Float32Array>; movement?: MovementUpdate } | undefined;
  const scores = new FirstOrderScores(layers, soft, saved?.scores);
  // the values pruned weights had when they were pruned (0 where the weight is kept)
  const aside = new Map(layers.map((l) => [l.name, saved?.aside?.[l.name] ?? new Float32Array(l.out * l.in)]));
  let last = saved?.movement;
  let t = args.resume?.step ?? 0;
  const alpha = cfg.variant === 'soft' ? cfg.scoreScale : 1;

  const hooks = scoreTapHooks(ctx, layers, (name, w, g) => {
    const a = aside.get(name)!;
    // the weight the score sees: W where kept, the set-aside value where pruned (W is exactly 0 there)
    const latent = Float32Array.from(w, (x, i) => x + a[i]!);
    if (cfg.variant === 'soft' && cfg.lambda > 0) scores.addPenalty(name, alpha * cfg.lambda * (sparsityAt(schedule, t) / cfg.threshold));
    scores.addMovement(name, latent, g, alpha);
  });

  /** The mask step after t steps done, if one is due: new masks, pruned weights set aside at 0 (zero moments), revived ones restored. */
  const update = (step: number, optimizer?: NamedAdam) => {
    if (!isMaskStep(schedule, stage.steps, step)) return;
    const level = sparsityAt(schedule, step);
    let next: Map<string, Mask>;
    if (cfg.variant === 'soft') next = softMasks(layers, (n) => scores.scores(n), level);
    else if (cfg.budget === 'global') {
      const all = globalTopKMasks(layers.map((l) => tensor(scores.scores(l.name), [l.out, l.in])), { sparsity: level });
      next = new Map(layers.map((l, i) => [l.name, all[i]!]));
    } else next = new Map(layers.map((l) => [l.name, topKMask(tensor(scores.scores(l.name), [l.out, l.in]), keepCount(l.out * l.in, level))]));
    let pruned = 0;
    let revived = 0;
    for (const l of layers) {
      const m = next.get(l.name)!;
      const before = ctx.masks.get(l.name);
      // a layer that keeps everything stays without a mask; an unchanged mask stays as it is
      if ((before === undefined && count(m) === l.out * l.in) || (before !== undefined && equals(before, m))) continue;
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v).data as Float32Array;
      const a = aside.get(l.name)!;
      for (let i = 0; i < w.length; i++) {
        const was = before === undefined || isKept(before, i);
        const now = isKept(m, i);
        if (was && !now) {
          a[i] = w[i]!;
          w[i] = 0;
          pruned++;
        } else if (!was && now) {
          w[i] = a[i]!;
          a[i] = 0;
          revived++;
        }
      }
      assignValues(v, w);
      ctx.setMask(l.name, m);
      optimizer?.resetEntries(l.name, ctx.maskTensor(l.name)!);
    }
    last = { step, ...(soft ? { threshold: level } : { sparsity: level }), kept: keptCounts(ctx, layers, count), pruned, revived };
    ctx.log.event({ event: 'movement', stage: index, label: args.label, variant: cfg.variant, ...last });
  };

  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    beforeStep: (step, optimizer) => {
      t = step - 1;
      update(t, optimizer);
    },
    stageState: () => ({ scores: scores.state(), aside: Object.fromEntries(aside), ...(last ? { movement: last } : {}) }),
  });
  // the mask step at the end of the stage (nothing trains after it: no moments to reset)
  update(stage.steps);
  // every targeted layer ends with a run mask (one that keeps everything where nothing was pruned)
  for (const l of layers) if (!ctx.masks.has(l.name)) ctx.setMask(l.name, maskAll([l.out, l.in]));
  ctx.pattern = undefined;
  const total = layers.reduce((n, l) => n + l.out * l.in, 0);
  const kept = layers.reduce((n, l) => n + count(ctx.masks.get(l.name)!), 0);
  const reached = total === 0 ? 0 : 1 - kept / total;
  const how = cfg.variant === 'hard' ? `hard top-v to ${(cfg.sparsity * 100).toFixed(1)}% (${cfg.budget})` : `soft σ(S) > ${cfg.threshold}, λ ${cfg.lambda}`;
  ctx.log.say(`${args.label}: movement pruning, ${how}: ${(reached * 100).toFixed(1)}% sparse over ${layers.length} layers`);
  return { summary: `movement ${cfg.variant}, reached ${(reached * 100).toFixed(1)}%, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}
