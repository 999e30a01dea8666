// train method 'static': random static sparse training (the "random pruning" baselines; Liu et al. 2022,
// "The Unreasonable Effectiveness of Random Pruning"): every targeted layer gets one random mask with its
// uniform / ER / ERK count of `sparsity` (dst.ts' initialMasks over sparse-budgets' keepCounts), drawn once
// and never changed; the stage trains through W ⊙ M. The masks come from the same seed stream as the
// initial masks of set / rigl / exploration, so at the same seed, stage index and budget this trains
// exactly the mask those methods start from (what their rewiring adds is then measured directly). A run
// whose targeted layers are already pruned keeps their masks (then this is masked training). On linear
// layers (2-D weights) ER and ERK give the same counts: ERK differs only for kernels of rank > 2.
//
// Masks never leak: the weights outside the masks are set to exactly 0 once, and the forward through W ⊙ M
// gives them a zero gradient, so their Adam moments stay 0 and Adam's step on them is exactly 0. Resume is
// exact: the masks are the run's (every checkpoint holds them) and nothing else changes.

import { count } from '@sparse/masks';
import { staticConfigSchema, type StaticConfig } from '@sparse/masks/schemas';
import type { StageOf } from '../../recipe/schema.js';
import { selectLinears, stageRng, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { startMasks } from './dst.js';
import { maskedTraining, refuseAttachedAdapter } from './weights.js';

export const staticMethod: TrainerMethod<'train'> = {
  kind: 'train',
  sparsePath: true,
  name: 'static',
  describe: 'static sparse training: one random mask per layer at a uniform/ER/ERK budget, drawn once and never changed, trained through W ⊙ M',
  paper: 'Liu et al. 2022, The Unreasonable Effectiveness of Random Pruning: Return of the Most Naive Baseline for Sparse Training',
  differs: [],
  schema: staticConfigSchema,
  from: '@sparse/masks',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainStatic(args);
  },
};

async function trainStatic(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as StaticConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const start = args.resume ? "the run's masks" : startMasks(args, layers, cfg, stageRng(args, 'regrow'), 'static');
  ctx.pattern = undefined;
  const kept = Object.fromEntries(layers.map((l) => [l.name, count(ctx.masks.get(l.name)!)]));
  if (!args.resume) ctx.log.event({ event: 'static', stage: index, label: args.label, step: 0, kept });
  const path = maskedTraining(args, layers);
  let r;
  try {
    r = await optimize(args, stage, {
      variables: path.variables,
      loss: (ids, targets) => ctx.model.loss(ids, targets, path.hooks),
      stageState: () => ({ static: { kept } }),
      ...(path.sparse ? { sparse: path.sparse } : {}),
    });
  } finally {
    path.sparse?.dispose();
  }
  const total = layers.reduce((a, l) => a + l.out * l.in, 0);
  const active = Object.values(kept).reduce((a, k) => a + k, 0);
  return { summary: `static from ${start}: density ${(active / Math.max(1, total)).toFixed(3)} over ${layers.length} layers, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}
