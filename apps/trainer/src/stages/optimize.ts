// The shared body of every optimizing stage (pretrain, train, adapt, distill): pick the token
// stream, run the resumable loop with checkpoints, record the loss curve and step events. A stage
// either gives variables and a loss (NamedAdam) or its own update (sparse fine-tuning, MeZO).

import type * as tf from '@tensorflow/tfjs-core';
import { NamedAdam } from '../train/adam.js';
import type { SparseLinears } from '../train/sparse-linear.js';
import { MaskStats } from './mask-stats.js';
import { runSteps, type StepInfo, type StepsResult, type StepUpdate } from '../train/steps.js';
import { stageRng, windowLength, type StageArgs } from './common.js';

export interface TrainingFields {
  steps: number;
  batch: number;
  lr: number;
  warmup?: number | undefined;
  minLrRatio: number;
  clipNorm: number;
  checkpointEvery: number;
  data: 'train' | 'shifted';
}

export interface GradientSpec {
  variables: ReadonlyMap<string, tf.Variable>;
  loss: (ids: tf.Tensor2D, targets: tf.Tensor2D, step: number) => tf.Scalar;
  /** Runs before each step's forward pass; gets the stage's optimizer (e.g. to reset moments of re-initialized tensors). */
  beforeStep?: (step: number, optimizer: NamedAdam) => void;
  gradTransform?: (key: string, variable: tf.Variable, grad: tf.Tensor) => tf.Tensor;
  /** Extra JSON a checkpoint inside this stage carries (e.g. when masks were last recomputed). */
  stageState?: () => Record<string, unknown>;
  /**
   * Layers training packed on the sparse path (their values are among `variables`): synced into the
   * dense weights, and their moments laid out dense, before a checkpoint and at the end; a resumed
   * stage gathers the moments back.
   */
  sparse?: SparseLinears;
  update?: undefined;
}

export interface UpdateSpec {
  /** One step at the scheduled lr; the stage's weights and optimizer are its own. */
  update: (ids: tf.Tensor2D, targets: tf.Tensor2D, lr: number, step: number) => Promise<StepUpdate>;
  /**
   * What a checkpoint inside this stage must carry to continue exactly (its optimizer, seed streams).
   * Typed arrays in it are stored as tensors of the checkpoint file, the rest as JSON.
   */
  stageState?: () => Record<string, unknown>;
}

export type OptimizeSpec = GradientSpec | UpdateSpec;

export async function optimize(args: StageArgs, fields: TrainingFields, spec: OptimizeSpec): Promise<StepsResult> {
  const { ctx, index, label } = args;
  const stream = fields.data === 'shifted' ? ctx.data.shifted() : ctx.data.main;
  const data = stream.train;
  const len = windowLength(args, data);
  const rng = stageRng(args);
  // only the gradient path has a NamedAdam; an update stage keeps its optimizer in its stage state
  const optimizer = spec.update === undefined ? new NamedAdam(0.9, 0.95, 1e-8) : undefined;
  const sparse = spec.update === undefined ? spec.sparse : undefined;
  if (optimizer && args.resume?.optimizer) optimizer.load(sparse ? sparse.packedState(args.resume.optimizer) : args.resume.optimizer);
  const curve = ctx.report.lossCurves.find((c) => c.label === label) ?? { label, points: [] };
  if (!ctx.report.lossCurves.includes(curve)) ctx.report.lossCurves.push(curve);
  const maskStats = new MaskStats(ctx, index, label, fields.batch * len);
  const progress = ctx.log.stageProgress(`[${index + 1}/${ctx.recipe.stages.length}] ${label}`);
  ctx.log.say(`${label}: ${fields.steps} steps x batch ${fields.batch} x ${len} tokens on ${fields.data === 'shifted' ? 'the shifted task' : 'the training data'}, lr ${fields.lr}${args.resume ? `, resuming after step ${args.resume.step}` : ''}`);
  const common = {
    data,
    steps: fields.steps,
    startStep: args.resume?.step ?? 0,
    batch: fields.batch,
    len,
    lr: fields.lr,
    warmup: fields.warmup,
    minLrRatio: fields.minLrRatio,
    rng,
    afterStep: (info: StepInfo) => {
      progress(info);
      curve.points.push({ step: info.step, loss: info.loss });
      const masks = maskStats.afterStep(info.step);
      ctx.log.event({ event: 'step', stage: index, label, step: info.step, steps: info.steps, loss: info.loss, lr: info.lr, ...(info.gradNorm !== undefined ? { gradNorm: info.gradNorm } : {}), tokensPerSec: info.tokensPerSec, ...masks });
    },
    checkpointEvery: fields.checkpointEvery,
    ...(ctx.stopSignal ? { signal: ctx.stopSignal } : {}),
    onCheckpoint: (step: number) => {
      sparse?.syncDense();
      const adam = optimizer?.state();
      return args.checkpoint(step, { batches: rng.state(), ...(spec.stageState?.() ?? {}) }, adam && sparse ? sparse.denseState(adam) : adam);
    },
  };
  try {
    const result = await runSteps(
      spec.update !== undefined
        ? { ...common, update: spec.update }
        : {
            ...common,
            clipNorm: fields.clipNorm,
            variables: spec.variables,
            optimizer: optimizer!,
            loss: spec.loss,
            ...(spec.beforeStep ? { beforeStep: (step: number) => spec.beforeStep!(step, optimizer!) } : {}),
            ...(spec.gradTransform ? { gradTransform: spec.gradTransform } : {}),
          },
    );
    ctx.log.endProgress();
    if (result.losses.length > 0) {
      const tps = result.tokens / Math.max(1e-9, result.elapsedMs / 1000);
      ctx.log.say(`${label}: final loss ${result.losses.at(-1)!.toFixed(4)}, ${Math.round(tps).toLocaleString('en-US')} tokens/s`);
    }
    return result;
  } finally {
    sparse?.syncDense();
    optimizer?.dispose();
  }
}
