// The Hugging Face PEFT adapter layout, in memory: adapter_config.json as an object and the tensors of
// adapter_model.safetensors by name. LoRA follows PEFT exactly (peft_type "LORA", names
// `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r], no adapter name in
// the key, as get_peft_model_state_dict strips it); adapter_config.json holds only fields of PEFT's
// LoraConfig. SQFT is the same two files plus sparse_adapter_config.json beside them,
// `{ "sparse_variant": "sqft", "sqft_sparse_merge": true }` (PEFT never reads it, so it loads SQFT as a
// plain LoRA without a warning; our loader reads it back). SPP is our own `peft_type: "SPP"` with `spp_col_init` and
// tensors `<module>.spp_row.weight` [out] and `<module>.spp_col.weight` [in]. Every other variant uses the
// generic layout of peft-variants.ts (its own peft_type plus `sparse_variant`, config keys, I32 indices).
import { ArgumentError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { configToPEFTKeys, fromVariantPEFTFiles, toVariantPEFTFiles } from './peft-variants.js';
import { loraConfigSchema, type LoRAConfig } from './variants/lora/config.js';
import { sppConfigSchema, type SPPConfig } from './variants/spp/config.js';
import type { AdapterState } from './variants/types.js';

export { PEFT_NATIVE_TYPES, peftTypeOf } from './peft-variants.js';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Our keys that PEFT's LoraConfig does not know, kept out of adapter_config.json (see PEFTFiles.sidecar). */
export const PEFT_SIDECAR_FILE = 'sparse_adapter_config.json';
const PREFIX = 'base_model.model.';

/** A malformed adapter file: `file` names the file, `field` the key or tensor at fault. */
export class PEFTFormatError extends ArgumentError {
  readonly file: string;
  readonly field: string;
  constructor(file: string, field: string, reason: string) {
    super(`${file}: ${field}: ${reason}`);
    this.name = 'PEFTFormatError';
    this.file = file;
    this.field = field;
  }
}

export interface PEFTSaveOptions {
  baseModelNameOrPath?: string | null;
  taskType?: string | null;
  /** Written as target_modules; default: the distinct last segments of the module names. */
  targetModules?: string[] | string;
  /**
   * LoRA / SQFT: PEFT's fan_in_fan_out, true when the base layers store W as [in, out] (GPT-2's Conv1D).
   * The adapter tensors keep their shapes, lora_A [r, in] and lora_B [out, r], as PEFT's Conv1D
   * LoRA layers hold them too; only the merged delta is transposed. Default false.
   */
  fanInFanOut?: boolean;
}

/** One adapter (one variant and config) over several modules, as a PEFT folder holds it. */
export interface PEFTAdapter {
  /** The registry name ('lora', 'sqft', 'spp', 'rosa', ...). */
  variant: string;
  /** The parsed config (LoRAConfig for lora/sqft, SPPConfig for spp, the variant's own otherwise). */
  config: unknown;
  modules: Record<string, AdapterState>;
  baseModelNameOrPath: string | null;
  taskType: string | null;
  targetModules: string[] | string;
  /** PEFT's fan_in_fan_out: the base stores W as [in, out] (GPT-2 Conv1D); adapter shapes are unchanged. */
  fanInFanOut: boolean;
}

export interface PEFTFiles {
  config: Record<string, unknown>;
  /** F32 params; I32 `.indices` selections for the variants that keep them. */
  tensors: Record<string, Tensor>;
  /** Written as safetensors metadata, as PEFT does. */
  metadata: Record<string, string>;
  /** LoRA-layout variants' own keys (SQFT's), for PEFT_SIDECAR_FILE; null when there are none. */
  sidecar: Record<string, unknown> | null;
}

/** Serializes adapters that share one variant and config into PEFT's config object and tensor names. */
export function toPEFTFiles(modules: Record<string, AdapterState>, opts: PEFTSaveOptions = {}): PEFTFiles {
  const names = Object.keys(modules).sort();
  if (names.length === 0) throw new ArgumentError('toPEFTFiles: no adapters to save');
  const first = modules[names[0]!]!;
  // Compared as written (tensor-valued init inputs left out), so equal configs are those that save equal.
  const saved = (s: AdapterState) => JSON.stringify(configToPEFTKeys(s.config, `toPEFTFiles (${s.variant})`));
  const firstSaved = saved(first);
  for (const n of names) {
    const s = modules[n]!;
    if (s.variant !== first.variant || saved(s) !== firstSaved) {
      throw new ArgumentError(`toPEFTFiles: module '${n}' has ${s.variant} ${JSON.stringify(s.config)}, but one PEFT folder holds one variant and config (${first.variant} ${JSON.stringify(first.config)})`);
    }
  }
  const targetModules = opts.targetModules ?? [...new Set(names.map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
  const common = {
    base_model_name_or_path: opts.baseModelNameOrPath ?? null,
    task_type: opts.taskType ?? null,
    inference_mode: true,
    target_modules: targetModules,
    modules_to_save: null,
    bias: 'none',
    revision: null,
  };
  let tensors: Record<string, Tensor> = {};
  let config: Record<string, unknown>;
  let sidecar: Record<string, unknown> | null = null;
  if (first.variant === 'lora' || first.variant === 'sqft') {
    const c = first.config as LoRAConfig;
    config = {
      ...common,
      peft_type: 'LORA',
      r: c.r,
      lora_alpha: c.alpha,
      lora_dropout: c.dropout,
      use_rslora: c.rslora,
      fan_in_fan_out: opts.fanInFanOut ?? false,
      init_lora_weights: true,
      use_dora: false,
      rank_pattern: {},
      alpha_pattern: {},
      layers_to_transform: null,
      layers_pattern: null,
    };
    if (first.variant === 'sqft') sidecar = { sparse_variant: 'sqft', sqft_sparse_merge: true };
    for (const n of names) {
      tensors[`${PREFIX}${n}.lora_A.weight`] = modules[n]!.params.lora_A!;
      tensors[`${PREFIX}${n}.lora_B.weight`] = modules[n]!.params.lora_B!;
    }
  } else if (first.variant === 'spp') {
    const sc = first.config as SPPConfig;
    // spp_rank only when above 1, so rank-1 files are unchanged.
    config = { ...common, peft_type: 'SPP', sparse_variant: 'spp', spp_col_init: sc.colInit, ...((sc.rank ?? 1) !== 1 ? { spp_rank: sc.rank } : {}) };
    for (const n of names) {
      tensors[`${PREFIX}${n}.spp_row.weight`] = modules[n]!.params.spp_row!;
      tensors[`${PREFIX}${n}.spp_col.weight`] = modules[n]!.params.spp_col!;
    }
  } else {
    ({ config, tensors } = toVariantPEFTFiles(modules, names, common));
  }
  return { config, tensors, metadata: { format: 'pt' }, sidecar };
}

/** What fromPEFTFiles needs of the weights file: its tensor names and a reader. */
export interface PEFTTensorSource {
  readonly tensorNames: readonly string[];
  tensor(name: string): Tensor;
}

export interface PEFTFileNames {
  config?: string;
  weights?: string;
  sidecar?: string;
}

function field<T>(cfg: Record<string, unknown>, key: string, file: string, check: (v: unknown) => v is T, expected: string, fallback?: T): T {
  const v = cfg[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw new PEFTFormatError(file, key, `missing (expected ${expected})`);
  if (!check(v)) throw new PEFTFormatError(file, key, `expected ${expected}, got ${JSON.stringify(v)}`);
  return v;
}
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isTargets = (v: unknown): v is string[] | string => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
const isEmptyPattern = (v: unknown): v is Record<string, never> => v === null || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);

function jsonObject(json: string | Record<string, unknown>, file: string): Record<string, unknown> {
  let cfg: unknown = json;
  if (typeof json === 'string') {
    try {
      cfg = JSON.parse(json);
    } catch (error) {
      throw new PEFTFormatError(file, '(json)', `not valid JSON: ${(error as Error).message}`);
    }
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new PEFTFormatError(file, '(json)', 'expected a JSON object');
  return cfg as Record<string, unknown>;
}

/**
 * Parses adapter_config.json (text or object) and the weights into per-module adapter states;
 * `sidecar` is sparse_adapter_config.json when the folder has one (SQFT).
 */
export function fromPEFTFiles(
  configJSON: string | Record<string, unknown>,
  weights: PEFTTensorSource,
  files: PEFTFileNames = {},
  sidecar?: string | Record<string, unknown>,
): PEFTAdapter {
  const cfile = files.config ?? PEFT_CONFIG_FILE;
  const wfile = files.weights ?? PEFT_WEIGHTS_FILE;
  const sfile = files.sidecar ?? PEFT_SIDECAR_FILE;
  const c = jsonObject(configJSON, cfile);
  const side = sidecar === undefined ? {} : jsonObject(sidecar, sfile);
  const peftType = field(c, 'peft_type', cfile, (v): v is string => typeof v === 'string', 'a string');
  const bias = field(c, 'bias', cfile, (v): v is string => typeof v === 'string', '"none"', 'none');
  if (bias !== 'none') throw new PEFTFormatError(cfile, 'bias', `only "none" is supported, got ${JSON.stringify(bias)}`);
  const common = {
    baseModelNameOrPath: (typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : null) as string | null,
    taskType: (typeof c.task_type === 'string' ? c.task_type : null) as string | null,
    targetModules: field(c, 'target_modules', cfile, isTargets, 'a string or a list of strings', [] as string[]),
  };
  if (peftType !== 'LORA' && peftType !== 'SPP') {
    const fail = (file: 'config' | 'weights', f: string, reason: string) => new PEFTFormatError(file === 'config' ? cfile : wfile, f, reason);
    return { ...fromVariantPEFTFiles(c, peftType, weights, fail), fanInFanOut: false, ...common };
  }
  if (peftType === 'SPP' && c.sparse_variant !== undefined && c.sparse_variant !== 'spp') {
    throw new PEFTFormatError(cfile, 'sparse_variant', `peft_type "SPP" is written by spp, not ${JSON.stringify(c.sparse_variant)}`);
  }
  const byModule = new Map<string, Map<string, Tensor>>();
  for (const name of weights.tensorNames) {
    const m = /^base_model\.model\.(.+)\.(lora_A|lora_B|spp_row|spp_col)\.weight$/.exec(name);
    if (m === null) throw new PEFTFormatError(wfile, name, `not an adapter tensor name (expected ${PREFIX}<module>.lora_A.weight / lora_B.weight${peftType === 'SPP' ? ' / spp_row.weight / spp_col.weight' : ''})`);
    if (!byModule.has(m[1]!)) byModule.set(m[1]!, new Map());
    byModule.get(m[1]!)!.set(m[2]!, weights.tensor(name));
  }
  if (byModule.size === 0) throw new PEFTFormatError(wfile, '(tensors)', 'holds no adapter tensors');
  const float32 = (t: Tensor, name: string): Float32Tensor => {
    if (t.dtype !== 'float32') throw new PEFTFormatError(wfile, name, `expected F32, got ${t.dtype}`);
    return tensor(Float32Array.from(t.data as Float32Array), t.shape);
  };
  const modules: Record<string, AdapterState> = {};

  if (peftType === 'LORA') {
    const r = field(c, 'r', cfile, (v): v is number => Number.isInteger(v) && (v as number) > 0, 'a positive integer');
    const alpha = field(c, 'lora_alpha', cfile, isNum, 'a number', 8);
    const dropout = field(c, 'lora_dropout', cfile, (v): v is number => isNum(v) && v >= 0 && v < 1, 'a number in [0, 1)', 0);
    const rslora = field(c, 'use_rslora', cfile, isBool, 'a boolean', false);
    const fanInFanOut = field(c, 'fan_in_fan_out', cfile, isBool, 'a boolean', false);
    if (c.use_dora === true) throw new PEFTFormatError(cfile, 'use_dora', 'DoRA adapters are not supported');
    for (const key of ['rank_pattern', 'alpha_pattern']) {
      if (c[key] !== undefined && !isEmptyPattern(c[key])) throw new PEFTFormatError(cfile, key, 'per-module ranks or alphas are not supported (must be empty)');
    }
    const config: LoRAConfig = loraConfigSchema.parse({ r, alpha, rslora, dropout });
    // the sidecar's keys; folders written before the sidecar existed kept sqft_sparse_merge in the config
    if (side.sparse_variant !== undefined && side.sparse_variant !== 'sqft' && side.sparse_variant !== 'lora') {
      throw new PEFTFormatError(sfile, 'sparse_variant', `a LORA adapter is read as "lora" or "sqft", got ${JSON.stringify(side.sparse_variant)}`);
    }
    if (side.sqft_sparse_merge !== undefined && !isBool(side.sqft_sparse_merge)) throw new PEFTFormatError(sfile, 'sqft_sparse_merge', `expected a boolean, got ${JSON.stringify(side.sqft_sparse_merge)}`);
    const variant = side.sparse_variant === 'sqft' || side.sqft_sparse_merge === true || c.sqft_sparse_merge === true ? 'sqft' : 'lora';
    for (const [module, parts] of byModule) {
      const a = parts.get('lora_A');
      const b = parts.get('lora_B');
      const nameA = `${PREFIX}${module}.lora_A.weight`;
      const nameB = `${PREFIX}${module}.lora_B.weight`;
      if (parts.has('spp_row') || parts.has('spp_col')) throw new PEFTFormatError(wfile, `${PREFIX}${module}`, 'SPP tensors in a LORA adapter');
      if (a === undefined) throw new PEFTFormatError(wfile, nameA, `missing (${nameB} is present)`);
      if (b === undefined) throw new PEFTFormatError(wfile, nameB, `missing (${nameA} is present)`);
      if (a.shape.length !== 2 || a.shape[0] !== r) throw new PEFTFormatError(wfile, nameA, `shape [${a.shape.join(', ')}] should be [r = ${r}, in]`);
      if (b.shape.length !== 2 || b.shape[1] !== r) throw new PEFTFormatError(wfile, nameB, `shape [${b.shape.join(', ')}] should be [out, r = ${r}]`);
      modules[module] = { variant, shape: [b.shape[0]!, a.shape[1]!], config, params: { lora_A: float32(a, nameA), lora_B: float32(b, nameB) } };
    }
    return { variant, config, modules, fanInFanOut, ...common };
  }
  // peftType is 'SPP' here.
  const colInit = field(c, 'spp_col_init', cfile, isNum, 'a number', 1);
  const rank = field(c, 'spp_rank', cfile, (x): x is number => Number.isInteger(x) && (x as number) >= 1, 'a positive integer', 1);
  const config: SPPConfig = sppConfigSchema.parse({ colInit, rank });
  for (const [module, parts] of byModule) {
    const nameU = `${PREFIX}${module}.spp_row.weight`;
    const nameV = `${PREFIX}${module}.spp_col.weight`;
    const u = parts.get('spp_row');
    const v = parts.get('spp_col');
    if (parts.has('lora_A') || parts.has('lora_B')) throw new PEFTFormatError(wfile, `${PREFIX}${module}`, 'LoRA tensors in an SPP adapter');
    if (u === undefined || v === undefined) throw new PEFTFormatError(wfile, u === undefined ? nameU : nameV, 'missing');
    if (u.shape.length !== 1) throw new PEFTFormatError(wfile, nameU, `shape [${u.shape.join(', ')}] should be [out]`);
    if (rank === 1 ? v.shape.length !== 1 : v.shape.length !== 2 || v.shape[0] !== rank) throw new PEFTFormatError(wfile, nameV, `shape [${v.shape.join(', ')}] should be ${rank === 1 ? '[in]' : `[spp_rank = ${rank}, in]`}`);
    if (u.shape[0]! % rank !== 0) throw new PEFTFormatError(wfile, nameU, `${u.shape[0]} rows do not split into spp_rank = ${rank} equal groups`);
    modules[module] = { variant: 'spp', shape: [u.shape[0]!, v.shape[v.shape.length - 1]!], config, params: { spp_row: float32(u, nameU), spp_col: float32(v, nameV) } };
  }
  return { variant: 'spp', config, modules, fanInFanOut: false, ...common };
}
