// A Llama-style decoder: token embedding, pre-norm blocks of RMSNorm, causal grouped-query
// attention with rotary position embeddings (HF Llama's half-split rotation), and a SwiGLU MLP (or
// a mixture of such MLPs), a final RMSNorm and an output layer (optionally tied to the
// embedding). Parameters carry Hugging Face Llama's names and [out, in] layouts, so checkpoints
// map one to one.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { checkAttentionSpec, maskedAttention, passAttention, specLayout, type AttentionSpec, type BatchAttention } from './attention-op.js';
import { BaseModel } from './base.js';
import { specFail } from './errors.js';
import { checkMoE, embed, Forward, initParamValues, moeLayer, rmsNorm, rotateNormOutput, type MoEConfig, type ParamSpec } from './layers.js';
import { softmaxRows, mlpNonlinearity } from './ops.js';
import { fusedSwiGLU } from '@sparse/kernels-cpu/tfjs';
import { linearInfo, type ForwardHooks, type LinearInfo, type ModelSpec } from './types.js';

export interface LlamaConfig {
  vocab: number;
  /** Longest sequence accepted (rotary positions have no table, so this is only a limit). */
  ctx: number;
  /** Model width (hidden_size). */
  d: number;
  layers: number;
  /** Query heads; must divide d. */
  heads: number;
  /** Key/value heads (grouped-query attention); must divide heads. */
  kvHeads: number;
  /** SwiGLU hidden width (intermediate_size). */
  mlpHidden: number;
  /** Rotary base (rope_theta). */
  ropeTheta: number;
  /** RMSNorm epsilon (rms_norm_eps). */
  normEps: number;
  /** Output layer shares the token embedding (tie_word_embeddings); else lm_head.weight. */
  tiedEmbeddings: boolean;
  /** The gate's nonlinearity: SiLU (default), or ReLU / squared ReLU (activation sparsity's substitutes). */
  activation?: 'silu' | 'relu' | 'relu2';
  moe?: MoEConfig;
  /** A static attention pattern (@sparse/attention's spec: sliding window, sinks, ...); default dense causal. */
  attention?: AttentionSpec;
  /**
   * Each block's two RMSNorms end with an orthogonal [d, d] rotation (`input_layernorm.rotation`,
   * `post_attention_layernorm.rotation`) and the projections reading them hold their weights rotated to
   * match: the same function, inputs in the basis where those weights have orthogonal columns (model/rotate.ts).
   */
  normRotation?: boolean;
}

export const DEFAULT_LLAMA_CONFIG: Readonly<Omit<LlamaConfig, 'vocab'>> = {
  ctx: 32,
  d: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  mlpHidden: 64,
  ropeTheta: 10000,
  normEps: 1e-5,
  tiedEmbeddings: true,
};

export type LlamaSpec = ModelSpec & LlamaConfig & { architecture: 'llama' };

const LLAMA_FIELDS = ['vocab', 'ctx', 'd', 'layers', 'heads', 'kvHeads', 'mlpHidden', 'ropeTheta', 'normEps', 'tiedEmbeddings', 'activation', 'moe', 'attention', 'normRotation'];

/** Checks every field; throws ModelSpecError naming the first bad one. */
export function validateLlamaConfig(cfg: LlamaConfig): void {
  for (const k of Object.keys(cfg)) if (k !== 'architecture' && !LLAMA_FIELDS.includes(k)) specFail(k, `is not a field of a llama model (fields: ${LLAMA_FIELDS.join(', ')})`);
  for (const key of ['vocab', 'ctx', 'd', 'layers', 'heads', 'kvHeads', 'mlpHidden'] as const) {
    const v = cfg[key];
    if (!Number.isInteger(v) || v < 1) specFail(key, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (cfg.d % cfg.heads !== 0) specFail('heads', `(${cfg.heads}) must divide d (${cfg.d})`);
  if ((cfg.d / cfg.heads) % 2 !== 0) specFail('heads', `must leave an even head width for the rotary embedding; d/heads = ${cfg.d / cfg.heads}`);
  if (cfg.heads % cfg.kvHeads !== 0) specFail('kvHeads', `(${cfg.kvHeads}) must divide heads (${cfg.heads})`);
  if (typeof cfg.ropeTheta !== 'number' || !(cfg.ropeTheta > 1) || !Number.isFinite(cfg.ropeTheta)) specFail('ropeTheta', `must be a finite number > 1, got ${JSON.stringify(cfg.ropeTheta)}`);
  if (typeof cfg.normEps !== 'number' || !(cfg.normEps > 0) || !Number.isFinite(cfg.normEps)) specFail('normEps', `must be a positive number, got ${JSON.stringify(cfg.normEps)}`);
  if (typeof cfg.tiedEmbeddings !== 'boolean') specFail('tiedEmbeddings', `must be true or false, got ${JSON.stringify(cfg.tiedEmbeddings)}`);
  if (cfg.activation !== undefined && !['silu', 'relu', 'relu2'].includes(cfg.activation)) specFail('activation', `must be 'silu', 'relu' or 'relu2', got ${JSON.stringify(cfg.activation)}`);
  if (cfg.normRotation !== undefined && typeof cfg.normRotation !== 'boolean') specFail('normRotation', `must be true or false, got ${JSON.stringify(cfg.normRotation)}`);
  checkMoE(cfg.moe, 'moe', specFail);
  if (cfg.attention !== undefined) checkAttentionSpec(cfg.attention, cfg.ctx, specFail);
}

/** Names, shapes and initializers of every parameter, in a fixed order. */
export function llamaParamSpecs(cfg: LlamaConfig): ParamSpec[] {
  validateLlamaConfig(cfg);
  const { vocab, d, layers, heads, kvHeads, mlpHidden } = cfg;
  const hd = d / heads;
  const linStd = 1 / Math.sqrt(d);
  // residual projections shrink with depth so the residual stream does not grow (as in gpt.ts)
  const depth = Math.sqrt(2 * layers);
  const mlp = (p: string): ParamSpec[] => [
    { name: `${p}gate_proj.weight`, shape: [mlpHidden, d], init: { kind: 'normal', std: linStd } },
    { name: `${p}up_proj.weight`, shape: [mlpHidden, d], init: { kind: 'normal', std: linStd } },
    { name: `${p}down_proj.weight`, shape: [d, mlpHidden], init: { kind: 'normal', std: 1 / Math.sqrt(mlpHidden) / depth } },
  ];
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [vocab, d], init: { kind: 'normal', std: 0.02 } }];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${p}self_attn.q_proj.weight`, shape: [heads * hd, d], init: { kind: 'normal', std: linStd } },
      { name: `${p}self_attn.k_proj.weight`, shape: [kvHeads * hd, d], init: { kind: 'normal', std: linStd } },
      { name: `${p}self_attn.v_proj.weight`, shape: [kvHeads * hd, d], init: { kind: 'normal', std: linStd } },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, heads * hd], init: { kind: 'normal', std: 1 / Math.sqrt(heads * hd) / depth } },
      { name: `${p}post_attention_layernorm.weight`, shape: [d], init: { kind: 'ones' } },
    );
    if (cfg.normRotation) {
      specs.push(
        { name: `${p}input_layernorm.rotation`, shape: [d, d], init: { kind: 'identity' } },
        { name: `${p}post_attention_layernorm.rotation`, shape: [d, d], init: { kind: 'identity' } },
      );
    }
    if (cfg.moe) {
      specs.push({ name: `${p}mlp.router.weight`, shape: [cfg.moe.experts, d], init: { kind: 'normal', std: linStd } });
      for (let e = 0; e < cfg.moe.experts; e++) specs.push(...mlp(`${p}mlp.experts.${e}.`));
    } else {
      specs.push(...mlp(`${p}mlp.`));
    }
  }
  specs.push({ name: 'model.norm.weight', shape: [d], init: { kind: 'ones' } });
  // the normalized output has unit scale; 0.02 keeps the initial logits small, the loss near ln(vocab)
  if (!cfg.tiedEmbeddings) specs.push({ name: 'lm_head.weight', shape: [vocab, d], init: { kind: 'normal', std: 0.02 } });
  return specs;
}

/** Every linear layer in evaluation order: q, k, v (group 0), o (1), gate, up (2), down (3) per block. */
export function llamaLinears(cfg: LlamaConfig): LinearInfo[] {
  const { d, layers, heads, kvHeads, mlpHidden } = cfg;
  const hd = d / heads;
  const out: LinearInfo[] = [];
  const lin = (name: string, o: number, i: number, block: number, group: number, role: string, expert?: number): LinearInfo =>
    linearInfo(name, o, i, block, group, role, expert === undefined ? {} : { expert });
  for (let b = 0; b < layers; b++) {
    const p = `model.layers.${b}.`;
    out.push(
      lin(`${p}self_attn.q_proj`, heads * hd, d, b, 0, 'attn.q'),
      lin(`${p}self_attn.k_proj`, kvHeads * hd, d, b, 0, 'attn.k'),
      lin(`${p}self_attn.v_proj`, kvHeads * hd, d, b, 0, 'attn.v'),
      lin(`${p}self_attn.o_proj`, d, heads * hd, b, 1, 'attn.out'),
    );
    if (cfg.moe) {
      const { experts } = cfg.moe;
      out.push(lin(`${p}mlp.router`, experts, d, b, 2, 'moe.router'));
      for (let e = 0; e < experts; e++) {
        out.push(lin(`${p}mlp.experts.${e}.gate_proj`, mlpHidden, d, b, 2, 'moe.expert.gate', e), lin(`${p}mlp.experts.${e}.up_proj`, mlpHidden, d, b, 2, 'moe.expert.up', e));
      }
      for (let e = 0; e < experts; e++) out.push(lin(`${p}mlp.experts.${e}.down_proj`, d, mlpHidden, b, 3, 'moe.expert.down', e));
    } else {
      out.push(lin(`${p}mlp.gate_proj`, mlpHidden, d, b, 2, 'mlp.gate'), lin(`${p}mlp.up_proj`, mlpHidden, d, b, 2, 'mlp.up'), lin(`${p}mlp.down_proj`, d, mlpHidden, b, 3, 'mlp.down'));
    }
  }
  return out;
}

/**
 * cos and sin tables [B*T, H*hd] of the rotary embedding: position t, head dim j rotates at
 * theta^(-2(j mod hd/2)/hd), the frequencies repeated over both halves (HF's cat(freqs, freqs)).
 */
function ropeTables(b: number, t: number, heads: number, hd: number, theta: number, positions?: Int32Array): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const w = heads * hd;
  const cos = new Float32Array(b * t * w);
  const sin = new Float32Array(b * t * w);
  const half = hd / 2;
  for (let p = 0; p < t; p++) {
    for (let j = 0; j < hd; j++) {
      const freq = Math.pow(theta, -(2 * (j % half)) / hd);
      for (let bi = 0; bi < b; bi++) {
        // given position ids (prefix sharing) rotate by their own position, else by the index
        const angle = (positions ? positions[bi * t + p]! : p) * freq;
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        for (let h = 0; h < heads; h++) {
          const at = (bi * t + p) * w + h * hd + j;
          cos[at] = c;
          sin[at] = s;
        }
      }
    }
  }
  return { cos: tf.tensor2d(cos, [b * t, w]), sin: tf.tensor2d(sin, [b * t, w]) };
}

/** x·cos + rotate_half(x)·sin on x [N, H*hd], with rotate_half(x) = [-x2, x1] per head. */
function applyRope(x: tf.Tensor2D, heads: number, hd: number, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor2D {
  const [n, w] = x.shape;
  const per = tf.reshape(x, [n * heads, hd]) as tf.Tensor2D;
  const half = hd / 2;
  const x1 = tf.slice(per, [0, 0], [n * heads, half]);
  const x2 = tf.slice(per, [0, half], [n * heads, half]);
  const rot = tf.reshape(tf.concat([tf.neg(x2), x1], 1), [n, w]) as tf.Tensor2D;
  return tf.add<tf.Tensor2D>(tf.mul<tf.Tensor2D>(x, cos), tf.mul<tf.Tensor2D>(rot, sin));
}

function attention(cfg: LlamaConfig, f: Forward, block: number, p: string, h: tf.Tensor2D, b: number, t: number, rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; kcos: tf.Tensor2D; ksin: tf.Tensor2D }, masked: BatchAttention | undefined): tf.Tensor2D {
  const { d, heads, kvHeads } = cfg;
  const hd = d / heads;
  const g = heads / kvHeads;
  const q = applyRope(f.linear(`${p}self_attn.q_proj.weight`, h), heads, hd, rope.cos, rope.sin);
  let k = applyRope(f.linear(`${p}self_attn.k_proj.weight`, h), kvHeads, hd, rope.kcos, rope.ksin);
  let v = f.linear(`${p}self_attn.v_proj.weight`, h);
  if (f.hooks.kv) {
    // one row per (token, kv head)
    const r = f.hooks.kv(block, tf.reshape(k, [b * t * kvHeads, hd]), tf.reshape(v, [b * t * kvHeads, hd]));
    k = tf.reshape(r.k, [b * t, kvHeads * hd]);
    v = tf.reshape(r.v, [b * t, kvHeads * hd]);
  }
  const perHead = (x: tf.Tensor2D, n: number) => tf.reshape(tf.transpose(tf.reshape(x, [b, t, n, hd]), [0, 2, 1, 3]), [b, n, t, hd]);
  const hook = f.hooks.attentionMask;
  const layouts = (hook ? hook(block, tf.reshape(perHead(q, heads), [b * heads, t, hd]) as tf.Tensor3D, tf.reshape(perHead(k, kvHeads), [b * kvHeads, t, hd]) as tf.Tensor3D, b, t, masked?.layouts) : undefined) ?? masked?.layouts;
  if (layouts) {
    // the op takes every query head with its own k and v: repeat each kv head over its g query heads
    const repeat = (x: tf.Tensor2D) => tf.reshape(g === 1 ? perHead(x, kvHeads) : tf.tile(tf.reshape(perHead(x, kvHeads), [b * kvHeads, 1, t * hd]), [1, g, 1]), [b * heads, t, hd]) as tf.Tensor3D;
    const ctx = maskedAttention(tf.reshape(perHead(q, heads), [b * heads, t, hd]), repeat(k), repeat(v), heads, layouts);
    const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, heads, t, hd]), [0, 2, 1, 3]), [b * t, heads * hd]) as tf.Tensor2D;
    return f.linear(`${p}self_attn.o_proj.weight`, merged);
  }
  // query head kv*g + i shares key/value head kv (HF repeat_kv): group the g query heads of each kv
  // head along the time axis, [B*KV, g*T, hd], so one batched matmul serves them without repeating k, v
  const qg = tf.reshape(tf.transpose(tf.reshape(q, [b, t, kvHeads, g, hd]), [0, 2, 3, 1, 4]), [b * kvHeads, g * t, hd]) as tf.Tensor3D;
  const kk = tf.reshape(tf.transpose(tf.reshape(k, [b, t, kvHeads, hd]), [0, 2, 1, 3]), [b * kvHeads, t, hd]) as tf.Tensor3D;
  const vv = tf.reshape(tf.transpose(tf.reshape(v, [b, t, kvHeads, hd]), [0, 2, 1, 3]), [b * kvHeads, t, hd]) as tf.Tensor3D;
  // row r of the [B*KV*g*T, T] scores is the query at position r % T: the softmax's causal mask
  const scores = tf.matMul(tf.mul(qg, 1 / Math.sqrt(hd)), kk, false, true);
  const probs = tf.reshape(softmaxRows(tf.reshape(scores, [b * kvHeads * g * t, t]), t), [b * kvHeads, g * t, t]) as tf.Tensor3D;
  const ctx = tf.matMul(probs, vv); // [B*KV, g*T, hd]
  const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, kvHeads, g, t, hd]), [0, 3, 1, 2, 4]), [b * t, heads * hd]) as tf.Tensor2D;
  return f.linear(`${p}self_attn.o_proj.weight`, merged);
}

function swiglu(cfg: LlamaConfig, f: Forward, p: string, h: tf.Tensor2D, rows?: Int32Array): tf.Tensor2D {
  if ((cfg.activation ?? 'silu') === 'silu' && !f.hooks.activation) {
    // no activation hook between silu and the product: silu(gate) * up as one fused op
    const g = f.linear(`${p}gate_proj.weight`, h, rows);
    return f.linear(`${p}down_proj.weight`, fusedSwiGLU(g, f.linear(`${p}up_proj.weight`, h, rows)) as tf.Tensor2D, rows);
  }
  const gate = f.mlpActivation(`${p}down_proj.weight`, mlpNonlinearity(cfg.activation ?? 'silu', f.linear(`${p}gate_proj.weight`, h, rows)));
  const up = f.linear(`${p}up_proj.weight`, h, rows);
  return f.linear(`${p}down_proj.weight`, tf.mul(gate, up) as tf.Tensor2D, rows);
}

function logits(cfg: LlamaConfig, f: Forward, ids: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = ids.shape;
  if (t > cfg.ctx) throw new ArgumentError(`sequence length ${t} exceeds the model context ${cfg.ctx}`);
  const hd = cfg.d / cfg.heads;
  const masked = passAttention(cfg.attention ? (n) => specLayout(cfg.attention!, n) : undefined, f.hooks.attention, b, t);
  const positions = masked?.positions;
  const qr = ropeTables(b, t, cfg.heads, hd, cfg.ropeTheta, positions);
  const kr = cfg.kvHeads === cfg.heads ? qr : ropeTables(b, t, cfg.kvHeads, hd, cfg.ropeTheta, positions);
  const rope = { cos: qr.cos, sin: qr.sin, kcos: kr.cos, ksin: kr.sin };
  let x = embed(f.w('model.embed_tokens.weight'), ids, cfg.vocab);
  for (let i = 0; i < cfg.layers; i++) {
    const p = `model.layers.${i}.`;
    f.hooks.blockInput?.(i, x);
    const rot = cfg.normRotation === true;
    const n1 = rotateNormOutput(f, rot ? `${p}input_layernorm.rotation` : undefined, rmsNorm(x, f.w(`${p}input_layernorm.weight`), cfg.normEps));
    x = tf.add(x, attention(cfg, f, i, p, n1, b, t, rope, masked));
    const h = rotateNormOutput(f, rot ? `${p}post_attention_layernorm.rotation` : undefined, rmsNorm(x, f.w(`${p}post_attention_layernorm.weight`), cfg.normEps));
    const m = cfg.moe ? moeLayer(f, i, `${p}mlp.router.weight`, cfg.moe, h, (e, xe, rows) => swiglu(cfg, f, `${p}mlp.experts.${e}.`, xe, rows)) : swiglu(cfg, f, `${p}mlp.`, h);
    x = tf.add(x, m);
    f.hooks.blockOutput?.(i, x);
  }
  const out = rmsNorm(x, f.w('model.norm.weight'), cfg.normEps);
  return tf.matMul(out, f.w(cfg.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') as tf.Tensor2D, false, true);
}

/** Logits [B*T, V] of a Llama with parameters `p` (plain tensors for tf.grads, or variables). */
export function llamaLogits2d(cfg: LlamaConfig, p: Record<string, tf.Tensor>, ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D {
  return logits(cfg, new Forward(p, llamaLinears(cfg), hooks), ids);
}

export class Llama extends BaseModel {
  readonly architecture = 'llama' as const;
  readonly config: Readonly<LlamaConfig>;
  readonly spec: Readonly<LlamaSpec>;
  readonly blocks: number;

  constructor(config: LlamaConfig, values: ReadonlyMap<string, Float32Array>) {
    super('llama', llamaParamSpecs(config), values, llamaLinears(config));
    const cfg: LlamaConfig = {} as LlamaConfig;
    for (const k of LLAMA_FIELDS) if ((config as unknown as Record<string, unknown>)[k] !== undefined) (cfg as unknown as Record<string, unknown>)[k] = (config as unknown as Record<string, unknown>)[k];
    if (config.moe) cfg.moe = Object.freeze({ experts: config.moe.experts, topK: config.moe.topK });
    if (config.attention) cfg.attention = Object.freeze(structuredClone(config.attention));
    if (cfg.normRotation !== true) delete cfg.normRotation;
    this.config = Object.freeze(cfg);
    this.spec = Object.freeze({ architecture: 'llama' as const, ...cfg });
    this.blocks = cfg.layers;
  }

  logits2d(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D {
    return logits(this.config, this.pass(hooks), ids);
  }
}

/** A freshly initialized Llama; `config` fills in DEFAULT_LLAMA_CONFIG except the vocabulary. */
export function createLlama(config: Partial<LlamaConfig> & { vocab: number }, options: { seed?: number; rng?: Random } = {}): Llama {
  const cfg: LlamaConfig = { ...DEFAULT_LLAMA_CONFIG, ...config };
  const rng = options.rng ?? new Random(options.seed ?? 0);
  return new Llama(cfg, initParamValues(llamaParamSpecs(cfg), rng.fork('llama-init')));
}
