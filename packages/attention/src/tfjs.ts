// @sparse/attention/tfjs: the training-time parts. SeerAttention's block gate learned by distillation: the
// gate's block distribution (softmax over key blocks of projected pooled q · projected pooled k) is fitted
// to the block-wise max-pooled attention map of the frozen model's full attention, by KL divergence, with
// Adam. The frozen q and k are constants; only the gate's projections are trained.
// The only entry that imports @tensorflow/tfjs-core (an optional peer dependency). Gradients of tfjs-core's
// ops must be registered by the application (the @tensorflow/tfjs umbrella does it).

import { ArgumentError, Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { checkQKV, type AttentionShape } from './attention.js';
import { seerPool, seerTarget, type SeerGate } from './dynamic/seer.js';
import { toDense, validateBlockMask, type BlockMask } from './mask.js';

/** The additive score bias of masked-out elements in attentionBias (finite, so no row turns into NaN). */
export const MASKED_BIAS = -1e9;

/**
 * A BlockMask as an additive attention bias [heads or 1, seq, seq] (float32): 0 where allowed, MASKED_BIAS
 * where not. Added to the scores before the softmax, it gives dense attention the mask's sparsity pattern.
 */
export function attentionBias(mask: BlockMask): tf.Tensor3D {
  validateBlockMask(mask, 'attentionBias');
  const dense = toDense(mask);
  const bias = new Float32Array(dense.length);
  for (let n = 0; n < dense.length; n++) bias[n] = dense[n] === 1 ? 0 : MASKED_BIAS;
  return tf.tensor3d(bias, [mask.heads, mask.seq, mask.seq]);
}

/**
 * Differentiable attention under a BlockMask for training: softmax(q kᵀ · scale + bias) v with q, k, v
 * [heads, seq, headDim] (or [batch, heads, seq, headDim]); every score is computed (dense), the mask only
 * decides which take part, so gradients reach exactly the allowed (query, key) pairs. A row with no
 * allowed key would spread uniformly over all keys: masks here always allow some key per row when causal.
 */
export function maskedAttentionTensor<T extends tf.Tensor3D | tf.Tensor4D>(q: T, k: T, v: T, mask: BlockMask, opts: { scale?: number } = {}): T {
  if (!(q instanceof tf.Tensor) || !(k instanceof tf.Tensor) || !(v instanceof tf.Tensor)) throw new ArgumentError('maskedAttentionTensor: q, k and v must be tf.Tensors');
  if (q.rank !== 3 && q.rank !== 4) throw new ArgumentError(`maskedAttentionTensor: q must be [heads, seq, headDim] or [batch, heads, seq, headDim], got [${q.shape.join(', ')}]`);
  const seq = q.shape[q.rank - 2]!;
  const heads = q.shape[q.rank - 3]!;
  const d = q.shape[q.rank - 1]!;
  if (mask.seq !== seq) throw new ArgumentError(`maskedAttentionTensor: mask is for seq ${mask.seq}, q has ${seq}`);
  if (mask.heads !== 1 && mask.heads !== heads) throw new ArgumentError(`maskedAttentionTensor: mask has ${mask.heads} heads, q has ${heads}`);
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  return tf.tidy(() => {
    const bias = attentionBias(mask);
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), scale), bias);
    return tf.matMul(tf.softmax(scores), v) as T;
  });
}

/** One training sample: the frozen model's q [heads, seq, headDim] and k [kvHeads, seq, headDim] of one layer. */
export interface SeerSample {
  shape: AttentionShape;
  q: Float32Array;
  k: Float32Array;
}

export interface SeerTrainConfig {
  blockSize: number;
  /** Width of the gate space (default 16). */
  gateDim?: number;
  /** Adam steps over the whole sample set (default 200). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  learningRate?: number;
  /** Seed of the projections' initialization (default 0). */
  seed?: number;
  /** Causal attention (default true): the target and the gate's softmax see key blocks up to the query block. */
  causal?: boolean;
  /** Continue from a gate instead of a fresh one. */
  init?: SeerGate;
}

export interface SeerTrainResult {
  gate: SeerGate;
  /** Mean KL(target ‖ gate) per query block, before each step, then after the last one (steps + 1 values). */
  losses: number[];
}

interface Prepared {
  qPool: tf.Tensor3D;
  kPool: tf.Tensor3D;
  target: tf.Tensor3D;
  logTarget: tf.Tensor3D;
  bias: tf.Tensor2D;
  rows: number;
}

function prepare(s: SeerSample, blockSize: number, causal: boolean, heads: number, kvHeads: number, d: number): Prepared {
  const shape = checkQKV('trainSeerGate', s.shape, s.q, s.k);
  if (shape.heads !== heads || shape.kvHeads !== kvHeads || shape.headDim !== d) throw new ArgumentError('trainSeerGate: every sample must have the same heads, kvHeads and headDim');
  const pooled = seerPool(shape, s.q, s.k, blockSize);
  const nb = pooled.nb;
  const target = seerTarget(shape, s.q, s.k, blockSize, { causal });
  const bias = new Float32Array(nb * nb);
  for (let a = 0; a < nb; a++) for (let b = 0; b < nb; b++) bias[a * nb + b] = causal && b > a ? -1e9 : 0;
  const logT = target.map((t) => (t > 0 ? Math.log(t) : 0));
  return {
    qPool: tf.tensor3d(Float32Array.from(pooled.q), [heads, nb, d]),
    kPool: tf.tensor3d(Float32Array.from(pooled.k), [kvHeads, nb, 3 * d]),
    target: tf.tensor3d(Float32Array.from(target), [heads, nb, nb]),
    logTarget: tf.tensor3d(Float32Array.from(logT), [heads, nb, nb]),
    bias: tf.tensor2d(bias, [nb, nb]),
    rows: heads * nb,
  };
}

/** The gate's log-probabilities [heads, nb, nb] for pooled inputs (the projections as tensors). */
export function seerGateLogProbs(wq: tf.Tensor3D, wk: tf.Tensor3D, qPool: tf.Tensor3D, kPool: tf.Tensor3D, bias: tf.Tensor2D, group: number): tf.Tensor3D {
  return tf.tidy(() => {
    const heads = wq.shape[0];
    const qg = tf.matMul(qPool, wq);
    const kvIndex = tf.tensor1d(Array.from({ length: heads }, (_, h) => Math.floor(h / group)), 'int32');
    const kg = tf.matMul(tf.gather(kPool, kvIndex), tf.gather(wk, kvIndex));
    const logits = tf.add(tf.mul(tf.matMul(qg, kg, false, true), 1 / Math.sqrt(wq.shape[2])), bias);
    return tf.logSoftmax(logits) as tf.Tensor3D;
  });
}

/**
 * Trains a SeerAttention gate on frozen q, k samples (one layer); returns the gate (plain arrays, used by
 * seerPredict on the main entry) and its distillation loss history.
 */
export function trainSeerGate(samples: readonly SeerSample[], config: SeerTrainConfig): SeerTrainResult {
  if (!Array.isArray(samples) || samples.length === 0) throw new ArgumentError('trainSeerGate: needs at least one sample');
  const blockSize = config?.blockSize;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ArgumentError(`trainSeerGate: blockSize must be a positive integer, got ${String(blockSize)}`);
  const gateDim = config.init?.gateDim ?? config.gateDim ?? 16;
  const steps = config.steps ?? 200;
  const lr = config.learningRate ?? 0.01;
  const causal = config.causal ?? true;
  if (!Number.isInteger(gateDim) || gateDim < 1) throw new ArgumentError(`trainSeerGate: gateDim must be a positive integer, got ${String(gateDim)}`);
  if (!Number.isInteger(steps) || steps < 0) throw new ArgumentError(`trainSeerGate: steps must be an integer >= 0, got ${String(steps)}`);
  if (!(lr > 0)) throw new ArgumentError(`trainSeerGate: learningRate must be > 0, got ${String(lr)}`);
  const first = samples[0]!.shape;
  const heads = first.heads;
  const kvHeads = first.kvHeads ?? heads;
  const d = first.headDim;
  if (config.init !== undefined && (config.init.heads !== heads || config.init.kvHeads !== kvHeads || config.init.headDim !== d || config.init.blockSize !== blockSize)) {
    throw new ArgumentError('trainSeerGate: init is a gate of another shape or block size');
  }
  const rng = new Random(config.seed ?? 0);
  const wqInit = config.init?.wq ?? Float32Array.from({ length: heads * d * gateDim }, () => rng.normal() / Math.sqrt(d));
  const wkInit = config.init?.wk ?? Float32Array.from({ length: kvHeads * 3 * d * gateDim }, () => rng.normal() / Math.sqrt(3 * d));
  const prepared = samples.map((s) => prepare(s, blockSize, causal, heads, kvHeads, d));
  const wq = tf.variable(tf.tensor3d(wqInit, [heads, d, gateDim]), true);
  const wk = tf.variable(tf.tensor3d(wkInit, [kvHeads, 3 * d, gateDim]), true);
  const group = heads / kvHeads;
  const totalRows = prepared.reduce((a, p) => a + p.rows, 0);
  const lossFn = (): tf.Scalar =>
    tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      for (const p of prepared) {
        const logP = seerGateLogProbs(wq as tf.Variable<tf.Rank.R3>, wk as tf.Variable<tf.Rank.R3>, p.qPool, p.kPool, p.bias, group);
        total = tf.add(total, tf.sum(tf.mul(p.target, tf.sub(p.logTarget, logP))));
      }
      return tf.div(total, totalRows) as tf.Scalar;
    });
  const optimizer = tf.train.adam(lr);
  const losses: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const loss = optimizer.minimize(lossFn, true, [wq, wk]);
      losses.push(loss!.dataSync()[0]!);
      loss!.dispose();
    }
    const last = lossFn();
    losses.push(last.dataSync()[0]!);
    last.dispose();
    const gate: SeerGate = {
      heads,
      kvHeads,
      headDim: d,
      gateDim,
      blockSize,
      wq: Float32Array.from(wq.dataSync() as Float32Array),
      wk: Float32Array.from(wk.dataSync() as Float32Array),
    };
    return { gate, losses };
  } finally {
    optimizer.dispose();
    wq.dispose();
    wk.dispose();
    for (const p of prepared) tf.dispose([p.qPool, p.kPool, p.target, p.logTarget, p.bias]);
  }
}
