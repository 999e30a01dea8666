// A small decoder-only transformer (GPT-2 shape): token embedding + learned positions, pre-norm
// blocks of causal multi-head self-attention and a GELU MLP, a final layer norm, and an output
// layer tied to the token embedding. Parameters carry GPT-2's tensor names and layouts
// (`h.0.attn.c_attn.weight` is [d, 3d], used as x @ W), so checkpoints map one to one.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { ensureGradients } from './gradients.js';
import { DEFAULT_GPT_CONFIG, validateGptConfig, type GptConfig } from './config.js';
import { crossEntropy, gelu, layerNorm, linear, softmaxRows } from './ops.js';

export { DEFAULT_GPT_CONFIG, validateGptConfig, type GptConfig };

/** Parameters by GPT-2 name. Plain tensors (for tf.grads) or the model's variables. */
export type GptParams = Record<string, tf.Tensor>;

export interface ParamSpec {
  name: string;
  shape: number[];
  init: { kind: 'normal'; std: number } | { kind: 'sinusoidal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };
}

/** Names, shapes and initializers of every parameter, in a fixed order. */
export function gptParamSpecs(cfg: GptConfig): ParamSpec[] {
  validateGptConfig(cfg);
  const { vocab, d, layers, ctx } = cfg;
  const hidden = cfg.mlpRatio * d;
  // embeddings as in GPT-2; with the output tied to wte this keeps the initial loss at ln(vocab)
  const std = 0.02;
  // linear layers: 1/sqrt(fan_in) rather than GPT-2's fixed 0.02 (tuned for d=768), which would
  // leave a small model's layers nearly silent at the start and cost many steps
  const linStd = 1 / Math.sqrt(d);
  // residual projections also shrink with depth (GPT-2), so the residual stream does not grow
  const depth = Math.sqrt(2 * layers);
  const projStd = linStd / depth;
  const fcProjStd = 1 / Math.sqrt(hidden) / depth;
  const specs: ParamSpec[] = [
    { name: 'wte.weight', shape: [vocab, d], init: { kind: 'normal', std } },
    // learned positions start as scaled sinusoids: relative offsets are then a fixed linear map
    // away, so attention to the previous tokens (n-gram structure) is learned in few steps
    { name: 'wpe.weight', shape: [ctx, d], init: { kind: 'sinusoidal', std } },
  ];
  for (let i = 0; i < layers; i++) {
    const p = `h.${i}.`;
    specs.push(
      { name: `${p}ln_1.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${p}ln_1.bias`, shape: [d], init: { kind: 'zeros' } },
      { name: `${p}attn.c_attn.weight`, shape: [d, 3 * d], init: { kind: 'normal', std: linStd } },
      { name: `${p}attn.c_attn.bias`, shape: [3 * d], init: { kind: 'zeros' } },
      { name: `${p}attn.c_proj.weight`, shape: [d, d], init: { kind: 'normal', std: projStd } },
      { name: `${p}attn.c_proj.bias`, shape: [d], init: { kind: 'zeros' } },
      { name: `${p}ln_2.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${p}ln_2.bias`, shape: [d], init: { kind: 'zeros' } },
      { name: `${p}mlp.c_fc.weight`, shape: [d, hidden], init: { kind: 'normal', std: linStd } },
      { name: `${p}mlp.c_fc.bias`, shape: [hidden], init: { kind: 'zeros' } },
      { name: `${p}mlp.c_proj.weight`, shape: [hidden, d], init: { kind: 'normal', std: fcProjStd } },
      { name: `${p}mlp.c_proj.bias`, shape: [d], init: { kind: 'zeros' } },
    );
  }
  specs.push(
    { name: 'ln_f.weight', shape: [d], init: { kind: 'ones' } },
    { name: 'ln_f.bias', shape: [d], init: { kind: 'zeros' } },
  );
  return specs;
}

/** Initial values for every parameter, drawn in spec order from `rng`. */
export function initGptValues(cfg: GptConfig, rng: Random): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of gptParamSpecs(cfg)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const arr = new Float32Array(n);
    // each tensor gets its own stream, so adding a layer does not change the others' values
    if (spec.init.kind === 'normal') rng.fork(spec.name).fillNormal(arr, 0, spec.init.std);
    else if (spec.init.kind === 'sinusoidal') fillSinusoidal(arr, spec.shape[0], spec.shape[1], spec.init.std);
    else if (spec.init.kind === 'ones') arr.fill(1);
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

/** Additive causal mask [T,T]: 0 on and below the diagonal, a large negative number above. */
function causalMask(t: number): tf.Tensor2D {
  const m = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9;
  return tf.tensor2d(m, [t, t]);
}

/** Causal multi-head self-attention of h [B*T, d]; returns [B*T, d]. */
function attention(cfg: GptConfig, p: GptParams, prefix: string, h: tf.Tensor2D, b: number, t: number): tf.Tensor2D {
  const { d, heads } = cfg;
  const hd = d / heads;
  const qkv = linear(h, p[`${prefix}attn.c_attn.weight`], p[`${prefix}attn.c_attn.bias`]);
  // columns of c_attn are [q | k | v], each split into heads: [B,T,3,H,hd] -> [3,B,H,T,hd]
  const split = tf.transpose(tf.reshape(qkv, [b, t, 3, heads, hd]), [2, 0, 3, 1, 4]);
  const [q, k, v] = tf.split(tf.reshape(split, [3, b * heads, t, hd]), 3, 0).map((x) => tf.reshape(x, [b * heads, t, hd]) as tf.Tensor3D);
  // scale q (T*hd values) rather than the scores (T*T values)
  const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(hd)), k, false, true), causalMask(t));
  const probs = tf.reshape(softmaxRows(tf.reshape(scores, [b * heads * t, t])), [b * heads, t, t]) as tf.Tensor3D;
  const ctx = tf.matMul(probs, v); // [B*H, T, hd]
  const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, heads, t, hd]), [0, 2, 1, 3]), [b * t, d]) as tf.Tensor2D;
  return linear(merged, p[`${prefix}attn.c_proj.weight`], p[`${prefix}attn.c_proj.bias`]);
}

/** The final hidden states (after ln_f), [B*T, d], for token ids [B,T]. */
export function gptHidden(cfg: GptConfig, p: GptParams, ids: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = ids.shape;
  if (t > cfg.ctx) throw new ArgumentError(`sequence length ${t} exceeds the model context ${cfg.ctx}`);
  const { d, vocab } = cfg;
  // embedding lookup as a one-hot product: its gradient is a matmul, not tfjs-cpu's slow segment sum
  const oneHot = tf.cast(tf.oneHot(tf.reshape(ids, [b * t]) as tf.Tensor1D, vocab), 'float32') as tf.Tensor2D;
  const tok = tf.matMul(oneHot, p['wte.weight'] as tf.Tensor2D);
  // positions broadcast over the batch as an outer product (keeps the wpe gradient a matmul too)
  const pos = tf.reshape(tf.slice(p['wpe.weight'], [0, 0], [t, d]), [1, t * d]);
  let x = tf.add(tok, tf.reshape(tf.matMul(tf.ones([b, 1]), pos), [b * t, d])) as tf.Tensor2D;
  for (let i = 0; i < cfg.layers; i++) {
    const pre = `h.${i}.`;
    const a = attention(cfg, p, pre, layerNorm(x, p[`${pre}ln_1.weight`], p[`${pre}ln_1.bias`]), b, t);
    x = tf.add(x, a);
    const h = layerNorm(x, p[`${pre}ln_2.weight`], p[`${pre}ln_2.bias`]);
    const m = linear(gelu(linear(h, p[`${pre}mlp.c_fc.weight`], p[`${pre}mlp.c_fc.bias`])) as tf.Tensor2D, p[`${pre}mlp.c_proj.weight`], p[`${pre}mlp.c_proj.bias`]);
    x = tf.add(x, m);
  }
  return layerNorm(x, p['ln_f.weight'], p['ln_f.bias']);
}

/** Logits [B*T, V] for token ids [B,T]; the output layer is the token embedding, transposed. */
export function gptLogits2d(cfg: GptConfig, p: GptParams, ids: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(gptHidden(cfg, p, ids), p['wte.weight'] as tf.Tensor2D, false, true);
}

/** Logits [B,T,V] for token ids [B,T]. */
export function gptForward(cfg: GptConfig, p: GptParams, ids: tf.Tensor2D): tf.Tensor3D {
  const [b, t] = ids.shape;
  return tf.reshape(gptLogits2d(cfg, p, ids), [b, t, cfg.vocab]);
}

/** Mean next-token cross-entropy (nats) of ids [B,T] against targets [B,T]. */
export function gptLoss(cfg: GptConfig, p: GptParams, ids: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const [b, t] = targets.shape;
  return crossEntropy(gptLogits2d(cfg, p, ids), tf.reshape(targets, [b * t]) as tf.Tensor1D);
}

/** A GPT whose parameters are tf.Variables, ready for an optimizer. */
export class Gpt {
  readonly config: Readonly<GptConfig>;
  readonly params: Readonly<Record<string, tf.Variable>>;

  constructor(config: GptConfig, values: Map<string, Float32Array>) {
    ensureGradients();
    this.config = Object.freeze({ ...config });
    const params: Record<string, tf.Variable> = {};
    for (const spec of gptParamSpecs(config)) {
      const v = values.get(spec.name);
      if (!v) throw new ArgumentError(`Gpt: no value for parameter ${spec.name}`);
      if (v.length !== spec.shape.reduce((a, b) => a * b, 1)) {
        throw new ArgumentError(`Gpt: ${spec.name} has ${v.length} values, expected shape [${spec.shape.join(', ')}]`);
      }
      params[spec.name] = tf.variable(tf.tensor(v, spec.shape), true, `gpt/${spec.name}/${nextModelId}`);
    }
    nextModelId++;
    this.params = Object.freeze(params);
  }

  /** Logits [B,T,V]. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return gptForward(this.config, this.params, ids);
  }

  /** Mean next-token cross-entropy (nats). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    return gptLoss(this.config, this.params, ids, targets);
  }

  variables(): tf.Variable[] {
    return Object.values(this.params);
  }

  numParams(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

// tfjs variable names must be unique per engine; several models may live side by side
let nextModelId = 0;

export interface CreateGptOptions {
  /** Seed of the initializer (ignored when `rng` is given). */
  seed?: number;
  rng?: Random;
}

/** A freshly initialized GPT; `config` fills in DEFAULT_GPT_CONFIG except the vocabulary. */
export function createGpt(config: Partial<GptConfig> & { vocab: number }, options: CreateGptOptions = {}): Gpt {
  const cfg: GptConfig = { ...DEFAULT_GPT_CONFIG, ...config };
  validateGptConfig(cfg);
  const rng = options.rng ?? new Random(options.seed ?? 0);
  return new Gpt(cfg, initGptValues(cfg, rng.fork('gpt-init')));
}
