// Hugging Face names for what the trainer exports, the inverse of the imports in checkpoint.ts:
// GPT-2 parameters live under `transformer.` in GPT2LMHeadModel and its Conv1D weights (c_attn,
// attn.c_proj, c_fc, mlp.c_proj) are stored [in, out]; Llama names are already LlamaForCausalLM's.
// Used for a checkpoint folder (model.safetensors + config.json) that transformers and readCheckpoint
// both read, and for the module names of a PEFT adapter (base_model.model.<HF module>.lora_A.weight).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tensor, transpose, type Tensor } from '@sparse/tensor';
import { atomicWriteFile, writeSafetensorsFile } from '@sparse/tensor/node';
import type { AdapterState } from '@sparse/lora-variants';
import { savePEFTAdapter } from '@sparse/lora-variants/node';
import { paramShapes } from './index.js';
import type { ModelSpec } from './types.js';

const CONV1D_MODULE = /^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$/;

/** Why `spec` has no Hugging Face GPT2LMHeadModel / LlamaForCausalLM equivalent, or null when it has one. */
export function hfUnsupported(spec: ModelSpec): string | null {
  if (spec.moe !== undefined && spec.moe !== null) return 'mixture-of-experts blocks have no GPT2LMHeadModel / LlamaForCausalLM equivalent';
  if (spec.attention !== undefined && spec.attention !== null) return 'a static attention pattern (the attention field) has no GPT2LMHeadModel / LlamaForCausalLM equivalent';
  if (spec.normRotation === true) return 'norm rotations (the normRotation field: a [d, d] product after each block norm) have no GPT2LMHeadModel / LlamaForCausalLM equivalent';
  if (spec.architecture !== 'gpt' && spec.architecture !== 'llama') return `architecture ${JSON.stringify(spec.architecture)} has no Hugging Face equivalent here`;
  return null;
}

/** The Hugging Face module name of one of our linear layers (`h.0.attn.c_attn` -> `transformer.h.0.attn.c_attn`). */
export function hfModuleName(spec: ModelSpec, module: string): string {
  return spec.architecture === 'gpt' ? `transformer.${module}` : module;
}

/** Whether the Hugging Face module stores its weight [in, out] (GPT-2's Conv1D), PEFT's fan_in_fan_out. */
export function isHFConv1D(spec: ModelSpec, module: string): boolean {
  return spec.architecture === 'gpt' && CONV1D_MODULE.test(module);
}

/** config.json of the equivalent Hugging Face model (the fields checkpoint.ts reads, plus model_type and architectures). */
export function hfConfigOf(spec: ModelSpec): Record<string, unknown> {
  const why = hfUnsupported(spec);
  if (why !== null) throw new Error(`no Hugging Face config: ${why}`);
  const s = spec as Record<string, number | boolean | string>;
  if (spec.architecture === 'gpt') {
    const d = s.d as number;
    return {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: spec.vocab,
      n_positions: spec.ctx,
      n_embd: d,
      n_layer: s.layers,
      n_head: s.heads,
      n_inner: Math.round((s.mlpRatio as number) * d),
      activation_function: s.activation === 'relu' ? 'relu' : s.activation === 'relu2' ? 'relu2' : 'gelu_new',
      layer_norm_epsilon: 1e-5,
      tie_word_embeddings: true,
    };
  }
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: spec.vocab,
    max_position_embeddings: spec.ctx,
    hidden_size: s.d,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    intermediate_size: s.mlpHidden,
    rope_theta: s.ropeTheta,
    rms_norm_eps: s.normEps,
    tie_word_embeddings: s.tiedEmbeddings,
    hidden_act: (s.activation as string | undefined) ?? 'silu',
    attention_bias: false,
    mlp_bias: false,
  };
}

/** Our parameter values (float32, [out, in]) under their Hugging Face names and layouts. */
export function toHFTensors(spec: ModelSpec, values: ReadonlyMap<string, Float32Array>): Record<string, Tensor> {
  const why = hfUnsupported(spec);
  if (why !== null) throw new Error(`no Hugging Face names: ${why}`);
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of paramShapes(spec)) {
    const v = values.get(name);
    if (v === undefined) throw new Error(`toHFTensors: no value for ${name}`);
    const t = tensor(v, shape);
    const module = name.replace(/\.weight$/, '');
    const conv1d = name.endsWith('.weight') && isHFConv1D(spec, module);
    out[spec.architecture === 'gpt' ? `transformer.${name}` : name] = conv1d ? transpose(t) : t;
  }
  return out;
}

/**
 * Writes `dir/model.safetensors` (Hugging Face names, float32, metadata format "pt") and `dir/config.json`,
 * a folder that transformers' AutoModelForCausalLM and our readCheckpoint both load. Returns the weights' size.
 */
export async function saveHFCheckpoint(dir: string, spec: ModelSpec, values: ReadonlyMap<string, Float32Array>): Promise<number> {
  const config = hfConfigOf(spec);
  const tensors = toHFTensors(spec, values);
  mkdirSync(dir, { recursive: true });
  const bytes = await writeSafetensorsFile(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await atomicWriteFile(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return bytes;
}

/** How an adapter over our modules is saved for PEFT: module names keyed by HF name, target_modules, fan_in_fan_out. */
export interface HFAdapterLayout<S> {
  /** The adapter states under their Hugging Face module names. */
  modules: Record<string, S>;
  /** Exactly the adapted modules (PEFT matches a full name exactly, so no other layer gets a LoRA). */
  targetModules: string[];
  /** True when the adapted modules are GPT-2 Conv1D layers (stored [in, out]). */
  fanInFanOut: boolean;
}

/**
 * Renames an adapter's modules (ours, without `.weight`) to the Hugging Face model's. Models without a
 * Hugging Face equivalent (hfUnsupported) keep our names; a mix of Conv1D and Linear modules throws, as
 * PEFT's fan_in_fan_out is one flag per adapter.
 */
export function hfAdapterLayout<S>(spec: ModelSpec, modules: Record<string, S>): HFAdapterLayout<S> {
  const names = Object.keys(modules).sort();
  const hf = hfUnsupported(spec) === null;
  const conv = names.map((n) => hf && isHFConv1D(spec, n));
  if (conv.some((c) => c) && !conv.every((c) => c)) {
    throw new Error(`the adapter covers Conv1D and Linear modules at once (${names.join(', ')}); PEFT's fan_in_fan_out is one flag per adapter`);
  }
  const rename = (n: string) => (hf ? hfModuleName(spec, n) : n);
  return {
    modules: Object.fromEntries(names.map((n) => [rename(n), modules[n]!])),
    targetModules: names.map(rename),
    fanInFanOut: conv.length > 0 && conv[0] === true,
  };
}

/**
 * Saves an adapter over our modules as a PEFT folder for the Hugging Face model of `spec`: HF module
 * names, target_modules listing exactly those, fan_in_fan_out for GPT-2's Conv1D, task_type CAUSAL_LM.
 */
export async function saveHFPEFTAdapter(dir: string, spec: ModelSpec, modules: Record<string, AdapterState>, baseModelNameOrPath: string | null): Promise<void> {
  const layout = hfAdapterLayout(spec, modules);
  await savePEFTAdapter(dir, layout.modules, {
    baseModelNameOrPath,
    taskType: 'CAUSAL_LM',
    targetModules: layout.targetModules,
    fanInFanOut: layout.fanInFanOut,
  });
}
