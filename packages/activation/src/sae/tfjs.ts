// Training a TopK sparse autoencoder with tfjs: Adam on the reconstruction MSE plus the AuxK loss, decoder
// columns renormalized to unit norm after every step, dead latents tracked batch by batch.

import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { DeadLatentTracker, denseLatents, encodeSAE, initSAE, saeConfigSchema, type TopKSAE } from './sae.js';

export const trainSAEConfigSchema = saeConfigSchema.extend({
  /** Optimizer steps. */
  steps: z.int().min(0).default(200),
  /** Tokens per step, drawn without replacement (a fresh shuffle each pass over the data). */
  batchSize: z.int().min(1).default(256),
  /** Adam's learning rate. */
  lr: z.number().gt(0).default(1e-3),
  /** Dead latents the AuxK loss reconstructs the residual from, per token (default: half the features, at most the latents). */
  auxK: z.int().min(0).optional(),
  /** Weight of the AuxK loss. */
  auxCoef: z.number().min(0).default(1 / 32),
  /** A latent is dead after this many tokens without firing. */
  deadAfter: z.int().min(1).default(10_000),
});

export type TrainSAEConfig = z.output<typeof trainSAEConfigSchema>;
export type TrainSAEConfigInput = z.input<typeof trainSAEConfigSchema>;

/** One step's numbers (computed on the step's batch, before its update). */
export interface SAEStepStats {
  step: number;
  /** mse + auxLoss, what Adam minimized. */
  loss: number;
  /** Mean squared reconstruction error over the batch's entries. */
  mse: number;
  /** The AuxK term (already times auxCoef). */
  auxLoss: number;
  /** Σ‖x - x̂‖² / Σ‖x - mean(x)‖² over the batch. */
  nmse: number;
  /** Dead latents after counting this batch. */
  dead: number;
}

export interface TrainSAEResult {
  sae: TopKSAE;
  history: SAEStepStats[];
  tracker: DeadLatentTracker;
}

/** Top-`k` 0/1 mask [rows, n] of `scores` (a tensor), built from tf.topk's indices. */
function topMask(scores: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { indices } = tf.topk(scores, k);
    return tf.cast(tf.sum(tf.oneHot(indices, scores.shape[1]), 1), 'float32') as tf.Tensor2D;
  });
}

/**
 * Trains a TopK autoencoder on samples [tokens, features] (row-major). Starts from `init` when given, else from
 * initSAE (tied encoder, b_pre from the data). Each step: the batch's kept latents (TopK of the current
 * pre-activations) and dead latents (after counting the batch) are fixed masks; the loss is
 * mean((x - x̂)²) + auxCoef · mean((e - ê)²), e = x - x̂ held constant, ê the decoder applied to the top auxK
 * dead latents' pre-activations; Adam steps; the decoder's columns are rescaled to unit norm.
 */
export function trainSAE(samples: Float32Array, tokens: number, features: number, config: TrainSAEConfigInput, init?: TopKSAE): TrainSAEResult {
  const c = trainSAEConfigSchema.parse(config);
  if (!Number.isInteger(tokens) || tokens < 1 || !Number.isInteger(features) || features < 1) throw new ArgumentError(`trainSAE: need tokens >= 1 and features >= 1, got ${tokens}, ${features}`);
  if (samples.length !== tokens * features) throw new ShapeError(`trainSAE: samples has ${samples.length} values, expected ${tokens} x ${features}`);
  const start = init ?? initSAE(features, { latents: c.latents, k: c.k, activation: c.activation, bPreInit: c.bPreInit, seed: c.seed }, { x: samples, tokens });
  if (start.features !== features) throw new ShapeError(`trainSAE: init has ${start.features} features, the samples ${features}`);
  const { latents, k } = start;
  const relu = start.activation === 'relu';
  const auxK = Math.min(c.auxK ?? Math.max(1, Math.floor(features / 2)), latents);
  const batch = Math.min(c.batchSize, tokens);
  const rng = new Random(c.seed).fork('batches');
  const tracker = new DeadLatentTracker(latents, c.deadAfter);
  const history: SAEStepStats[] = [];

  const wEnc = tf.variable(tf.tensor2d(start.wEnc, [latents, features]));
  const bEnc = tf.variable(tf.tensor1d(start.bEnc));
  const wDec = tf.variable(tf.tensor2d(start.wDec, [features, latents]));
  const bPre = tf.variable(tf.tensor1d(start.bPre));
  const vars = [wEnc, bEnc, wDec, bPre];
  const opt = tf.train.adam(c.lr);
  const act = (t: tf.Tensor2D) => (relu ? tf.relu(t) : t);
  const preOf = (x: tf.Tensor2D) => tf.add(tf.matMul(tf.sub(x, bPre), wEnc, false, true), bEnc) as tf.Tensor2D;
  const decode = (z: tf.Tensor2D) => tf.matMul(z, wDec, false, true) as tf.Tensor2D;

  let order = rng.permutation(tokens);
  let pos = 0;
  const rows = new Float32Array(batch * features);
  try {
    for (let step = 0; step < c.steps; step++) {
      for (let r = 0; r < batch; r++) {
        if (pos === tokens) {
          order = rng.permutation(tokens);
          pos = 0;
        }
        const t = order[pos++]!;
        rows.set(samples.subarray(t * features, (t + 1) * features), r * features);
      }
      const x = tf.tensor2d(rows, [batch, features]);
      // the masks and the residual come from the current parameters, outside the gradient
      const { keep, residual, fired } = tf.tidy(() => {
        const pre = preOf(x);
        const keep = topMask(pre, k);
        const z = tf.mul(act(pre), keep) as tf.Tensor2D;
        return { keep, residual: tf.sub(x, tf.add(decode(z), bPre)) as tf.Tensor2D, fired: z };
      });
      const firedValues = fired.dataSync() as Float32Array;
      tracker.update(sparseFromDense(firedValues, batch, latents, k));
      fired.dispose();
      const dead = tracker.dead();
      const nDead = dead.reduce((s, v) => s + v, 0);
      const kAux = Math.min(auxK, nDead);
      let aux: tf.Tensor2D | undefined;
      if (kAux > 0 && c.auxCoef > 0) {
        aux = tf.tidy(() => {
          // live latents pushed far below every dead one, so the top kAux are dead (there are at least kAux)
          const shift = tf.mul(tf.sub(tf.tensor1d(Float32Array.from(dead)), 1), 1e30);
          return topMask(tf.add(preOf(x), shift) as tf.Tensor2D, kAux);
        });
      }
      let mseV = 0;
      let auxV = 0;
      opt.minimize(
        () => {
          const pre = preOf(x);
          const xHat = tf.add(decode(tf.mul(act(pre), keep) as tf.Tensor2D), bPre);
          const mse = tf.mean(tf.square(tf.sub(x, xHat)));
          mseV = mse.dataSync()[0]!;
          if (aux === undefined) return mse as tf.Scalar;
          const eHat = decode(tf.mul(act(pre), aux) as tf.Tensor2D);
          const auxLoss = tf.mul(tf.mean(tf.square(tf.sub(residual, eHat))), c.auxCoef);
          auxV = auxLoss.dataSync()[0]!;
          return tf.add(mse, auxLoss) as tf.Scalar;
        },
        false,
        vars,
      );
      tf.tidy(() => {
        const norms = tf.sqrt(tf.sum(tf.square(wDec), 0, true));
        wDec.assign(tf.div(wDec, tf.maximum(norms, 1e-12)));
      });
      const nmse = tf.tidy(() => {
        const base = tf.sum(tf.square(tf.sub(x, tf.mean(x, 0, true)))).dataSync()[0]!;
        const err = tf.sum(tf.square(residual)).dataSync()[0]!;
        return base === 0 ? 0 : err / base;
      });
      history.push({ step, loss: mseV + auxV, mse: mseV, auxLoss: auxV, nmse, dead: tracker.deadCount() });
      tf.dispose([x, keep, residual, ...(aux ? [aux] : [])]);
    }
    const sae: TopKSAE = {
      features,
      latents,
      k,
      activation: start.activation,
      wEnc: Float32Array.from(wEnc.dataSync()),
      bEnc: Float32Array.from(bEnc.dataSync()),
      wDec: Float32Array.from(wDec.dataSync()),
      bPre: Float32Array.from(bPre.dataSync()),
    };
    return { sae, history, tracker };
  } finally {
    tf.dispose(vars);
    opt.dispose();
  }
}

/** The kept latents of dense z [tokens, latents] that has at most k non-zeros per row, as a SparseCode (zeros pad). */
function sparseFromDense(z: Float32Array, tokens: number, latents: number, k: number): { tokens: number; k: number; indices: Int32Array; values: Float32Array } {
  const indices = new Int32Array(tokens * k);
  const values = new Float32Array(tokens * k);
  for (let t = 0; t < tokens; t++) {
    let p = t * k;
    for (let j = 0; j < latents && p < (t + 1) * k; j++) {
      const v = z[t * latents + j]!;
      if (v !== 0) {
        indices[p] = j;
        values[p++] = v;
      }
    }
  }
  return { tokens, k, indices, values };
}

/** The autoencoder's reconstruction of x [tokens, features] in tfjs (for use inside a larger graph; no gradient to the SAE). */
export function reconstructSAE(sae: TopKSAE, x: tf.Tensor2D): tf.Tensor2D {
  const [tokens, features] = x.shape;
  if (features !== sae.features) throw new ShapeError(`reconstructSAE: x has ${features} features, the autoencoder ${sae.features}`);
  const code = encodeSAE(sae, x.dataSync() as Float32Array, tokens);
  return tf.tidy(() => tf.add(tf.matMul(tf.tensor2d(denseLatents(code, sae.latents), [tokens, sae.latents]), tf.tensor2d(sae.wDec, [features, sae.latents]), false, true), tf.tensor1d(sae.bPre)) as tf.Tensor2D);
}
