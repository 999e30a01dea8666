// train method 'adams': N:M through CAST (Huang et al., "CAST: Continuous and Differentiable
// Semi-Structured Sparsity-Aware Training for Large Language Models", 2025), its three parts in one stage:
//   - AdamS (@sparse/nm/tfjs adamsStep, the update written out there): the loss sees the dense weights;
//     the entries the current N:M mask prunes (recomputed from |W| every `every` steps, CAST's T1) get an
//     L1 decay that enters after Adam's first moment and inside its second; lambda optionally ramps up;
//   - weight scaling: one learned scale per output row of each targeted weight (W_eff = diag(s) W, s from
//     1), trained jointly (no decay on s) and merged into the weight at the end;
//   - self-distillation: the dense model as the stage starts is a frozen teacher; the loss is
//     (1 - distill) · CE + distill · T² · KL(teacher ‖ student) at temperature T.
// At the end the hard mask from |W| and the merged weight s · (M ⊙ W).
// differs: the teacher is the stage's starting weights (the paper's self-teacher is the dense model the
// training starts from: the same thing when the stage starts from the dense model); one scale per
// output row is our reading of the weight-scaling module; every other parameter (embeddings, norms,
// biases, the scales) takes Adam; betas (0.9, 0.95) and eps 1e-8 as the trainer's other stages.

import * as tf from '@tensorflow/tfjs-core';
import { applyMask, type Mask } from '@sparse/masks';
import { sumOfSquares } from '@sparse/kernels-cpu/tfjs';
import { mergeRowScales, nmMask } from '@sparse/nm';
import { adamsConfigSchema, type AdamSConfig } from '@sparse/nm/schemas';
import { distillationLoss, KeyedAdamS, rowScaledWeight, type KeyedAdamSState } from '@sparse/nm/tfjs';
import { crossEntropy } from '../../model/ops.js';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const adamsMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'adams',
  describe:
    "N:M through CAST (Huang et al. 2025): AdamS's adaptive L1 decay of pruned entries during dense training, learned per-row weight scales and self-distillation from the starting dense model, then the hard mask (differs: one scale per output row; teacher = the stage's starting weights) (@sparse/nm)",
  paper: 'Huang et al. 2025, CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware Training for Large Language Models',
  differs: [
    'the teacher is the stage\'s starting weights (the paper\'s self-teacher is the dense model training starts from: the same when the stage starts dense)',
    'one scale per output row is this library\'s reading of the paper\'s weight-scaling module',
    'the decay\'s placement follows the authors\' released AdamS update; every other parameter (embeddings, norms, biases, the scales) takes Adam with betas (0.9, 0.95), eps 1e-8',
  ],
  schema: adamsConfigSchema,
  from: '@sparse/nm',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainCAST(args);
  },
};

/** Prefix of the scale keys in the optimizer state (model parameter names never start with it). */
const SCALE = 'cast.scale/';

async function trainCAST(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const cfg = stage.config as AdamSConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${args.index}]`);
  for (const l of layers) {
    if (l.in % cfg.m !== 0) throw new Error(`stages[${args.index}].config.m: ${l.name} has ${l.in} inputs, not a multiple of m = ${cfg.m}`);
  }
  const targeted = new Set(layers.map((l) => l.name));
  const saved = args.resume?.stageState as { castTeacher?: Record<string, Float32Array>; castScales?: Record<string, Float32Array>; adams?: KeyedAdamSState } | undefined;
  // the teacher: every parameter as the stage starts (a resumed stage reads it from its checkpoint)
  const teacherValues = saved?.castTeacher ?? (cfg.distill > 0 ? Object.fromEntries(Object.entries(ctx.model.params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)])) : {});
  if (cfg.distill > 0 && args.resume && !saved?.castTeacher) throw new Error(`stages[${args.index}]: the checkpoint has no CAST teacher to resume with`);
  const teacher = new Map(Object.entries(teacherValues).map(([k, d]) => [k, tf.keep(tf.tensor(d, ctx.model.params[k]!.shape))]));
  const scales = new Map<string, tf.Variable>();
  if (cfg.scaling === 'learned') {
    for (const l of layers) scales.set(l.name, tf.variable(saved?.castScales?.[l.name] ? tf.tensor1d(saved.castScales[l.name]!) : tf.ones([l.out]), true));
  }
  const opt = new KeyedAdamS(0.9, 0.95, 1e-8);
  if (saved?.adams) opt.load(saved.adams);
  const params = Object.entries(ctx.model.params);
  const studentHooks = { weight: (name: string, p: tf.Tensor) => (scales.has(name) ? rowScaledWeight(p, scales.get(name)!) : p) };
  const teacherHooks = { weight: (name: string, p: tf.Tensor) => teacher.get(name) ?? p };
  // masks are run masks while the stage runs, so a checkpoint carries them; the model stays dense
  const recompute = (step: number) => {
    const due = (step - 1) % cfg.every === 0;
    for (const l of layers) if (due || !ctx.masks.has(l.name)) ctx.setMask(l.name, nmMask(coreOf(ctx.model.params[l.name]!), { n: cfg.n, m: cfg.m }));
  };
  const lambdaAt = (step: number) => cfg.lambda * (cfg.rampSteps > 0 ? Math.min(1, step / cfg.rampSteps) : 1);
  const lossOf = (ids: tf.Tensor2D, targets: tf.Tensor2D, teacherLogits: tf.Tensor | undefined): tf.Scalar => {
    const logits = ctx.model.logits2d(ids, studentHooks);
    const [b, t] = targets.shape;
    const ce = crossEntropy(logits, tf.reshape(targets, [b * t]) as tf.Tensor1D);
    if (!teacherLogits) return ce;
    return tf.add(tf.mul(ce, 1 - cfg.distill), tf.mul(distillationLoss(logits, teacherLogits, cfg.temperature), cfg.distill)) as tf.Scalar;
  };
  try {
    const r = await optimize(args, stage, {
      update: async (ids, targets, lr, step) => {
        recompute(step);
        const teacherLogits = cfg.distill > 0 ? tf.tidy(() => ctx.model.logits2d(ids, teacherHooks)) : undefined;
        try {
          const vars = [...params.map(([, v]) => v as tf.Variable), ...scales.values()];
          const { value, grads } = tf.variableGrads(() => lossOf(ids, targets, teacherLogits), vars);
          const keys = [...params.map(([k]) => k), ...[...scales.keys()].map((k) => SCALE + k)];
          const gs = vars.map((v) => grads[v.name]!);
          // global-norm clipping, as every optimizing stage
          const norm = Math.sqrt(sumOfSquares(gs));
          const clip = stage.clipNorm;
          const factor = clip > 0 && Number.isFinite(clip) && norm > clip ? clip / norm : 1;
          const clipped = gs.map((g) => (factor === 1 ? g : tf.mul(g, factor)));
          const lambda = lambdaAt(step);
          opt.apply(
            vars.map((v, i) => ({ key: keys[i]!, variable: v, grad: clipped[i]!, ...(targeted.has(keys[i]!) ? { mask: ctx.maskTensor(keys[i]!)!, lambda } : {}) })),
            lr,
          );
          const loss = value.dataSync()[0]!;
          tf.dispose([value, ...gs, ...clipped.filter((g, i) => g !== gs[i])]);
          return { loss, gradNorm: norm };
        } finally {
          teacherLogits?.dispose();
        }
      },
      stageState: () => ({
        adams: opt.state(),
        castScales: Object.fromEntries([...scales].map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)])),
        ...(cfg.distill > 0 ? { castTeacher: teacherValues } : {}),
      }),
    });
    // the hard mask from |W|, the learned scale merged: s · (M ⊙ W)
    const masks = new Map<string, Mask>();
    for (const l of layers) {
      const v = ctx.model.params[l.name]!;
      const w = coreOf(v);
      const mask = nmMask(w, { n: cfg.n, m: cfg.m });
      const s = scales.get(l.name)?.dataSync();
      assignValues(v, (s ? mergeRowScales(w, mask, s) : applyMask(mask, w)).data as Float32Array);
      masks.set(l.name, mask);
    }
    for (const [k, m] of masks) ctx.setMask(k, m);
    ctx.pattern = { n: cfg.n, m: cfg.m };
    return {
      summary: `CAST ${cfg.n}:${cfg.m}, lambda ${cfg.lambda}${cfg.scaling === 'learned' ? ', learned row scales merged' : ''}${cfg.distill > 0 ? `, self-distillation ${cfg.distill}` : ''}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}`,
    };
  } finally {
    opt.dispose();
    for (const t of teacher.values()) t.dispose();
    for (const s of scales.values()) s.dispose();
  }
}
