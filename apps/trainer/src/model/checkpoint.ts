// Checkpoint files. Ours: one safetensors file with the model's parameter names and float32
// values, and the spec as JSON in the header's __metadata__ (key "spec"), written atomically.
// Imports: Hugging Face checkpoints with GPT-2 names (Conv1D weights stored [in, out], transposed
// here to our [out, in]) or Llama names, sized by their config.json. Tensors are read one at a
// time (fp32, fp16 or bf16) straight from their byte ranges.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { cast, checkAllocation, tensor, transpose, type Tensor, isSparseLayout, toDense } from '@sparse/tensor';
import { openSafetensors, writeSafetensorsFile, type SafetensorsFileReader } from '@sparse/tensor/node';
import type { BaseModel } from './base.js';
import { CheckpointError, ModelSpecError } from './errors.js';
import { createModel, paramShapes, resolveSpec } from './index.js';
import type { LanguageModel, ModelSpec } from './types.js';

export { CheckpointError };

/** Value of __metadata__.format in our files. */
export const CHECKPOINT_FORMAT = 'sparse-train';

/** Most parameters (elements over all tensors) a checkpoint's spec or config may claim: 2^31 - 1. */
export const MAX_CHECKPOINT_PARAMETERS = 2 ** 31 - 1;

/** Writes the model's parameters and spec to `path` (atomically: temporary file, then rename). Returns the file size. */
export async function saveCheckpoint(model: LanguageModel, path: string, metadata: Record<string, string> = {}): Promise<number> {
  const entries: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(model.params)) entries[name] = tensor(Float32Array.from(v.dataSync() as Float32Array), v.shape);
  return writeSafetensorsFile(path, entries, { ...metadata, format: CHECKPOINT_FORMAT, spec: JSON.stringify(model.spec) });
}

export type CheckpointSource = 'sparse-train' | 'hf-gpt2' | 'hf-llama';

export interface CheckpointContents {
  spec: ModelSpec;
  /** Every parameter by our name, float32, our [out, in] layout. */
  values: Map<string, Float32Array>;
  source: CheckpointSource;
  /** The safetensors file(s) read. */
  files: string[];
  /** __metadata__ of the (first) file. */
  metadata: Record<string, string>;
}

/** Reads tensors by name across one file or the shards of an index. */
class TensorSource {
  private readonly readers = new Map<string, SafetensorsFileReader>();
  private constructor(
    readonly where: string,
    private readonly fileOf: (name: string) => string | undefined,
    readonly names: Set<string>,
  ) {}

  static async single(path: string): Promise<TensorSource> {
    const r = await openSafetensors(path);
    const src = new TensorSource(path, (n) => (r.has(n) ? path : undefined), new Set(r.names));
    src.readers.set(path, r);
    return src;
  }

  static async sharded(indexPath: string): Promise<TensorSource> {
    const dir = dirname(indexPath);
    let map: Record<string, string>;
    try {
      map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
    } catch (cause) {
      throw new CheckpointError(indexPath, `cannot read the shard index (${(cause as Error).message})`, { cause });
    }
    checkWeightMap(indexPath, map);
    return new TensorSource(indexPath, (n) => (map[n] === undefined ? undefined : join(dir, map[n])), new Set(Object.keys(map)));
  }

  get files(): string[] {
    return [...this.readers.keys()];
  }

  metadata(): Record<string, string> {
    const first = this.readers.values().next();
    return first.done ? {} : { ...first.value.metadata };
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** One tensor as float32, its shape as stored. */
  async read(name: string): Promise<Tensor> {
    const file = this.fileOf(name);
    if (file === undefined) throw new CheckpointError(this.where, `missing tensor ${name}`, { tensor: name });
    let r = this.readers.get(file);
    if (!r) {
      r = await openSafetensors(file);
      this.readers.set(file, r);
    }
    if (!r.has(name)) throw new CheckpointError(file, `missing tensor ${name}`, { tensor: name });
    // sparse layouts (a compressed export) are read back dense
    const x = await r.read(name);
    const t = isSparseLayout(x) ? toDense(x) : x;
    if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16' && t.dtype !== 'float64') {
      throw new CheckpointError(file, `tensor ${name} has dtype ${t.dtype}; expected a float type (F32, F16, BF16)`, { tensor: name });
    }
    return t;
  }

  fileFor(name: string): string {
    return this.fileOf(name) ?? this.where;
  }

  async close(): Promise<void> {
    for (const r of this.readers.values()) await r.close();
  }
}

/**
 * A shard index's weight_map must be an object of tensor name to shard file, each a relative path
 * that stays inside the checkpoint folder: no absolute paths, no `..`.
 */
function checkWeightMap(indexPath: string, map: unknown): asserts map is Record<string, string> {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new CheckpointError(indexPath, `weight_map must be an object of tensor name to shard file, got ${JSON.stringify(map)}`);
  }
  const dir = resolve(dirname(indexPath));
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file === '') {
      throw new CheckpointError(indexPath, `weight_map names ${JSON.stringify(file)} for tensor ${name}; expected a shard file name`, { tensor: name });
    }
    const inside = relative(dir, resolve(dir, file));
    if (isAbsolute(file) || file.split(/[\\/]/).includes('..') || inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) {
      throw new CheckpointError(indexPath, `weight_map names ${JSON.stringify(file)} for tensor ${name}, outside the checkpoint folder ${dir}; shard files must be relative paths inside it`, {
        tensor: name,
      });
    }
  }
}

/**
 * Checks what a spec claims against the file before anything is sized from it: every block and
 * every expert has tensors of its own, so neither count may exceed the tensors the checkpoint holds,
 * and the parameters in all may not exceed MAX_CHECKPOINT_PARAMETERS (each tensor the per-tensor limits).
 */
function checkClaimedSize(spec: ModelSpec, src: TensorSource, file: string): void {
  const tensors = src.names.size;
  const claims = spec as ModelSpec & { layers?: number; moe?: { experts?: number } };
  for (const [field, value] of [
    ['layers', claims.layers],
    ['moe.experts', claims.moe?.experts],
  ] as const) {
    if (value !== undefined && value > tensors) {
      throw new CheckpointError(file, `the spec claims ${field} = ${value}, but the checkpoint holds only ${tensors} tensors (each one needs tensors of its own)`);
    }
  }
  let total = 0;
  for (const [name, shape] of paramShapes(spec)) {
    const elements = shape.reduce((n, d) => n * d, 1);
    try {
      checkAllocation('checkpoint', `tensor ${name} of shape [${shape.join(', ')}]`, elements, 4);
    } catch (cause) {
      throw new CheckpointError(file, `the spec claims too large a model: ${(cause as Error).message}`, { tensor: name, cause });
    }
    total += elements;
  }
  if (total > MAX_CHECKPOINT_PARAMETERS) {
    throw new CheckpointError(file, `the spec claims ${total} parameters, above MAX_CHECKPOINT_PARAMETERS = ${MAX_CHECKPOINT_PARAMETERS}`);
  }
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Reads every parameter of `spec` from `src`: `stored(ours)` names the file's tensor, `conv1d(ours)`
 * says it is stored transposed ([in, out]).
 */
async function readParams(src: TensorSource, spec: ModelSpec, stored: (name: string) => string, conv1d: (name: string) => boolean): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(spec)) {
    const fileName = stored(name);
    if (!src.has(fileName)) throw new CheckpointError(src.where, `missing tensor ${fileName}`, { tensor: fileName });
    let t = await src.read(fileName);
    const transposed = conv1d(name);
    const want = transposed ? [shape[1], shape[0]] : shape;
    if (t.shape.length !== want.length || t.shape.some((n, i) => n !== want[i])) {
      throw new CheckpointError(src.fileFor(fileName), `tensor ${fileName} has shape ${shapeText(t.shape)}, expected ${shapeText(want)}${transposed ? ' (Conv1D [in, out])' : ''}`, { tensor: fileName });
    }
    if (transposed) t = transpose(t);
    values.set(name, cast(t, 'float32').data as Float32Array);
  }
  return values;
}

function readConfig(path: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (cause) {
    throw new CheckpointError(path, `cannot read config.json (${(cause as Error).message})`, { cause });
  }
}

function num(cfg: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(file, `config field ${key} must be a number, got ${JSON.stringify(cfg[key])}`);
  return v;
}

function gpt2Spec(cfg: Record<string, unknown>, file: string): ModelSpec {
  const d = num(cfg, 'n_embd', file);
  const inner = cfg.n_inner === null || cfg.n_inner === undefined ? 4 * d : num(cfg, 'n_inner', file);
  const act = cfg.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh' && act !== 'relu' && act !== 'relu2') {
    throw new CheckpointError(file, `config activation_function ${JSON.stringify(act)} is not supported (gelu_new, gelu_pytorch_tanh, relu or relu2)`);
  }
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  if (eps !== 1e-5) throw new CheckpointError(file, `config layer_norm_epsilon ${JSON.stringify(eps)} is not supported (the model uses 1e-5)`);
  return {
    architecture: 'gpt',
    vocab: num(cfg, 'vocab_size', file),
    ctx: num(cfg, 'n_positions', file, cfg.n_ctx as number | undefined),
    d,
    layers: num(cfg, 'n_layer', file),
    heads: num(cfg, 'n_head', file),
    mlpRatio: inner / d,
    ...(act === 'relu' || act === 'relu2' ? { activation: act } : {}),
  };
}

function llamaSpec(cfg: Record<string, unknown>, file: string): ModelSpec {
  const d = num(cfg, 'hidden_size', file);
  const heads = num(cfg, 'num_attention_heads', file);
  if (cfg.head_dim !== undefined && cfg.head_dim !== null && cfg.head_dim !== d / heads) {
    throw new CheckpointError(file, `config head_dim ${JSON.stringify(cfg.head_dim)} is not supported (must equal hidden_size / num_attention_heads = ${d / heads})`);
  }
  if (cfg.rope_scaling !== undefined && cfg.rope_scaling !== null) throw new CheckpointError(file, 'config rope_scaling is not supported (plain rotary embeddings only)');
  for (const k of ['attention_bias', 'mlp_bias']) if (cfg[k] === true) throw new CheckpointError(file, `config ${k}: true is not supported (the model's linears have no bias)`);
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'relu' && act !== 'relu2') throw new CheckpointError(file, `config hidden_act ${JSON.stringify(cfg.hidden_act)} is not supported (silu, relu or relu2)`);
  const tied = cfg.tie_word_embeddings ?? false;
  if (typeof tied !== 'boolean') throw new CheckpointError(file, `config tie_word_embeddings must be true or false, got ${JSON.stringify(tied)}`);
  return {
    architecture: 'llama',
    vocab: num(cfg, 'vocab_size', file),
    ctx: num(cfg, 'max_position_embeddings', file, 2048),
    d,
    layers: num(cfg, 'num_hidden_layers', file),
    heads,
    kvHeads: num(cfg, 'num_key_value_heads', file, heads),
    mlpHidden: num(cfg, 'intermediate_size', file),
    ropeTheta: num(cfg, 'rope_theta', file, 10000),
    normEps: num(cfg, 'rms_norm_eps', file, 1e-6),
    tiedEmbeddings: tied,
    ...(act === 'relu' || act === 'relu2' ? { activation: act } : {}),
  };
}

/** A spec from a config, its field errors reported against the config file. */
function checkedSpec(spec: ModelSpec, file: string): ModelSpec {
  try {
    return resolveSpec(spec);
  } catch (e) {
    if (e instanceof ModelSpecError) throw new CheckpointError(file, `gives an invalid model: ${e.message}`, { cause: e });
    throw e;
  }
}

const CONV1D = /^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/**
 * Reads a checkpoint: our safetensors file, or a Hugging Face GPT-2 / Llama checkpoint given as its
 * directory, its model.safetensors (config.json beside it) or its model.safetensors.index.json.
 */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  if (!existsSync(path)) throw new CheckpointError(path, 'does not exist');
  let dir = dirname(path);
  let file = path;
  if (statSync(path).isDirectory()) {
    dir = path;
    if (existsSync(join(path, 'model.safetensors'))) file = join(path, 'model.safetensors');
    else if (existsSync(join(path, 'model.safetensors.index.json'))) file = join(path, 'model.safetensors.index.json');
    else throw new CheckpointError(path, 'directory has neither model.safetensors nor model.safetensors.index.json');
  }
  let src: TensorSource;
  try {
    src = file.endsWith('.index.json') ? await TensorSource.sharded(file) : await TensorSource.single(file);
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause;
    throw new CheckpointError(file, `cannot open as safetensors (${(cause as Error).message})`, { cause });
  }
  try {
    const metadata = src.metadata();
    if (metadata.format === CHECKPOINT_FORMAT && metadata.spec !== undefined) {
      let raw: ModelSpec;
      try {
        raw = JSON.parse(metadata.spec) as ModelSpec;
      } catch (cause) {
        throw new CheckpointError(file, `__metadata__.spec is not JSON (${(cause as Error).message})`, { cause });
      }
      const spec = checkedSpec(raw, file);
      checkClaimedSize(spec, src, file);
      const values = await readParams(src, spec, (n) => n, () => false);
      return { spec, values, source: 'sparse-train', files: src.files, metadata };
    }
    const configPath = join(dir, 'config.json');
    const config = existsSync(configPath) ? readConfig(configPath) : undefined;
    const type = config?.model_type;
    const gpt2Prefix = src.has('transformer.wte.weight') ? 'transformer.' : '';
    const isGPT2 = type === 'gpt2' || (type === undefined && src.has(`${gpt2Prefix}wte.weight`));
    const isLlama = type === 'llama' || (type === undefined && src.has('model.embed_tokens.weight'));
    if (!isGPT2 && !isLlama) {
      const why = type !== undefined ? `model_type ${JSON.stringify(type)} in ${configPath}` : 'neither GPT-2 (wte.weight) nor Llama (model.embed_tokens.weight) tensor names';
      throw new CheckpointError(file, `unknown architecture: ${why}; supported: sparse-train checkpoints, Hugging Face gpt2 and llama`);
    }
    if (!config) throw new CheckpointError(file, `no config.json beside it (${configPath}); a Hugging Face checkpoint needs one for the model's sizes`);
    if (isGPT2) {
      const spec = checkedSpec(gpt2Spec(config, configPath), configPath);
      checkClaimedSize(spec, src, configPath);
      const values = await readParams(src, spec, (n) => gpt2Prefix + n, (n) => CONV1D.test(n));
      return { spec, values, source: 'hf-gpt2', files: src.files, metadata };
    }
    const spec = checkedSpec(llamaSpec(config, configPath), configPath);
    checkClaimedSize(spec, src, configPath);
    const values = await readParams(src, spec, (n) => n, () => false);
    return { spec, values, source: 'hf-llama', files: src.files, metadata };
  } finally {
    await src.close();
  }
}

/** Reads a checkpoint (see readCheckpoint) and builds its model. */
export async function loadCheckpoint(path: string): Promise<LanguageModel & BaseModel> {
  const { spec, values } = await readCheckpoint(path);
  return createModel(spec, { values });
}
