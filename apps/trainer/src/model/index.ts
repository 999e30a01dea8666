// The model factory: one entry point from a spec (architecture + size fields) to a LanguageModel.

import { Random } from '@sparse/tensor';
import { checkAttentionSpec } from './attention-op.js';
import { BaseModel } from './base.js';
import { DEFAULT_GPT_CONFIG, type GPTConfig } from './config.js';
import { specFail } from './errors.js';
import { GPT, gptLinears, gptParamSpecs } from './gpt.js';
import { checkMoE, initParamValues } from './layers.js';
import { DEFAULT_LLAMA_CONFIG, Llama, llamaLinears, llamaParamSpecs, validateLlamaConfig, type LlamaConfig, type LlamaSpec } from './llama.js';
import type { Architecture, LanguageModel, LinearInfo, ModelSpec } from './types.js';

export { GPT, type GPTSpec } from './gpt.js';
export { Llama, type LlamaConfig, type LlamaSpec } from './llama.js';
export { BaseModel } from './base.js';
export { ModelSpecError, CheckpointError } from './errors.js';
export type { MoEConfig } from './layers.js';
export type * from './types.js';

export const ARCHITECTURES: readonly Architecture[] = ['gpt', 'llama'];

/** The built-in default size of an architecture, for a tokenizer's vocabulary. */
export function defaultSpec(architecture: Architecture, vocab: number): ModelSpec {
  if (architecture === 'gpt') return { architecture, vocab, ...DEFAULT_GPT_CONFIG };
  if (architecture === 'llama') return { architecture, vocab, ...DEFAULT_LLAMA_CONFIG };
  return specFail('architecture', `must be one of ${ARCHITECTURES.join(', ')}, got ${JSON.stringify(architecture)}`);
}

const GPT_FIELDS = ['vocab', 'ctx', 'd', 'layers', 'heads', 'mlpRatio', 'activation', 'moe', 'attention', 'normRotation'];

function validateGPTSpec(cfg: Record<string, unknown>): GPTConfig {
  for (const k of Object.keys(cfg)) if (!GPT_FIELDS.includes(k)) specFail(k, `is not a field of a gpt model (fields: ${GPT_FIELDS.join(', ')})`);
  for (const key of ['vocab', 'ctx', 'd', 'layers', 'heads'] as const) {
    const v = cfg[key];
    if (!Number.isInteger(v) || (v as number) < 1) specFail(key, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  const d = cfg.d as number;
  const ratio = cfg.mlpRatio;
  if (typeof ratio !== 'number' || !(ratio > 0) || !Number.isInteger(ratio * d)) specFail('mlpRatio', `must be positive with mlpRatio*d an integer, got ${JSON.stringify(ratio)}`);
  if (d % (cfg.heads as number) !== 0) specFail('heads', `(${cfg.heads as number}) must divide d (${d}): d must be a multiple of heads`);
  const moe = checkMoE(cfg.moe, 'moe', specFail);
  const act = cfg.activation;
  if (act !== undefined && act !== 'gelu' && act !== 'relu' && act !== 'relu2') specFail('activation', `must be 'gelu', 'relu' or 'relu2', got ${JSON.stringify(act)}`);
  const out: GPTConfig = { vocab: cfg.vocab as number, d, layers: cfg.layers as number, heads: cfg.heads as number, ctx: cfg.ctx as number, mlpRatio: ratio };
  if (act !== undefined && act !== 'gelu') out.activation = act;
  if (moe) out.moe = moe;
  if (cfg.attention !== undefined) out.attention = checkAttentionSpec(cfg.attention, out.ctx, specFail);
  if (cfg.normRotation !== undefined && typeof cfg.normRotation !== 'boolean') specFail('normRotation', `must be true or false, got ${JSON.stringify(cfg.normRotation)}`);
  if (cfg.normRotation === true) out.normRotation = true;
  return out;
}

/**
 * Checks a spec and fills fields it leaves out from defaultSpec (vocab has no default). Unknown
 * fields are errors, so a misspelt size does not silently fall back to the default.
 * Throws ModelSpecError naming the field.
 */
export function resolveSpec(spec: ModelSpec): ModelSpec {
  if (typeof spec !== 'object' || spec === null) return specFail('(spec)', `must be an object, got ${JSON.stringify(spec)}`);
  const arch = spec.architecture;
  if (!ARCHITECTURES.includes(arch)) return specFail('architecture', `must be one of ${ARCHITECTURES.join(', ')}, got ${JSON.stringify(arch)}`);
  if (!Number.isInteger(spec.vocab) || spec.vocab < 1) return specFail('vocab', `must be a positive integer, got ${JSON.stringify(spec.vocab)}`);
  const given = Object.fromEntries(Object.entries(spec).filter(([k, v]) => k !== 'architecture' && v !== undefined));
  const full = { ...defaultSpec(arch, spec.vocab), ...given } as Record<string, unknown>;
  delete full.architecture;
  if (arch === 'gpt') return { architecture: 'gpt', ...validateGPTSpec(full) };
  validateLlamaConfig(full as unknown as LlamaConfig);
  // the attention pattern with its defaults written out, as for gpt
  if (full.attention !== undefined) full.attention = checkAttentionSpec(full.attention, full.ctx as number, specFail);
  return { architecture: 'llama', ...(full as unknown as LlamaConfig) } as LlamaSpec;
}

export interface CreateModelOptions {
  /** Seed of the initializer (default 0); ignored when `values` is given. */
  seed?: number;
  /** Every parameter's value by name (a checkpoint, a snapshot); shapes are checked. */
  values?: ReadonlyMap<string, Float32Array>;
}

/** A model of `spec` (see resolveSpec for defaults and validation), initialized from a seed or given values. */
export function createModel(spec: ModelSpec, opts: CreateModelOptions = {}): LanguageModel & BaseModel {
  const full = resolveSpec(spec);
  const { architecture, ...rest } = full;
  const rng = () => new Random(opts.seed ?? 0);
  if (architecture === 'gpt') {
    const cfg = rest as unknown as GPTConfig;
    // same stream as createGPT, so a seed gives the same GPT either way
    return new GPT(cfg, opts.values ?? initParamValues(gptParamSpecs(cfg), rng().fork('gpt-init')));
  }
  const cfg = rest as unknown as LlamaConfig;
  return new Llama(cfg, opts.values ?? initParamValues(llamaParamSpecs(cfg), rng().fork('llama-init')));
}

/** The parameter names and shapes a spec's model has, without building it. */
export function paramShapes(spec: ModelSpec): Map<string, number[]> {
  const full = resolveSpec(spec);
  const { architecture, ...rest } = full;
  const specs = architecture === 'gpt' ? gptParamSpecs(rest as unknown as GPTConfig) : llamaParamSpecs(rest as unknown as LlamaConfig);
  return new Map(specs.map((s) => [s.name, s.shape]));
}

/** The linear layers a spec's model has (names, shapes, blocks, roles), without building it. */
export function linearsOf(spec: ModelSpec): LinearInfo[] {
  const full = resolveSpec(spec);
  const { architecture, ...rest } = full;
  return architecture === 'gpt' ? gptLinears(rest as unknown as GPTConfig) : llamaLinears(rest as unknown as LlamaConfig);
}

/** A spec's initial parameter values (the initializer createModel uses at `seed`), without building tfjs variables. */
export function initialValues(spec: ModelSpec, seed = 0): Map<string, Float32Array> {
  const full = resolveSpec(spec);
  const { architecture, ...rest } = full;
  const rng = new Random(seed);
  return architecture === 'gpt'
    ? initParamValues(gptParamSpecs(rest as unknown as GPTConfig), rng.fork('gpt-init'))
    : initParamValues(llamaParamSpecs(rest as unknown as LlamaConfig), rng.fork('llama-init'));
}
