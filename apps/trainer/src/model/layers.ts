// Pieces shared by the GPT and Llama forward passes: parameter specs and their initialization,
// hook-aware parameter access and linear layers ([out, in] weights, y = x Wᵀ + b), RMSNorm,
// causal attention masks, and a dense mixture-of-experts layer.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { fusedRmsNorm } from '@sparse/kernels-cpu/tfjs';
import { addTrailing, expandCols, softmaxRows } from './ops.js';
import { linearSite, mlpActSite } from './sites.js';
import type { ForwardHooks, LinearInfo } from './types.js';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: { kind: 'normal'; std: number } | { kind: 'sinusoidal'; std: number } | { kind: 'zeros' } | { kind: 'ones' } | { kind: 'identity' };
}

export function sizeOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Initial values for every parameter; each tensor draws from its own stream (rng forked by name). */
export function initParamValues(specs: readonly ParamSpec[], rng: Random): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of specs) {
    const arr = new Float32Array(sizeOfShape(spec.shape));
    if (spec.init.kind === 'normal') rng.fork(spec.name).fillNormal(arr, 0, spec.init.std);
    else if (spec.init.kind === 'sinusoidal') fillSinusoidal(arr, spec.shape[0], spec.shape[1], spec.init.std);
    else if (spec.init.kind === 'ones') arr.fill(1);
    else if (spec.init.kind === 'identity') for (let i = 0; i < spec.shape[0]!; i++) arr[i * spec.shape[1]! + i] = 1;
    out.set(spec.name, arr);
  }
  return out;
}

/**
 * The sinusoidal position encoding of Vaswani et al. ([positions, d]: sin/cos pairs at
 * geometrically spaced frequencies), scaled so each entry has standard deviation `std`.
 */
export function fillSinusoidal(arr: Float32Array, positions: number, d: number, std: number): Float32Array {
  const amp = std * Math.SQRT2; // sin and cos over many positions have standard deviation 1/sqrt(2)
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < d; i++) {
      const freq = Math.pow(10000, -(2 * Math.floor(i / 2)) / d);
      arr[p * d + i] = amp * (i % 2 === 0 ? Math.sin(p * freq) : Math.cos(p * freq));
    }
  }
  return arr;
}

/** One forward pass's view of the parameters: applies the hooks on every access. */
export class Forward {
  private readonly infos: Map<string, LinearInfo>;

  constructor(
    private readonly params: Readonly<Record<string, tf.Tensor>>,
    linears: readonly LinearInfo[],
    readonly hooks: ForwardHooks = {},
  ) {
    this.infos = new Map(linears.map((l) => [l.name, l]));
  }

  /** The effective value of a parameter (hooks.weight may replace it). */
  w(name: string): tf.Tensor {
    const t = this.params[name];
    if (t === undefined) throw new ArgumentError(`forward: no parameter named ${name}`);
    return this.hooks.weight ? this.hooks.weight(name, t) : t;
  }

  /**
   * The linear layer whose weight is `weight`: x [N, in] -> x Wᵀ + b [N, out]. `hookRows` limits what
   * hooks.linearInput sees to the rows the layer really serves (an expert's routed tokens).
   */
  linear(weight: string, x: tf.Tensor2D, hookRows?: Int32Array): tf.Tensor2D {
    const info = this.infos.get(weight);
    if (info === undefined) throw new ArgumentError(`forward: ${weight} is not a linear layer of this model`);
    let add: tf.Tensor2D | undefined;
    if (this.hooks.activation) {
      const r = this.hooks.activation(linearSite(info), x);
      if (r instanceof tf.Tensor) x = r;
      else ({ x, add } = r);
    }
    if (this.hooks.linearInput) {
      this.hooks.linearInput(info, hookRows ? (tf.gather(x, tf.tensor1d(hookRows, 'int32')) as tf.Tensor2D) : x);
    }
    let y: tf.Tensor2D = this.hooks.linearProduct?.(info, x) ?? tf.matMul(x, this.w(weight) as tf.Tensor2D, false, true);
    if (add) y = tf.add(y, add);
    return info.bias ? (addTrailing(y, this.w(info.bias)) as tf.Tensor2D) : (y as tf.Tensor2D);
  }

  /** The MLP activation `a` [N, hidden] feeding the down projection `down` (the activation hook may replace it). */
  mlpActivation(down: string, a: tf.Tensor2D): tf.Tensor2D {
    if (!this.hooks.activation) return a;
    const info = this.infos.get(down);
    if (info === undefined) throw new ArgumentError(`forward: ${down} is not a linear layer of this model`);
    const r = this.hooks.activation(mlpActSite(info), a);
    if (!(r instanceof tf.Tensor)) throw new ArgumentError(`forward: the activation hook returned a product term at ${mlpActSite(info).name}, which is not a linear input`);
    return r;
  }
}

/** Token embedding rows for ids [B,T] as [B*T, d], by a one-hot product (its gradient is a matmul). */
export function embed(table: tf.Tensor, ids: tf.Tensor2D, vocab: number): tf.Tensor2D {
  const [b, t] = ids.shape;
  const oneHot = tf.cast(tf.oneHot(tf.reshape(ids, [b * t]) as tf.Tensor1D, vocab), 'float32') as tf.Tensor2D;
  return tf.matMul(oneHot, table as tf.Tensor2D);
}

/**
 * RMSNorm over the last axis of x [N,D]: x / sqrt(mean(x²) + eps) * gain (HF Llama's order of
 * operations), one fused tfjs op (@sparse/kernels-cpu's fusedRmsNorm).
 */
export function rmsNorm(x: tf.Tensor2D, gain: tf.Tensor, eps: number): tf.Tensor2D {
  return fusedRmsNorm(x, gain, eps);
}

/**
 * A block norm's output, times its rotation [d, d] when the model has norm rotations (the spec's
 * `normRotation`): h R. The linear layers reading the norm hold W R in place of W (model/rotate.ts),
 * so the product is unchanged while their inputs live in the basis that makes W R's columns orthogonal.
 */
export function rotateNormOutput(f: Forward, rotation: string | undefined, h: tf.Tensor2D): tf.Tensor2D {
  return rotation === undefined ? h : tf.matMul(h, f.w(rotation) as tf.Tensor2D);
}

/** Mixture-of-experts settings: `experts` MLPs, each token uses the `topK` its router scores highest. */
export interface MoEConfig {
  experts: number;
  topK: number;
}

/**
 * Top-k routing of router logits [N, E]: the chosen experts of each token (highest logit first,
 * the lower index on ties) and an additive mask that is 0 on them and -1e9 elsewhere. The choice
 * is not differentiable; the gates' softmax over the chosen logits is.
 */
export function topKRouting(logits: Float32Array | Int32Array | Uint8Array, n: number, experts: number, topK: number): { chosen: Int32Array; mask: Float32Array } {
  const chosen = new Int32Array(n * topK);
  const mask = new Float32Array(n * experts).fill(-1e9);
  const order = Array.from({ length: experts }, (_, e) => e);
  for (let r = 0; r < n; r++) {
    const row = (e: number) => logits[r * experts + e];
    const sorted = [...order].sort((a, b) => row(b) - row(a) || a - b);
    for (let k = 0; k < topK; k++) {
      chosen[r * topK + k] = sorted[k];
      mask[r * experts + sorted[k]] = 0;
    }
  }
  return { chosen, mask };
}

/**
 * A dense mixture-of-experts layer on x [N, d]: the router (a linear layer, `router`) scores the
 * experts, each token keeps its top k with gates softmax(logits) over those k and 0 elsewhere,
 * and the output is Σ_e gate_e · expert_e(x). Every expert runs on every token (simple and
 * exact); `expert(e, x, rows)` gets the rows routed to it for the linearInput hook.
 */
export function moeLayer(
  f: Forward,
  block: number,
  router: string,
  moe: MoEConfig,
  x: tf.Tensor2D,
  expert: (e: number, x: tf.Tensor2D, rows: Int32Array) => tf.Tensor2D,
): tf.Tensor2D {
  const [n, d] = x.shape;
  const { experts, topK } = moe;
  const logits = f.linear(router, x);
  const { chosen, mask } = topKRouting(logits.dataSync(), n, experts, topK);
  const gates = softmaxRows(tf.add<tf.Tensor2D>(logits, tf.tensor2d(mask, [n, experts])));
  if (f.hooks.routing) {
    const g = gates.dataSync();
    const picked = new Float32Array(n * topK);
    for (let r = 0; r < n; r++) for (let k = 0; k < topK; k++) picked[r * topK + k] = g[r * experts + chosen[r * topK + k]];
    f.hooks.routing(block, tf.tensor2d(chosen, [n, topK], 'int32'), tf.tensor2d(picked, [n, topK]));
  }
  let out: tf.Tensor2D | undefined;
  for (let e = 0; e < experts; e++) {
    const rows: number[] = [];
    for (let r = 0; r < n; r++) for (let k = 0; k < topK; k++) if (chosen[r * topK + k] === e) rows.push(r);
    const pick = new Float32Array(experts);
    pick[e] = 1;
    // gate column e as [N,1] by a product with a one-hot column, broadcast by an outer product (fast paths)
    const gate = expandCols(tf.matMul(gates, tf.tensor2d(pick, [experts, 1])), d);
    const y = tf.mul<tf.Tensor2D>(gate, expert(e, x, Int32Array.from(rows)));
    out = out ? tf.add<tf.Tensor2D>(out, y) : y;
  }
  return out!;
}

/** Validates a `moe` field of a model spec (undefined: no mixture of experts). */
export function checkMoE(moe: unknown, field: string, fail: (field: string, message: string) => never): MoEConfig | undefined {
  if (moe === undefined) return undefined;
  if (typeof moe !== 'object' || moe === null || Array.isArray(moe)) fail(field, `must be an object { experts, topK }, got ${JSON.stringify(moe)}`);
  const m = moe as Record<string, unknown>;
  for (const k of Object.keys(m)) if (k !== 'experts' && k !== 'topK') fail(`${field}.${k}`, 'is not a field of moe (expected experts, topK)');
  if (!Number.isInteger(m.experts) || (m.experts as number) < 1) fail(`${field}.experts`, `must be a positive integer, got ${JSON.stringify(m.experts)}`);
  if (!Number.isInteger(m.topK) || (m.topK as number) < 1 || (m.topK as number) > (m.experts as number)) {
    fail(`${field}.topK`, `must be an integer in 1..experts (${m.experts as number}), got ${JSON.stringify(m.topK)}`);
  }
  return { experts: m.experts as number, topK: m.topK as number };
}
