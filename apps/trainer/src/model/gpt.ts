// A small decoder-only transformer (GPT-2 shape): token embedding + learned positions, pre-norm
// blocks of causal multi-head self-attention and a GELU MLP (or a mixture of such MLPs), a final
// layer norm, and an output layer tied to the token embedding. Parameters carry GPT-2's tensor
// names; linear weights are stored [out, in] (y = x Wᵀ + b), the transpose of GPT-2's Conv1D
// layout, so `h.0.attn.c_attn.weight` is [3d, d] (checkpoint.ts transposes on import).

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { maskedAttention, passAttention, specLayout, type BatchAttention } from './attention-op.js';
import { BaseModel } from './base.js';
import { DEFAULT_GPT_CONFIG, validateGPTConfig, type GPTConfig } from './config.js';
import { embed, fillSinusoidal, Forward, initParamValues, moeLayer, rotateNormOutput, type ParamSpec } from './layers.js';
import { crossEntropy, layerNorm, mlpNonlinearity, softmaxRows } from './ops.js';
import { linearInfo, type ForwardHooks, type LinearInfo, type ModelSpec } from './types.js';

export { DEFAULT_GPT_CONFIG, validateGPTConfig, fillSinusoidal, type GPTConfig, type ParamSpec };

/** Parameters by GPT-2 name. Plain tensors (for tf.grads) or the model's variables. */
export type GPTParams = Record<string, tf.Tensor>;

/** The MLP's hidden width. */
function hiddenOf(cfg: GPTConfig): number {
  return cfg.mlpRatio * cfg.d;
}

/** Names, shapes and initializers of every parameter, in a fixed order. */
export function gptParamSpecs(cfg: GPTConfig): ParamSpec[] {
  validateGPTConfig(cfg);
  const { vocab, d, layers, ctx } = cfg;
  const hidden = hiddenOf(cfg);
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
  const mlp = (p: string): ParamSpec[] => [
    { name: `${p}c_fc.weight`, shape: [hidden, d], init: { kind: 'normal', std: linStd } },
    { name: `${p}c_fc.bias`, shape: [hidden], init: { kind: 'zeros' } },
    { name: `${p}c_proj.weight`, shape: [d, hidden], init: { kind: 'normal', std: fcProjStd } },
    { name: `${p}c_proj.bias`, shape: [d], init: { kind: 'zeros' } },
  ];
  for (let i = 0; i < layers; i++) {
    const p = `h.${i}.`;
    specs.push(
      { name: `${p}ln_1.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${p}ln_1.bias`, shape: [d], init: { kind: 'zeros' } },
      { name: `${p}attn.c_attn.weight`, shape: [3 * d, d], init: { kind: 'normal', std: linStd } },
      { name: `${p}attn.c_attn.bias`, shape: [3 * d], init: { kind: 'zeros' } },
      { name: `${p}attn.c_proj.weight`, shape: [d, d], init: { kind: 'normal', std: projStd } },
      { name: `${p}attn.c_proj.bias`, shape: [d], init: { kind: 'zeros' } },
      { name: `${p}ln_2.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${p}ln_2.bias`, shape: [d], init: { kind: 'zeros' } },
    );
    if (cfg.normRotation) {
      specs.push(
        { name: `${p}ln_1.rotation`, shape: [d, d], init: { kind: 'identity' } },
        { name: `${p}ln_2.rotation`, shape: [d, d], init: { kind: 'identity' } },
      );
    }
    if (cfg.moe) {
      specs.push({ name: `${p}mlp.router.weight`, shape: [cfg.moe.experts, d], init: { kind: 'normal', std: linStd } });
      for (let e = 0; e < cfg.moe.experts; e++) specs.push(...mlp(`${p}mlp.experts.${e}.`));
    } else {
      specs.push(...mlp(`${p}mlp.`));
    }
  }
  specs.push(
    { name: 'ln_f.weight', shape: [d], init: { kind: 'ones' } },
    { name: 'ln_f.bias', shape: [d], init: { kind: 'zeros' } },
  );
  return specs;
}

/** Every linear layer, in evaluation order: c_attn, attn.c_proj, c_fc (and the router), mlp.c_proj per block. */
export function gptLinears(cfg: GPTConfig): LinearInfo[] {
  const { d, layers } = cfg;
  const hidden = hiddenOf(cfg);
  const out: LinearInfo[] = [];
  const lin = (name: string, o: number, i: number, block: number, group: number, role: string, bias = true, expert?: number): LinearInfo =>
    linearInfo(name, o, i, block, group, role, { bias, ...(expert === undefined ? {} : { expert }) });
  for (let b = 0; b < layers; b++) {
    const p = `h.${b}.`;
    out.push(lin(`${p}attn.c_attn`, 3 * d, d, b, 0, 'attn.qkv'), lin(`${p}attn.c_proj`, d, d, b, 1, 'attn.out'));
    if (cfg.moe) {
      const { experts } = cfg.moe;
      out.push(lin(`${p}mlp.router`, experts, d, b, 2, 'moe.router', false));
      for (let e = 0; e < experts; e++) out.push(lin(`${p}mlp.experts.${e}.c_fc`, hidden, d, b, 2, 'moe.expert.up', true, e));
      for (let e = 0; e < experts; e++) out.push(lin(`${p}mlp.experts.${e}.c_proj`, d, hidden, b, 3, 'moe.expert.down', true, e));
    } else {
      out.push(lin(`${p}mlp.c_fc`, hidden, d, b, 2, 'mlp.up'), lin(`${p}mlp.c_proj`, d, hidden, b, 3, 'mlp.down'));
    }
  }
  return out;
}

/** Initial values for every parameter, drawn in spec order from `rng`. */
export function initGPTValues(cfg: GPTConfig, rng: Random): Map<string, Float32Array> {
  return initParamValues(gptParamSpecs(cfg), rng);
}

/** Causal multi-head self-attention of h [B*T, d]; returns [B*T, d]. */
function attention(cfg: GPTConfig, f: Forward, block: number, prefix: string, h: tf.Tensor2D, b: number, t: number, masked: BatchAttention | undefined): tf.Tensor2D {
  const { d, heads } = cfg;
  const hd = d / heads;
  const qkv = f.linear(`${prefix}attn.c_attn.weight`, h);
  // outputs of c_attn are [q | k | v], each split into heads: [B,T,3,H,hd] -> [3,B,H,T,hd]
  const split = tf.transpose(tf.reshape(qkv, [b, t, 3, heads, hd]), [2, 0, 3, 1, 4]);
  const [q, k0, v0] = tf.split(tf.reshape(split, [3, b * heads, t, hd]), 3, 0).map((x) => tf.reshape(x, [b * heads, t, hd]) as tf.Tensor3D) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
  let k = k0;
  let v = v0;
  if (f.hooks.kv) {
    const r = f.hooks.kv(block, tf.reshape(k, [b * heads * t, hd]), tf.reshape(v, [b * heads * t, hd]));
    k = tf.reshape(r.k, [b * heads, t, hd]);
    v = tf.reshape(r.v, [b * heads, t, hd]);
  }
  const layouts = f.hooks.attentionMask?.(block, q, k, b, t, masked?.layouts) ?? masked?.layouts;
  let ctx: tf.Tensor3D; // [B*H, T, hd]
  if (layouts) ctx = maskedAttention(q, k, v, heads, layouts);
  else {
    // scale q (T*hd values) rather than the scores (T*T values)
    // the causal mask is the softmax's own (no [T,T] additive mask)
    const scores = tf.matMul(tf.mul(q, 1 / Math.sqrt(hd)), k, false, true);
    const probs = tf.reshape(softmaxRows(tf.reshape(scores, [b * heads * t, t]), t), [b * heads, t, t]) as tf.Tensor3D;
    ctx = tf.matMul(probs, v);
  }
  const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, heads, t, hd]), [0, 2, 1, 3]), [b * t, d]) as tf.Tensor2D;
  return f.linear(`${prefix}attn.c_proj.weight`, merged);
}

function mlp(cfg: GPTConfig, f: Forward, p: string, h: tf.Tensor2D, rows?: Int32Array): tf.Tensor2D {
  const a = f.mlpActivation(`${p}c_proj.weight`, mlpNonlinearity(cfg.activation ?? 'gelu', f.linear(`${p}c_fc.weight`, h, rows)));
  return f.linear(`${p}c_proj.weight`, a, rows);
}

/** The final hidden states (after ln_f), [B*T, d], for token ids [B,T]. */
function hidden(cfg: GPTConfig, f: Forward, ids: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = ids.shape;
  if (t > cfg.ctx) throw new ArgumentError(`sequence length ${t} exceeds the model context ${cfg.ctx}`);
  const { d } = cfg;
  const tok = embed(f.w('wte.weight'), ids, cfg.vocab);
  const masked = passAttention(cfg.attention ? (n) => specLayout(cfg.attention!, n) : undefined, f.hooks.attention, b, t);
  let x: tf.Tensor2D;
  if (masked?.positions) {
    // given position ids: their rows of wpe
    for (const p of masked.positions) if (p < 0 || p >= cfg.ctx) throw new ArgumentError(`position id ${p} is outside the model context 0..${cfg.ctx - 1}`);
    x = tf.add(tok, tf.gather(f.w('wpe.weight'), tf.tensor1d(masked.positions, 'int32'))) as tf.Tensor2D;
  } else {
    // positions broadcast over the batch as an outer product (keeps the wpe gradient a matmul too)
    const pos = tf.reshape(tf.slice(f.w('wpe.weight'), [0, 0], [t, d]), [1, t * d]);
    x = tf.add(tok, tf.reshape(tf.matMul(tf.ones([b, 1]), pos), [b * t, d])) as tf.Tensor2D;
  }
  for (let i = 0; i < cfg.layers; i++) {
    const pre = `h.${i}.`;
    f.hooks.blockInput?.(i, x);
    const rot = cfg.normRotation === true;
    const n1 = rotateNormOutput(f, rot ? `${pre}ln_1.rotation` : undefined, layerNorm(x, f.w(`${pre}ln_1.weight`), f.w(`${pre}ln_1.bias`)));
    const a = attention(cfg, f, i, pre, n1, b, t, masked);
    x = tf.add(x, a);
    const h = rotateNormOutput(f, rot ? `${pre}ln_2.rotation` : undefined, layerNorm(x, f.w(`${pre}ln_2.weight`), f.w(`${pre}ln_2.bias`)));
    const m = cfg.moe
      ? moeLayer(f, i, `${pre}mlp.router.weight`, cfg.moe, h, (e, xe, rows) => mlp(cfg, f, `${pre}mlp.experts.${e}.`, xe, rows))
      : mlp(cfg, f, `${pre}mlp.`, h);
    x = tf.add(x, m);
    f.hooks.blockOutput?.(i, x);
  }
  return layerNorm(x, f.w('ln_f.weight'), f.w('ln_f.bias'));
}

function logits(cfg: GPTConfig, f: Forward, ids: tf.Tensor2D): tf.Tensor2D {
  // the output layer is the token embedding (the same effective tensor as the input side)
  return tf.matMul(hidden(cfg, f, ids), f.w('wte.weight') as tf.Tensor2D, false, true);
}

/** The final hidden states (after ln_f), [B*T, d], for token ids [B,T]. */
export function gptHidden(cfg: GPTConfig, p: GPTParams, ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D {
  return hidden(cfg, new Forward(p, gptLinears(cfg), hooks), ids);
}

/** Logits [B*T, V] for token ids [B,T]; the output layer is the token embedding, transposed. */
export function gptLogits2d(cfg: GPTConfig, p: GPTParams, ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D {
  return logits(cfg, new Forward(p, gptLinears(cfg), hooks), ids);
}

/** Logits [B,T,V] for token ids [B,T]. */
export function gptForward(cfg: GPTConfig, p: GPTParams, ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor3D {
  const [b, t] = ids.shape;
  return tf.reshape(gptLogits2d(cfg, p, ids, hooks), [b, t, cfg.vocab]);
}

/** Mean next-token cross-entropy (nats) of ids [B,T] against targets [B,T]. */
export function gptLoss(cfg: GPTConfig, p: GPTParams, ids: tf.Tensor2D, targets: tf.Tensor2D, hooks?: ForwardHooks): tf.Scalar {
  const [b, t] = targets.shape;
  return crossEntropy(gptLogits2d(cfg, p, ids, hooks), tf.reshape(targets, [b * t]) as tf.Tensor1D);
}

/** The spec of a GPT: { architecture: 'gpt', ...config }. */
export type GPTSpec = ModelSpec & GPTConfig & { architecture: 'gpt' };

/** A GPT whose parameters are tf.Variables, ready for an optimizer. */
export class GPT extends BaseModel {
  readonly architecture = 'gpt' as const;
  readonly config: Readonly<GPTConfig>;
  readonly spec: Readonly<GPTSpec>;
  readonly blocks: number;

  constructor(config: GPTConfig, values: ReadonlyMap<string, Float32Array>) {
    super('gpt', gptParamSpecs(config), values, gptLinears(config));
    const cfg: GPTConfig = { vocab: config.vocab, d: config.d, layers: config.layers, heads: config.heads, ctx: config.ctx, mlpRatio: config.mlpRatio };
    if (config.activation !== undefined && config.activation !== 'gelu') cfg.activation = config.activation;
    if (config.moe) cfg.moe = Object.freeze({ experts: config.moe.experts, topK: config.moe.topK });
    if (config.attention) cfg.attention = Object.freeze(structuredClone(config.attention));
    if (config.normRotation === true) cfg.normRotation = true;
    this.config = Object.freeze(cfg);
    this.spec = Object.freeze({ architecture: 'gpt' as const, ...cfg });
    this.blocks = cfg.layers;
  }

  logits2d(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D {
    return logits(this.config, this.pass(hooks), ids);
  }
}

export interface CreateGPTOptions {
  /** Seed of the initializer (ignored when `rng` is given). */
  seed?: number;
  rng?: Random;
}

/** A freshly initialized GPT; `config` fills in DEFAULT_GPT_CONFIG except the vocabulary. */
export function createGPT(config: Partial<GPTConfig> & { vocab: number }, options: CreateGPTOptions = {}): GPT {
  const cfg: GPTConfig = { ...DEFAULT_GPT_CONFIG, ...config };
  validateGPTConfig(cfg);
  const rng = options.rng ?? new Random(options.seed ?? 0);
  return new GPT(cfg, initGPTValues(cfg, rng.fork('gpt-init')));
}
