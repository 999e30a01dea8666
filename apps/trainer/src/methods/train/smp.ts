// train method 'smp': Static Model Pruning (Jiang et al. 2022, "Pruning Pre-trained Language Models
// Without Fine-Tuning"). The model's weights stay as they are; only the targeted layers' scores learn:
// each step S ← S − lr_t (W ⊙ ∂L/∂W' + λ_t ∂R/∂S) with W' = W ⊙ M the weight of the forward pass (the
// gradient taken before the mask, so pruned entries keep scoring), lr_t the stage's warmup + cosine
// learning rate and R = (1/N) Σ_l mean σ(S_l) the paper's L1 penalty on σ(S), λ_t = λ · ρ_t with ρ_t the
// progress of the cubic ramp. The masks are the top-v scores, v on gmp's cubic ramp (gmpSchedule of
// @sparse/pruners), recomputed every `every` steps from the ramp's start to the end of the stage:
// 'global' (SMP-S, the paper's masking function) gives the layers of one kind (every block's attention
// output, ...) keepCount(their entries, s_t) together, split in proportion to size · mean σ(S_l)
// (smpLayerKeeps); 'local' (SMP-L) keeps keepCount(size, s_t) in each layer.
//
// The model's targeted weights are always W₀ ⊙ M (W₀ their values when the stage started, kept in the
// checkpoint): a pruned weight is exactly 0 and a kept one is bit-identical to W₀; nothing else changes.
//
// Departures from the paper: the scores take plain first-order steps at the stage's learning rate (the
// paper trains them with Adam), masks are recomputed every `every` steps (the paper: every forward pass),
// the kinds of SMP-S are the trainer's layer roles, the penalty's λ schedule is the sparsity ramp's
// progress, and the paper's task head initialized from label-word embeddings and its distillation variant
// are not part of it (a language model has no separate head to initialize).

import * as tf from '@tensorflow/tfjs-core';
import { count, equals, isKept, keepCount, maskAll, sparsityAt, topKMask, type Mask } from '@sparse/masks';
import { gmpSchedule, smpConfigSchema, smpLayerKeeps, type SMPConfig } from '@sparse/pruners';
import { tensor } from '@sparse/tensor';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { FirstOrderScores, isMaskStep, keptCounts, refusePruned, sigmoid, type ScoresState } from './first-order.js';
import { refuseAttachedAdapter } from './weights.js';

export const smpMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'smp',
  describe:
    "Static Model Pruning (Jiang et al. 2022): weights frozen, only scores learn (S −= lr · W ⊙ ∂L/∂(W ⊙ M) plus an L1 penalty on σ(S)), top-v masks on a cubic ramp, SMP-S split per layer kind by mean σ(S) ('global') or SMP-L per layer; plain first-order score steps instead of the paper's Adam, no label-word head init or distillation",
  paper: 'Jiang et al. 2022, Pruning Pre-trained Language Models Without Fine-Tuning (SMP)',
  differs: [
    'plain first-order score steps at the stage\'s learning rate instead of the paper\'s Adam on S',
    'masks every `every` steps; the trainer\'s layer roles are SMP-S\'s kinds; the penalty\'s λ follows the sparsity ramp',
    'no task head initialized from label-word embeddings and no distillation variant (a language model has no separate head)',
  ],
  schema: smpConfigSchema,
  from: '@sparse/pruners',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainSMP(args);
  },
};

/** What a mask step logs (event 'smp') and a checkpoint keeps. */
export interface SMPUpdate {
  step: number;
  sparsity: number;
  kept: Record<string, number>;
}

/** The SMP masks at sparsity `s`: per layer ('local') or per kind of layer split by mean σ(S) ('global'). */
export function smpMasks(layers: readonly LinearInfo[], scores: (name: string) => Float64Array, s: number, masking: SMPConfig['masking']): Map<string, Mask> {
  const out = new Map<string, Mask>();
  const groups = new Map<string, LinearInfo[]>();
  for (const l of layers) {
    const key = masking === 'local' ? l.name : l.role;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  for (const group of groups.values()) {
    const s_ = group.map((l) => scores(l.name));
    const total = group.reduce((n, l) => n + l.out * l.in, 0);
    const keeps = smpLayerKeeps(
      group.map((l, i) => ({ size: l.out * l.in, weight: s_[i]!.reduce((a, x) => a + sigmoid(x), 0) / Math.max(1, s_[i]!.length) })),
      keepCount(total, s),
    );
    group.forEach((l, i) => out.set(l.name, topKMask(tensor(s_[i]!, [l.out, l.in]), keeps[i]!)));
  }
  return out;
}

async function trainSMP(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as SMPConfig;
  const where = `stages[${index}]`;
  const layers = selectLinears(ctx.linears(), stage.targets, where);
  if (!args.resume) refusePruned(ctx, layers, where, 'smp');
  const schedule = gmpSchedule(cfg, stage.steps);
  const saved = args.resume?.stageState as { scores?: ScoresState; weights?: Record<string, Float32Array>; smp?: SMPUpdate } | undefined;
  const scores = new FirstOrderScores(layers, cfg.lambda > 0, saved?.scores);
  // W₀: the targeted weights as the stage found them
  const w0 = new Map(layers.map((l) => [l.name, saved?.weights?.[l.name] ?? Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array)]));
  let last = saved?.smp;
  const ramp = (t: number) => (cfg.sparsity === cfg.initialSparsity ? 1 : (sparsityAt(schedule, t) - cfg.initialSparsity) / (cfg.sparsity - cfg.initialSparsity));

  const update = (t: number) => {
    if (!isMaskStep(schedule, stage.steps, t)) return;
    const s = sparsityAt(schedule, t);
    const next = smpMasks(layers, (n) => scores.scores(n), s, cfg.masking);
    for (const l of layers) {
      const m = next.get(l.name)!;
      const before = ctx.masks.get(l.name);
      if ((before === undefined && count(m) === l.out * l.in) || (before !== undefined && equals(before, m))) continue;
      const w = w0.get(l.name)!;
      assignValues(ctx.model.params[l.name]!, Float32Array.from(w, (x, i) => (isKept(m, i) ? x : 0)));
      ctx.setMask(l.name, m);
    }
    last = { step: t, sparsity: s, kept: keptCounts(ctx, layers, count) };
    ctx.log.event({ event: 'smp', stage: index, label: args.label, masking: cfg.masking, ...last });
  };

  const base = ctx.hooks({ maskBase: true });
  const at = new Map(layers.map((l, i) => [l.name, i]));
  const r = await optimize(args, stage, {
    update: async (ids, targets, lr, step) => {
      const t = step - 1;
      update(t);
      // the loss and ∂L/∂W' at W' = W₀ ⊙ M, which is what the targeted parameters hold
      const { value, grads } = tf.tidy(() => {
        const weights = layers.map((l) => ctx.model.params[l.name]! as tf.Tensor);
        const f = (...xs: tf.Tensor[]) => ctx.model.loss(ids, targets, { weight: (name, p) => (at.has(name) ? xs[at.get(name)!]! : base.weight!(name, p)) });
        const vg = tf.valueAndGrads(f)(weights);
        return { value: vg.value, grads: vg.grads };
      });
      const loss = (await value.data())[0]!;
      let norm = 0;
      const lambda = cfg.lambda * ramp(t);
      layers.forEach((l, i) => {
        const g = grads[i]!.dataSync() as Float32Array;
        for (const x of g) norm += x * x;
        if (lambda > 0) scores.addPenalty(l.name, (lr * lambda) / (layers.length * l.out * l.in));
        scores.addMovement(l.name, w0.get(l.name)!, g, lr);
      });
      tf.dispose([value, ...grads]);
      return { loss, gradNorm: Math.sqrt(norm) };
    },
    stageState: () => ({ scores: scores.state(), weights: Object.fromEntries(w0), ...(last ? { smp: last } : {}) }),
  });
  update(stage.steps);
  for (const l of layers) if (!ctx.masks.has(l.name)) ctx.setMask(l.name, maskAll([l.out, l.in]));
  ctx.pattern = undefined;
  const total = layers.reduce((n, l) => n + l.out * l.in, 0);
  const kept = layers.reduce((n, l) => n + count(ctx.masks.get(l.name)!), 0);
  const reached = total === 0 ? 0 : 1 - kept / total;
  ctx.log.say(`${args.label}: static model pruning (${cfg.masking === 'global' ? 'SMP-S' : 'SMP-L'}) to ${(reached * 100).toFixed(1)}% over ${layers.length} layers, weights unchanged`);
  return { summary: `SMP ${cfg.masking}, reached ${(reached * 100).toFixed(1)}%, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}
