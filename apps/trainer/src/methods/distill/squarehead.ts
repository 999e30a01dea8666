// distill stage: SquareHead (Kurtic et al. 2023) — the student (the current, pruned model, masks held
// fixed) matches a dense teacher's hidden state after every block, each term normalized by the
// teacher's energy, plus optional cross-entropy and logit KL. The teacher is a snapshot taken after
// an earlier stage.

import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { createModel } from '../../model/index.js';
import { crossEntropy } from '../../model/ops.js';
import type { StageOf } from '../../recipe/schema.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';

/** SquareHead (Kurtic et al.): per-block L2 between student and teacher hidden states, each normalized by the teacher's. */
export const squareHeadConfigSchema = z.strictObject({
  /** Weight of the summed per-block normalized MSE. */
  featureWeight: z.number().min(0).default(1),
  /** Weight of the next-token cross-entropy on the data. */
  ceWeight: z.number().min(0).default(1),
  /** Weight of the KL divergence from the teacher's next-token distribution. */
  logitWeight: z.number().min(0).default(0),
});
type SquareHeadConfig = z.output<typeof squareHeadConfigSchema>;

export const squareHeadMethod: TrainerMethod<'distill'> = {
  kind: 'distill',
  name: 'squarehead',
  describe: 'SquareHead distillation from a dense self-teacher, masks held fixed',
  paper: 'Kurtic et al. 2023, Sparse Fine-tuning for Inference Acceleration of Large Language Models (SquareHead)',
  differs: [],
  schema: squareHeadConfigSchema,
  from: '@sparse/trainer',
  run: runDistillStage,
};

/** Σ_blocks mean((s - t)²) / mean(t²): SquareHead's feature loss. */
export function squareHeadLoss(student: tf.Tensor[], teacher: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.addN(student.map((s, i) => tf.div(tf.mean(tf.square(tf.sub(s, teacher[i]!))), tf.add(tf.mean(tf.square(teacher[i]!)), 1e-12)))) as tf.Scalar);
}

async function runDistillStage(args: StageArgs<StageOf<'distill'>>): Promise<StageOutcome> {
  const { ctx, stage, label } = args;
  const teacherIndex = args.teacher;
  if (teacherIndex === undefined) throw new Error(`${label}: the runner gave no teacher stage`);
  const cfg = stage.config as SquareHeadConfig;
  const snap = ctx.snapshots.get(teacherIndex);
  if (!snap) throw new Error(`${label}: no teacher snapshot after stage ${teacherIndex}`);
  if (ctx.adapter) throw new Error(`${label}: an adapter is attached and not merged; distillation trains the base weights`);
  const teacher = createModel(ctx.model.spec, { values: snap });
  const hooks = ctx.hooks({ maskBase: true });
  const variables = new Map(Object.entries(ctx.model.params));
  try {
    const r = await optimize(args, stage, {
      variables,
      loss: (ids, targets) => {
        const sHidden: tf.Tensor[] = [];
        const tHidden: tf.Tensor[] = [];
        const [b, t] = ids.shape;
        const logits = ctx.model.logits2d(ids, { ...hooks, blockOutput: (_, h) => sHidden.push(h) });
        const tLogits = teacher.logits2d(ids, { blockOutput: (_, h) => tHidden.push(h) });
        let loss = tf.mul(squareHeadLoss(sHidden, tHidden), cfg.featureWeight) as tf.Scalar;
        if (cfg.ceWeight > 0) {
          const ce = crossEntropy(logits, tf.reshape(targets, [b * t]) as tf.Tensor1D);
          loss = tf.add(loss, tf.mul(ce, cfg.ceWeight));
        }
        if (cfg.logitWeight > 0) {
          const pT = tf.softmax(tLogits);
          const kl = tf.mean(tf.sum(tf.mul(pT, tf.sub(tf.logSoftmax(tLogits), tf.logSoftmax(logits))), 1));
          loss = tf.add(loss, tf.mul(kl, cfg.logitWeight));
        }
        return loss;
      },
    });
    return { summary: `SquareHead from the model after stage ${teacherIndex}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
  } finally {
    teacher.dispose();
  }
}
