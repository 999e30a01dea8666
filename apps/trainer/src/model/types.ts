// The interface every built-in model implements, so that stages (calibrate, prune, adapt,
// distill, export) work on any architecture. Linear weights are stored [out, in] (PyTorch's
// nn.Linear layout, which is also what the pruners and adapters take); y = x Wᵀ + b.

import type { Site } from '@sparse/activation';
import type * as tf from '@tensorflow/tfjs-core';
import type { AttentionLayout, BatchAttention } from './attention-op.js';

export type Architecture = 'gpt' | 'llama';

/** One linear layer whose weight a stage may prune, mask or adapt. */
export interface LinearInfo {
  /** Parameter name of the weight, e.g. 'h.0.mlp.c_fc.weight' or 'model.layers.0.mlp.up_proj.weight'. */
  name: string;
  /** Parameter name of its bias, if it has one. */
  bias?: string;
  out: number;
  in: number;
  /** Index of the transformer block it belongs to. */
  block: number;
  /**
   * Order of evaluation inside the block: layers with the same group read the same input (q, k, v);
   * a later group reads what earlier groups produce. Sequential calibration walks (block, group).
   */
  group: number;
  /** What it does: 'attn.qkv', 'attn.q', 'attn.k', 'attn.v', 'attn.out', 'mlp.up', 'mlp.gate', 'mlp.down', 'moe.router', ... */
  role: string;
  /** For mixture-of-experts layers, the expert index. */
  expert?: number;
}

/** The LinearInfo of module `module` (its weight is `<module>.weight`, its bias, when it has one, `<module>.bias`). */
export function linearInfo(module: string, out: number, inp: number, block: number, group: number, role: string, opts: { bias?: boolean; expert?: number } = {}): LinearInfo {
  return {
    name: `${module}.weight`,
    ...(opts.bias ? { bias: `${module}.bias` } : {}),
    out,
    in: inp,
    block,
    group,
    role,
    ...(opts.expert === undefined ? {} : { expert: opts.expert }),
  };
}

/** Callbacks a forward pass honours; all optional. */
export interface ForwardHooks {
  /**
   * Replaces the activations at a site (a linear layer's input, an MLP's activation; see sites.ts)
   * before they are consumed: activation sparsifiers zero entries here. Runs before linearInput, so
   * calibration sees what the layer really multiplies. Returns a tensor of x's shape, or, at a linear
   * input, `{ x, add }` where `add` [N, out] is added to the layer's product (R-Sparse's low-rank part).
   */
  activation?: (site: Site, x: tf.Tensor2D) => tf.Tensor2D | { x: tf.Tensor2D; add: tf.Tensor2D };
  /** The weight the forward pass uses for a parameter (masked, adapted, ...); default the parameter itself. */
  weight?: (name: string, param: tf.Tensor) => tf.Tensor;
  /** Receives each linear layer's input [tokens, in] (calibration). Runs for every LinearInfo. */
  linearInput?: (info: LinearInfo, x: tf.Tensor2D) => void;
  /**
   * Computes a linear layer's product x Wᵀ [tokens, out] itself (a sparse weight's kernels), or returns
   * undefined to leave it to the dense matMul with `weight`'s value. The bias is added after either way.
   */
  linearProduct?: (info: LinearInfo, x: tf.Tensor2D) => tf.Tensor2D | undefined;
  /** Receives each block's input hidden states [B*T, d] (the residual stream entering it). */
  blockInput?: (block: number, h: tf.Tensor2D) => void;
  /** Receives each block's output hidden states [B*T, d] (layer-wise distillation). */
  blockOutput?: (block: number, h: tf.Tensor2D) => void;
  /** Receives each MoE layer's routing: which expert each token went to and its gate weights. */
  routing?: (block: number, experts: tf.Tensor2D, gates: tf.Tensor2D) => void;
  /**
   * This batch's attention: a layout per sequence and their position ids (prefix sharing); replaces
   * the spec's pattern (and the dense causal mask) in every block. See attention-op.ts.
   */
  attention?: BatchAttention;
  /**
   * Consulted by every block's attention after rope (and after `kv`) with q [B*heads, T, hd] and
   * k [B*kvHeads, T, hd] (sequence s's heads are rows s*heads..) and the layouts that would apply
   * otherwise (the spec's pattern or `attention`; undefined: dense causal): returns the layouts to use
   * instead (one per sequence, each one-head or per-head), or undefined to keep them (dynamic sparse attention).
   */
  attentionMask?: (block: number, q: tf.Tensor3D, k: tf.Tensor3D, b: number, t: number, base: readonly AttentionLayout[] | undefined) => readonly AttentionLayout[] | undefined;
  /**
   * Rewrites each block's keys and values right after they are computed (keys after rope): k and v are
   * [rows, headDim], one row per (token, kv head); returns same-shape tensors (KV-cache pruning).
   */
  kv?: (block: number, k: tf.Tensor2D, v: tf.Tensor2D) => { k: tf.Tensor2D; v: tf.Tensor2D };
}

/** Everything needed to rebuild a model: architecture plus its size fields. */
export interface ModelSpec {
  architecture: Architecture;
  vocab: number;
  ctx: number;
  [field: string]: unknown;
}

export interface LanguageModel {
  readonly architecture: Architecture;
  /** The full configuration (plain JSON), enough for createModel to rebuild the model. */
  readonly spec: Readonly<ModelSpec>;
  readonly params: Readonly<Record<string, tf.Variable>>;
  /** Number of transformer blocks. */
  readonly blocks: number;
  /** Every prunable linear layer, in evaluation order (block, group). Embeddings and norms are not included. */
  linears(): LinearInfo[];
  /** Next-token logits [B*T, V] for ids [B, T]. */
  logits2d(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D;
  /** Mean next-token cross-entropy (nats) of ids [B,T] against targets [B,T]. */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, hooks?: ForwardHooks): tf.Scalar;
  variables(): tf.Variable[];
  numParams(): number;
  dispose(): void;
}
