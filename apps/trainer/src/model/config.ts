// The GPT's shape: a plain object, validated once, shared by the model and the CLI defaults.

import { ArgumentError } from '@sparse/tensor';
import type { AttentionSpec } from './attention-op.js';
import type { MoEConfig } from './layers.js';

export interface GPTConfig {
  /** Vocabulary size (rows of the token embedding, width of the output). */
  vocab: number;
  /** Model width. */
  d: number;
  /** Number of transformer blocks. */
  layers: number;
  /** Attention heads; must divide d. */
  heads: number;
  /** Context length: the longest sequence the learned positions cover. */
  ctx: number;
  /** MLP hidden width as a multiple of d. */
  mlpRatio: number;
  /** The MLP's nonlinearity: GPT-2's tanh GELU (default), or ReLU / squared ReLU (activation sparsity's substitutes). */
  activation?: 'gelu' | 'relu' | 'relu2';
  /** Replace each block's MLP by a mixture of experts (router + `experts` MLPs of the same shape). */
  moe?: MoEConfig;
  /** A static attention pattern (@sparse/attention's spec: sliding window, sinks, ...); default dense causal. */
  attention?: AttentionSpec;
  /**
   * Each block's two layer norms end with an orthogonal [d, d] rotation (`ln_1.rotation`, `ln_2.rotation`)
   * and the linear layers reading them hold their weights rotated to match: the same function, with those
   * layers' inputs in the basis where their weights have orthogonal columns (model/rotate.ts, WINA's transform).
   */
  normRotation?: boolean;
}

/**
 * Everything but the vocabulary, which comes from the tokenizer. Sized for the plain tfjs CPU
 * backend: ~28k parameters with a 63-symbol vocabulary, ~0.25 s per training step of 8x32 tokens.
 */
export const DEFAULT_GPT_CONFIG: Readonly<Omit<GPTConfig, 'vocab'>> = {
  d: 32,
  layers: 2,
  heads: 4,
  ctx: 32,
  mlpRatio: 4,
};

export function validateGPTConfig(cfg: GPTConfig): void {
  for (const key of ['vocab', 'd', 'layers', 'heads', 'ctx'] as const) {
    const v = cfg[key];
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`GPTConfig.${key} must be a positive integer, got ${v}`);
  }
  if (!(cfg.mlpRatio > 0) || !Number.isInteger(cfg.mlpRatio * cfg.d)) {
    throw new ArgumentError(`GPTConfig.mlpRatio must be positive with mlpRatio*d an integer, got ${cfg.mlpRatio}`);
  }
  if (cfg.d % cfg.heads !== 0) throw new ArgumentError(`GPTConfig.d (${cfg.d}) must be a multiple of heads (${cfg.heads})`);
  if (cfg.activation !== undefined && !['gelu', 'relu', 'relu2'].includes(cfg.activation)) {
    throw new ArgumentError(`GPTConfig.activation must be 'gelu', 'relu' or 'relu2', got ${JSON.stringify(cfg.activation)}`);
  }
  if (cfg.normRotation !== undefined && typeof cfg.normRotation !== 'boolean') {
    throw new ArgumentError(`GPTConfig.normRotation must be true or false, got ${JSON.stringify(cfg.normRotation)}`);
  }
  if (cfg.moe !== undefined) {
    const { experts, topK } = cfg.moe;
    if (!Number.isInteger(experts) || experts < 1) throw new ArgumentError(`GPTConfig.moe.experts must be a positive integer, got ${experts}`);
    if (!Number.isInteger(topK) || topK < 1 || topK > experts) throw new ArgumentError(`GPTConfig.moe.topK must be an integer in 1..${experts}, got ${topK}`);
  }
}
