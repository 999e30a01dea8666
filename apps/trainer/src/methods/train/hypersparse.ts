// train method 'hypersparse': Adaptive Regularized Training with the HyperSparse loss (Glandorf, Kaiser &
// Rosenhahn 2023, "HyperSparse Neural Networks: Shifting Exploration to Exploitation through Adaptive
// Regularization"). The targeted layers train densely on cross-entropy + λ_t · HS(w), λ_t growing
// geometrically, and at the end of the stage are pruned by |W| to the target sparsity (the run's masks).
//
// The HyperSparse loss of a group of weights w (all targeted layers for budget 'global', as in the paper;
// each layer alone otherwise):
//
//   HS(w) = Σ_i ( |w_i| · T(w) / sg(T(w)) − |w_i| ),   T(w) = Σ_j tanh(s · |w_j|),   s = atanh(1/√3) / τ,
//
// sg the stop-gradient and τ the smallest |w| of the top set (the keep largest |w|, keep = the budget's
// count). Its value is 0; its gradient is
//
//   ∂HS/∂w_k = sign(w_k) · s · (1 − tanh²(s |w_k|)) · Σ_i |w_i| / T(w),
//
// about sign(w_k) (an L1 pull of strength λ) for small weights, falling smoothly to 0 for the top set, whose
// inflection point s|w| = atanh(1/√3) (where the curvature of the pull changes sign) sits at τ. So the
// weights outside the top set shrink towards 0 while the top set keeps what it learned (exploitation), and
// a weight can still cross into the top set (exploration). |w| is differentiated with sign(0) = 0, as the
// paper's gradient is.
//
// Schedule: no regularization for the first W = round(warmup · S) steps, then λ_t = lambda · eta^⌊(t − W) /
// every⌋ (t steps done), multiplied by eta every `every` steps (the paper: by η every epoch).
//
// Departures from the paper: ART stops raising λ when the pruned model's training accuracy matches the
// dense one's and then fine-tunes the pruned model; here λ grows for the whole stage and the magnitude prune
// is at its end (a `masked` stage after it is the fine-tune). τ is the keep-th largest |w| with our keep
// counts (round((1 − κ) n)); the paper takes index ⌊κ n⌋ of the ascending sort. The optimizer is the
// trainer's Adam with gradient clipping (the paper: SGD), applied to the whole gradient, HS included.
//
// Resume is exact: λ_t is a function of the step and τ is recomputed from the weights before every step; the
// stage state records the last λ for the record.

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, count, keepCount } from '@sparse/masks';
import { hypersparseConfigSchema, type HyperSparseConfig } from '@sparse/masks/schemas';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { keepCounts, magnitudeMasksByBudget } from './sparse-budgets.js';
import { refuseAttachedAdapter } from './weights.js';

export const hypersparseMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'hypersparse',
  describe: 'HyperSparse / ART: dense training with the HyperSparse loss (shrinks the weights outside the top-|W| set) under a geometrically growing λ, then a |W| prune; global, per layer, ER or ERK; no ART stopping rule',
  paper: 'Glandorf et al. 2023, HyperSparse Neural Networks: Shifting Exploration to Exploitation through Adaptive Regularization',
  differs: [
    'no ART stopping rule: λ grows for the whole stage and the prune is at its end',
    'keep is round((1 − s) · n) (the paper indexes the sorted |w| at ⌊s · n⌋)',
    'Adam with the stage\'s gradient clipping over the whole gradient, HyperSparse term included, instead of SGD',
    'a run whose targeted layers are pruned starts dense',
  ],
  schema: hypersparseConfigSchema,
  from: '@sparse/masks',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainHyperSparse(args);
  },
};

/** atanh(1/√3) ≈ 0.6585: s = HS_INFLECTION / τ puts the inflection point of the pull at the top set's smallest |w|. */
export const HS_INFLECTION = Math.atanh(1 / Math.sqrt(3));

/** The weights one HS term covers and the size of their top set. */
export interface HSGroup {
  names: string[];
  keep: number;
}

/** One group over all layers for 'global' (keepCount of the total), else one per layer with its budget's count. */
export function hsGroups(layers: readonly LinearInfo[], sparsity: number, budget: HyperSparseConfig['budget'], erkPowerScale?: number): HSGroup[] {
  if (budget === 'global') return [{ names: layers.map((l) => l.name), keep: keepCount(layers.reduce((a, l) => a + l.out * l.in, 0), sparsity) }];
  const keeps = keepCounts(layers.map((l) => ({ name: l.name, shape: [l.out, l.in] })), sparsity, budget, erkPowerScale);
  return layers.map((l, i) => ({ names: [l.name], keep: keeps[i]! }));
}

/** τ: the keep-th largest |w| over `values` (the smallest |w| of the top set), or 0 when keep is 0. */
export function topSetThreshold(values: readonly Float32Array[], keep: number): number {
  const n = values.reduce((a, v) => a + v.length, 0);
  if (keep <= 0) return 0;
  if (keep > n) throw new Error(`topSetThreshold: keep ${keep} exceeds the ${n} weights`);
  const abs = new Float32Array(n);
  let o = 0;
  for (const v of values) for (let i = 0; i < v.length; i++) abs[o++] = Math.abs(v[i]!);
  abs.sort();
  return abs[n - keep]!;
}

/**
 * HS(w) over the tensors `weights` (one group) with top-set threshold τ > 0, as a tfjs scalar whose value is
 * 0 and whose gradient is sign(w) · s · (1 − tanh²(s|w|)) · Σ|w| / T, s = HS_INFLECTION / τ. The
 * stop-gradient sg(T) is T's value read back (a constant of the tape).
 */
export function hyperSparseLoss(weights: readonly tf.Tensor[], tau: number): tf.Scalar {
  if (!(tau > 0) || !Number.isFinite(tau)) throw new Error(`hyperSparseLoss: τ must be a finite number > 0, got ${tau}`);
  const s = HS_INFLECTION / tau;
  return tf.tidy(() => {
    // |w| with the derivative sign(w), 0 at 0 (tfjs' Sign has a zero gradient)
    const abs = weights.map((w) => tf.mul(w, tf.sign(w)));
    const l1 = tf.addN(abs.map((a) => tf.sum(a))) as tf.Scalar;
    const tanhSum = tf.addN(abs.map((a) => tf.sum(tf.tanh(tf.mul(a, s))))) as tf.Scalar;
    const sg = tanhSum.dataSync()[0]!;
    // Σ_i (|w_i| · T / sg(T) − |w_i|) = Σ|w| · T / sg(T) − Σ|w|
    return tf.sub(tf.mul(l1, tf.div(tanhSum, sg)), l1) as tf.Scalar;
  });
}

/** λ for 1-based `step`: 0 during the warm-up (`warmupSteps`), then lambda · eta^⌊(t − W) / every⌋ with t = step − 1. */
export function hsLambdaAt(cfg: Pick<HyperSparseConfig, 'lambda' | 'eta' | 'every'>, warmupSteps: number, step: number): number {
  const t = step - 1;
  return t < warmupSteps ? 0 : cfg.lambda * Math.pow(cfg.eta, Math.floor((t - warmupSteps) / cfg.every));
}

/**
 * Prunes `layers` to `sparsity` by |W| under `budget` (magnitudeMasksByBudget of sparse-budgets.ts): the
 * weights off the new masks become exactly 0 and the masks are the run's. Returns the entries each keeps.
 */
export function magnitudePrune(ctx: RunContext, layers: readonly LinearInfo[], cfg: Pick<HyperSparseConfig, 'sparsity' | 'budget' | 'erkPowerScale'>): Record<string, number> {
  const current = layers.map((l) => ({ name: l.name, weight: coreOf(ctx.model.params[l.name]!) }));
  const masks = magnitudeMasksByBudget(current, cfg.sparsity, cfg.budget, cfg.erkPowerScale);
  const kept: Record<string, number> = {};
  for (const [i, l] of layers.entries()) {
    const m = masks.get(l.name)!;
    assignValues(ctx.model.params[l.name]!, applyMask(m, current[i]!.weight).data as Float32Array);
    ctx.setMask(l.name, m);
    kept[l.name] = count(m);
  }
  return kept;
}

async function trainHyperSparse(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as HyperSparseConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  if (!args.resume && layers.some((l) => ctx.masks.has(l.name))) {
    ctx.log.say(`${args.label}: HyperSparse trains dense: the run's masks of the targeted layers are dropped (their pruned weights train again from 0)`);
    for (const l of layers) ctx.masks.delete(l.name);
  }
  ctx.pattern = undefined;
  const groups = hsGroups(layers, cfg.sparsity, cfg.budget, cfg.erkPowerScale);
  const warmup = Math.round(cfg.warmup * stage.steps);
  const values = (names: readonly string[]) => names.map((n) => ctx.model.params[n]!.dataSync() as Float32Array);
  /** The share of Σ|w| outside each group's top set, over all groups. */
  const outsideShare = (taus: readonly number[]) => {
    let out = 0;
    let all = 0;
    groups.forEach((g, k) => {
      for (const v of values(g.names)) {
        for (let i = 0; i < v.length; i++) {
          const a = Math.abs(v[i]!);
          all += a;
          if (a < taus[k]!) out += a;
        }
      }
    });
    return all > 0 ? out / all : 0;
  };

  let taus: number[] = groups.map(() => 0);
  let lambda = 0;
  let skipped = false;
  const hooks = ctx.hooks({ maskBase: true });
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets, step) => {
      const ce = ctx.model.loss(ids, targets, hooks);
      const lam = hsLambdaAt(cfg, warmup, step);
      if (lam === 0) return ce;
      const terms = groups.flatMap((g, k) => (taus[k]! > 0 ? [hyperSparseLoss(g.names.map((n) => ctx.model.params[n]!), taus[k]!)] : []));
      if (terms.length === 0) return ce;
      return tf.add(ce, tf.mul(tf.addN(terms), lam)) as tf.Scalar;
    },
    // before step t + 1: the top sets of the current weights, and λ's increase when one is due
    beforeStep: (step) => {
      lambda = hsLambdaAt(cfg, warmup, step);
      if (lambda === 0) return;
      taus = groups.map((g) => topSetThreshold(values(g.names), g.keep));
      if (taus.some((x) => x === 0) && !skipped) {
        skipped = true;
        ctx.log.say(`${args.label}: a top set holds weights at exactly 0 (or is empty); the HS term of its group is left out while it does`);
      }
      const t = step - 1;
      if ((t - warmup) % cfg.every === 0) ctx.log.event({ event: 'hypersparse', stage: index, label: args.label, step: t, lambda, outside: outsideShare(taus) });
    },
    stageState: () => ({ hypersparse: { lambda } }),
  });

  // the magnitude prune at the end of the stage: the run's masks from here
  const outside = outsideShare(groups.map((g) => topSetThreshold(values(g.names), g.keep)));
  const kept = magnitudePrune(ctx, layers, cfg);
  ctx.log.event({ event: 'hypersparse-prune', stage: index, label: args.label, step: stage.steps, sparsity: cfg.sparsity, kept, outside });
  const total = layers.reduce((a, l) => a + l.out * l.in, 0);
  const keptAll = Object.values(kept).reduce((a, k) => a + k, 0);
  const lastLambda = hsLambdaAt(cfg, warmup, stage.steps);
  return {
    summary: `HyperSparse ${(cfg.sparsity * 100).toFixed(0)}% (${cfg.budget}): λ ${cfg.lambda.toExponential(1)} -> ${lastLambda.toExponential(1)}, ${(outside * 100).toFixed(2)}% of Σ|w| outside the top set when pruned, density ${(keptAll / Math.max(1, total)).toFixed(3)}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}`,
  };
}
