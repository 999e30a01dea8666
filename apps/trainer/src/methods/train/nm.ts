// train method 'nm': N:M training from the current weights through the mask, with STE, SR-STE or
// progressive gradient flow (@sparse/nm); the masks follow the weights every `every` steps.
// Progressive gradient flow (Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity
// Training in Transformers", 2024) in its three forms: 'progressive' decays the pruned entries' gradient,
// 'mask-decay' (MDGF) their forward factor, 'structure-decay' (SDGF) the N:M pattern itself (looser
// patterns in equal frames of the stage, recomputed at each frame's first step).
// differs: the decays run over this stage's steps only (the paper's dense warm-up and binary fine-tune
// are separate stages here), and the final hard n:m mask is taken from the trained weights at the end.

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import { maskDecayFactor, nmMask, structureDecaySchedule, structurePhaseAt, type StructurePhase } from '@sparse/nm';
import { nmTrainingConfigSchema, type NMTrainingConfig } from '@sparse/nm/schemas';
import { gradientFlowDecay, nmMaskedWeight, type MaskEstimator } from '@sparse/nm/tfjs';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const nmTrainMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'nm',
  describe:
    'N:M training from the current weights with STE, SR-STE or progressive gradient flow (Bambhaniya et al. 2024: decayed gradient, MDGF mask decay, SDGF structure decay; differs: decays span this stage only) (@sparse/nm)',
  paper: 'Zhou et al. 2021, Learning N:M Fine-grained Structured Sparse Neural Networks From Scratch (STE, SR-STE); Bambhaniya et al. 2024, Progressive Gradient Flow for Robust N:M Sparsity Training in Transformers (progressive, MDGF, SDGF)',
  differs: [
    'the progressive decays run over this stage\'s steps only: the paper\'s dense warm-up and binary fine-tune are separate stages here',
    'the final hard N:M mask is taken from the trained weights at the end of the stage',
  ],
  schema: nmTrainingConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainNM(args, new Map(Object.entries(args.ctx.model.params)));
  },
};

async function trainNM(args: StageArgs<StageOf<'train'>>, variables: Map<string, tf.Variable>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as NMTrainingConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  for (const l of layers) {
    if (l.in % cfg.m !== 0) throw new Error(`stages[${args.index}].config.m: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.m}`);
  }
  // SDGF's frames (one frame of n:m for the other estimators)
  const schedule: StructurePhase[] =
    cfg.estimator === 'structure-decay' ? structureDecaySchedule({ n: cfg.n, m: cfg.m, kind: cfg.structureDecay, steps: Math.max(1, stage.steps) }) : [{ start: 0, n: cfg.n, m: cfg.m }];
  for (const p of schedule) {
    for (const l of layers) {
      if (l.in % p.m !== 0) throw new Error(`stages[${args.index}].config.structureDecay: ${l.name} has ${l.in} inputs, not a multiple of m = ${p.m} of the ${cfg.structureDecay} frame ${p.n}:${p.m}`);
    }
  }
  let phase = schedule[0]!;
  const current = new Map<string, { mask: Mask; t: tf.Tensor }>();
  const setMask = (name: string, mask: Mask) => {
    current.get(name)?.t.dispose();
    current.set(name, { mask, t: tf.keep(maskToTf(mask)) });
  };
  const syncRunMasks = () => {
    for (const [n, c] of current) ctx.setMask(n, c.mask);
    ctx.pattern = { n: phase.n, m: phase.m };
  };
  // a resumed stage continues with the masks it had (saved as run masks) in the frame it was in
  if (args.resume) {
    // the frame of the last completed step (step s runs in the frame at s - 1), so a frame change right after the checkpoint still recomputes
    phase = structurePhaseAt(schedule, Math.max(0, args.resume.step - 1));
    for (const l of layers) if (ctx.masks.has(l.name)) setMask(l.name, ctx.masks.get(l.name)!);
  }
  let decay = 1;
  let beta = 1;
  const estimator = (): MaskEstimator => {
    switch (cfg.estimator) {
      case 'sr-ste':
        return { kind: 'sr-ste', lambda: cfg.lambda };
      case 'progressive':
        return { kind: 'progressive', decay };
      case 'mask-decay':
        return { kind: 'mask-decay', beta };
      default:
        return { kind: 'ste' }; // ste, and SDGF's binary masks (the paper trains them straight-through)
    }
  };
  const recompute = (step: number) => {
    const next = structurePhaseAt(schedule, step - 1);
    // masks follow the weights every `every` steps (before steps 1, 1+k, 1+2k, ...) and at each new SDGF frame
    const due = (step - 1) % cfg.every === 0 || next !== phase;
    phase = next;
    let changed = false;
    for (const l of layers) {
      if (due || !current.has(l.name)) {
        setMask(l.name, nmMask(coreOf(ctx.model.params[l.name]!), { n: phase.n, m: phase.m }));
        changed = true;
      }
    }
    // the run's masks follow at once, so the step's mask statistics and a checkpoint see the masks it used
    if (changed) syncRunMasks();
    decay = gradientFlowDecay(step - 1, { kind: 'cosine', steps: Math.max(1, stage.steps), from: 1, to: cfg.finalDecay });
    beta = maskDecayFactor(step - 1, { shape: cfg.decayShape, rate: cfg.decayRate });
  };
  const targeted = new Set(layers.map((l) => l.name));
  const hooks = {
    weight: (name: string, p: tf.Tensor) => (targeted.has(name) ? nmMaskedWeight(p, current.get(name)!.t, estimator()) : p),
  };
  try {
    const r = await optimize(args, stage, {
      variables,
      loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
      beforeStep: recompute,
      stageState: () => {
        // the frame and mask-decay factor the last step used (derived from the step again on resume; kept for inspection)
        return { nmPattern: `${phase.n}:${phase.m}`, maskDecay: beta };
      },
    });
    // final mask from the trained weights; pruned entries become exact zeros
    for (const l of layers) {
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v);
      const mask = nmMask(w, { n: cfg.n, m: cfg.m });
      assignValues(v, applyMask(mask, w).data as Float32Array);
      setMask(l.name, mask);
    }
    phase = { start: 0, n: cfg.n, m: cfg.m };
    syncRunMasks();
    return { summary: `${cfg.n}:${cfg.m} with ${cfg.estimator}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  } finally {
    for (const c of current.values()) c.t.dispose();
  }
}
