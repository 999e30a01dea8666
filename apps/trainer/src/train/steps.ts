// The resumable training loop every optimizing stage uses: seeded batches, a warmup + cosine
// schedule, checkpoints every k steps, and either NamedAdam with global-norm clipping or a stage's own
// update (sparse fine-tuning, MeZO). Given the same batch generator state, optimizer state and
// weights, steps s+1.. are the same whether or not the process stopped at s.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, type Random } from '@sparse/tensor';
import { sumOfSquares } from '@sparse/kernels-cpu/tfjs';
import { sampleBatch } from '../data/dataset.js';
import type { NamedAdam } from './adam.js';

export interface StepInfo {
  /** 1-based step number within the stage. */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (absent when a stage's own update does not report one). */
  gradNorm?: number;
  /** Tokens trained on in this process so far (a resumed stage counts from its resume point). */
  tokens: number;
  elapsedMs: number;
  tokensPerSec: number;
  etaMs: number;
}

/** What a stage's own update reports for one step. */
export interface StepUpdate {
  loss: number;
  gradNorm?: number;
}

interface CommonStepsOptions {
  data: Int32Array;
  /** Total steps of the stage. */
  steps: number;
  /** Steps already done (resume); the schedule continues from here. */
  startStep?: number;
  /** Length of the learning-rate schedule (default `steps`): a run that stops early follows a longer schedule. */
  scheduleSteps?: number;
  batch: number;
  len: number;
  lr: number;
  warmup?: number;
  minLrRatio?: number;
  /** The batch sampler; its state is what a checkpoint saves. */
  rng: Random;
  /** Runs before each step's forward pass (mask recomputation). */
  beforeStep?: (step: number) => void;
  /** Runs after each update (re-masking, progress, metrics). */
  afterStep?: (info: StepInfo) => void | Promise<void>;
  /** Called after every `checkpointEvery` steps and after the last one. */
  checkpointEvery?: number;
  onCheckpoint?: (stepDone: number) => void | Promise<void>;
  /**
   * A stop request (Ctrl-C): the loop lets the event loop run after every step so the request gets
   * through, and once it is aborted finishes the step, calls onCheckpoint for it and throws
   * StepsStopped (unless onCheckpoint throws first).
   */
  signal?: AbortSignal;
}

/** The loss became NaN or infinite; `step` is the step that produced it. */
export class TrainingDivergedError extends Error {
  readonly step: number;
  readonly loss: number;
  constructor(step: number, loss: number) {
    super(`training diverged: loss is ${loss} at step ${step} (try a lower lr)`);
    this.name = 'TrainingDivergedError';
    this.step = step;
    this.loss = loss;
  }
}

/** runSteps stopped on its signal after `step` (and its checkpoint). */
export class StepsStopped extends Error {
  readonly step: number;
  constructor(step: number) {
    super(`stopped after step ${step}`);
    this.name = 'StepsStopped';
    this.step = step;
  }
}

/** One turn of the event loop (signals and other I/O callbacks run). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Gradient descent on tfjs variables with NamedAdam. */
export interface GradientStepsOptions extends CommonStepsOptions {
  clipNorm?: number;
  /** Trainable variables by stable key (read again after each beforeStep, which may replace one). */
  variables: ReadonlyMap<string, tf.Variable>;
  optimizer: NamedAdam;
  /** The loss of one batch (called inside tf.variableGrads). */
  loss: (ids: tf.Tensor2D, targets: tf.Tensor2D, step: number) => tf.Scalar;
  /** Changes a (clipped) gradient before the optimizer sees it (AdamS's decay of pruned entries). */
  gradTransform?: (key: string, variable: tf.Variable, grad: tf.Tensor) => tf.Tensor;
  update?: undefined;
}

/** A stage that updates its weights itself (its own optimizer, or no gradients at all). */
export interface UpdateStepsOptions extends CommonStepsOptions {
  /** One step on a batch at the scheduled `lr`; the loop disposes ids and targets afterwards. */
  update: (ids: tf.Tensor2D, targets: tf.Tensor2D, lr: number, step: number) => Promise<StepUpdate>;
}

export type StepsOptions = GradientStepsOptions | UpdateStepsOptions;

/** Learning rate at 1-based `step`: linear warmup to `lr`, then cosine decay to lr*minLrRatio. */
export function lrAt(step: number, steps: number, lr: number, warmup: number, minLrRatio: number): number {
  if (warmup > 0 && step <= warmup) return (lr * step) / warmup;
  const span = Math.max(1, steps - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return lr * (minLrRatio + (1 - minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export interface StepsResult {
  losses: number[];
  tokens: number;
  elapsedMs: number;
}

/** One NamedAdam step on the batch: gradients, global-norm clipping, optional transform. */
function gradientStep(o: GradientStepsOptions, ids: tf.Tensor2D, targets: tf.Tensor2D, lr: number, step: number, keyOf: Map<string, string>, varList: tf.Variable[]): [tf.Scalar, tf.Tensor] {
  const clip = o.clipNorm ?? 1;
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => o.loss(ids, targets, step), varList);
    // one native pass over every gradient on sparse-cpu (float64 sum), two tfjs ops per tensor elsewhere
    const n = Math.sqrt(sumOfSquares(Object.values(grads)));
    const norm = tf.scalar(n);
    const scale = clip > 0 && Number.isFinite(clip) && n > clip ? clip / n : 1;
    o.optimizer.apply(
      Object.entries(grads).map(([name, g]) => {
        const key = keyOf.get(name)!;
        const variable = o.variables.get(key)!;
        const clipped = scale === 1 ? g : tf.mul(g, scale);
        return { key, variable, grad: o.gradTransform ? o.gradTransform(key, variable, clipped) : clipped };
      }),
      lr,
    );
    return [value, norm];
  });
}

export async function runSteps(o: StepsOptions): Promise<StepsResult> {
  const { data, steps, batch, len } = o;
  const start0 = o.startStep ?? 0;
  if (!Number.isInteger(steps) || steps < 0) throw new ArgumentError(`steps must be a non-negative integer, got ${steps}`);
  if (!Number.isInteger(start0) || start0 < 0 || start0 > steps) throw new ArgumentError(`startStep must be in [0, ${steps}], got ${start0}`);
  if (!(o.lr > 0)) throw new ArgumentError(`lr must be positive, got ${o.lr}`);
  const direct = o.update !== undefined;
  if (!direct && o.variables.size === 0 && steps > start0) throw new ArgumentError('nothing to train: no trainable variables');
  const schedule = o.scheduleSteps ?? steps;
  if (!Number.isInteger(schedule) || schedule < steps) throw new ArgumentError(`scheduleSteps must be an integer >= steps (${steps}), got ${schedule}`);
  const warmup = o.warmup ?? Math.min(100, Math.floor(schedule / 10));
  const minLrRatio = o.minLrRatio ?? 0.1;
  const every = o.checkpointEvery ?? Infinity;
  let keyOf = new Map<string, string>();
  let varList: tf.Variable[] = [];
  const losses: number[] = [];
  const t0 = performance.now();
  let tokens = 0;
  for (let step = start0 + 1; step <= steps; step++) {
    const lr = lrAt(step, schedule, o.lr, warmup, minLrRatio);
    o.beforeStep?.(step);
    if (!direct && (step === start0 + 1 || o.beforeStep)) {
      // read after beforeStep: a mask update may have replaced a variable (a packed layer whose count changed)
      keyOf = new Map([...o.variables].map(([k, v]) => [v.name, k]));
      varList = [...o.variables.values()];
    }
    const b = sampleBatch(data, batch, len, o.rng);
    let loss: number;
    let gradNorm: number | undefined;
    if (direct) {
      const ids = tf.tensor2d(b.inputs, [batch, len], 'int32');
      const targets = tf.tensor2d(b.targets, [batch, len], 'int32');
      try {
        ({ loss, gradNorm } = await o.update(ids, targets, lr, step));
      } finally {
        tf.dispose([ids, targets]);
      }
    } else {
      const [lossT, normT] = tf.tidy(() => {
        const ids = tf.tensor2d(b.inputs, [batch, len], 'int32');
        const targets = tf.tensor2d(b.targets, [batch, len], 'int32');
        return gradientStep(o, ids, targets, lr, step, keyOf, varList);
      });
      loss = (await lossT.data())[0]!;
      gradNorm = (await normT.data())[0]!;
      lossT.dispose();
      normT.dispose();
    }
    if (!Number.isFinite(loss)) throw new TrainingDivergedError(step, loss);
    losses.push(loss);
    tokens += batch * len;
    const elapsedMs = performance.now() - t0;
    const done = step - start0;
    await o.afterStep?.({ step, steps, loss, lr, ...(gradNorm !== undefined ? { gradNorm } : {}), tokens, elapsedMs, tokensPerSec: tokens / (elapsedMs / 1000), etaMs: (elapsedMs / done) * (steps - step) });
    if (o.signal) await nextTurn();
    const stopping = o.signal?.aborted === true;
    if (o.onCheckpoint && (step % every === 0 || step === steps || stopping)) await o.onCheckpoint(step);
    if (stopping) throw new StepsStopped(step);
  }
  return { losses, tokens, elapsedMs: performance.now() - t0 };
}
