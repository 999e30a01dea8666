// The PEFT folder layout for the variants Python PEFT has no type for (everything but lora, sqft and spp).
// adapter_config.json keeps PEFT's common keys (base_model_name_or_path, task_type, target_modules, ...)
// and adds:
//   peft_type        the registry name upper-cased, '-' -> '_' ("LORA_XS", "ROSA"): not a PEFT type, so
//                    Python PEFT refuses the folder instead of misreading it; never one of PEFT's names;
//   sparse_variant   the registry name ("lora-xs"): which variant reads the folder back;
//   <config fields>  the state's parsed config, each under its snake_case key (decompositionRank ->
//                    decomposition_rank); tensor-valued init inputs (calibration data, gradients) are left out;
//   module_shapes    { <module>: [out, in] } (PEFT reads shapes off the base model; a state must carry them);
//   adapter_params   the float param names every module has;
//   adapter_indices  the integer selection names, or null when the state has no `indices` at all.
// Tensors: `base_model.model.<module>.<param>.weight` (F32) and `base_model.model.<module>.<name>.indices` (I32).
import { ArgumentError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { getVariant, variants } from './variants/registry.js';
import type { AdapterState } from './variants/types.js';

const PREFIX = 'base_model.model.';

/** PEFT's own peft_type values (peft.utils.PeftType); a variant of ours never writes one of these. */
export const PEFT_NATIVE_TYPES: readonly string[] = [
  'PROMPT_TUNING', 'MULTITASK_PROMPT_TUNING', 'P_TUNING', 'PREFIX_TUNING', 'LORA', 'ADALORA', 'BOFT',
  'ADAPTION_PROMPT', 'IA3', 'LOHA', 'LOKR', 'OFT', 'POLY', 'LN_TUNING', 'VERA', 'FOURIERFT', 'XLORA', 'HRA',
  'VBLORA', 'CPT', 'BONE', 'MISS', 'RANDLORA', 'TRAINABLE_TOKENS', 'SHIRA', 'C3A', 'ROAD', 'WAVEFT', 'DELORA',
  'OSF', 'GRALORA',
];

/** Keys of our adapter_config.json that are not config fields of the variant. */
const RESERVED = new Set([
  'peft_type', 'sparse_variant', 'base_model_name_or_path', 'task_type', 'inference_mode', 'target_modules',
  'modules_to_save', 'bias', 'revision', 'auto_mapping', 'module_shapes', 'adapter_params', 'adapter_indices',
]);

/** The peft_type written for a registry name: "lora-xs" -> "LORA_XS". */
export function peftTypeOf(variant: string): string {
  return variant.toUpperCase().replace(/-/g, '_');
}

const toSnake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const NAME = /^[A-Za-z0-9_]+$/;

function isTensorLike(v: unknown): boolean {
  return ArrayBuffer.isView(v) || (typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v);
}

/** A JSON value, or throws naming the path (NaN, functions, class instances, typed arrays inside). */
function checkJSON(v: unknown, path: string, where: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ArgumentError(`${where}: config.${path} = ${v} cannot be written to JSON`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, k) => checkJSON(x, `${path}[${k}]`, where));
    return;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && !isTensorLike(v)) {
    for (const [k, x] of Object.entries(v)) checkJSON(x, `${path}.${k}`, where);
    return;
  }
  throw new ArgumentError(`${where}: config.${path} (${typeof v === 'object' ? ((v as object).constructor?.name ?? 'object') : typeof v}) cannot be written to JSON`);
}

/**
 * The config as JSON keys: snake_case, undefined and tensor-valued top-level fields dropped (init-only
 * inputs such as calibration data or a gradient; delta and merge never read them).
 */
export function configToPEFTKeys(config: unknown, where: string): Record<string, unknown> {
  if (config === undefined || config === null) return {};
  if (typeof config !== 'object' || Array.isArray(config)) throw new ArgumentError(`${where}: the state's config must be an object, got ${JSON.stringify(config)}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined || isTensorLike(v)) continue;
    const key = toSnake(k);
    if (toCamel(key) !== k) throw new ArgumentError(`${where}: config field '${k}' has no reversible snake_case key (camelCase letters and digits only)`);
    if (RESERVED.has(key)) throw new ArgumentError(`${where}: config field '${k}' would overwrite the adapter_config.json key '${key}'`);
    checkJSON(v, k, where);
    out[key] = v;
  }
  return out;
}

function indicesOf(s: AdapterState): Record<string, unknown> | undefined {
  return (s as AdapterState & { indices?: Record<string, unknown> }).indices;
}

/** Config keys and tensors of a non-PEFT variant (all modules already share variant and config). */
export function toVariantPEFTFiles(
  modules: Record<string, AdapterState>,
  names: string[],
  common: Record<string, unknown>,
): { config: Record<string, unknown>; tensors: Record<string, Tensor> } {
  const first = modules[names[0]!]!;
  const where = `toPEFTFiles (${first.variant})`;
  const peftType = peftTypeOf(first.variant);
  if (PEFT_NATIVE_TYPES.includes(peftType)) throw new ArgumentError(`${where}: its peft_type would be "${peftType}", one of Python PEFT's own types, whose layout this is not`);
  getVariant(first.variant); // unregistered names throw here, with a suggestion
  const params = Object.keys(first.params).sort();
  const firstIdx = indicesOf(first);
  const idxNames = firstIdx === undefined ? null : Object.keys(firstIdx).sort();
  for (const n of [...params, ...(idxNames ?? [])]) {
    if (!NAME.test(n)) throw new ArgumentError(`${where}: tensor name '${n}' must be letters, digits and '_' (it becomes one segment of the key)`);
  }
  const tensors: Record<string, Tensor> = {};
  const shapes: Record<string, [number, number]> = {};
  for (const m of names) {
    const s = modules[m]!;
    if (!Array.isArray(s.shape) || s.shape.length !== 2 || !s.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new ArgumentError(`${where}: module '${m}' has shape ${JSON.stringify(s.shape)}, expected [out, in] of positive integers`);
    }
    shapes[m] = [s.shape[0], s.shape[1]];
    const got = Object.keys(s.params).sort();
    if (got.join(',') !== params.join(',')) throw new ArgumentError(`${where}: module '${m}' has params [${got.join(', ')}] but '${names[0]}' has [${params.join(', ')}]`);
    for (const p of params) {
      const t = s.params[p]!;
      if (t?.dtype !== 'float32') throw new ArgumentError(`${where}: ${m}.params.${p} must be a float32 tensor, got ${String(t?.dtype)}`);
      tensors[`${PREFIX}${m}.${p}.weight`] = t;
    }
    const idx = indicesOf(s);
    if ((idx === undefined) !== (idxNames === null)) throw new ArgumentError(`${where}: module '${m}' ${idx === undefined ? 'has no' : 'has'} indices but '${names[0]}' ${idxNames === null ? 'has none' : 'has'}`);
    if (idx !== undefined) {
      const gotIdx = Object.keys(idx).sort();
      if (gotIdx.join(',') !== idxNames!.join(',')) throw new ArgumentError(`${where}: module '${m}' has indices [${gotIdx.join(', ')}] but '${names[0]}' has [${idxNames!.join(', ')}]`);
      for (const k of gotIdx) {
        const a = idx[k];
        if (!(a instanceof Int32Array)) throw new ArgumentError(`${where}: ${m}.indices.${k} must be an Int32Array, got ${(a as object)?.constructor?.name ?? typeof a}`);
        tensors[`${PREFIX}${m}.${k}.indices`] = tensor(a, [a.length]);
      }
    }
  }
  const config = {
    ...common,
    peft_type: peftType,
    sparse_variant: first.variant,
    ...configToPEFTKeys(first.config, where),
    module_shapes: shapes,
    adapter_params: params,
    adapter_indices: idxNames,
  };
  return { config, tensors };
}

/** Builds the error the caller throws (PEFTFormatError lives in peft.ts). */
export type FormatErrorFactory = (file: 'config' | 'weights', field: string, reason: string) => Error;

export interface VariantPEFTRead {
  variant: string;
  config: unknown;
  modules: Record<string, AdapterState>;
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Reads a non-PEFT variant's folder (config object already parsed; peft_type not LORA/SPP). */
export function fromVariantPEFTFiles(
  c: Record<string, unknown>,
  peftType: string,
  weights: { readonly tensorNames: readonly string[]; tensor(name: string): Tensor },
  fail: FormatErrorFactory,
): VariantPEFTRead {
  const name = c.sparse_variant;
  if (name === undefined) throw fail('config', 'peft_type', `unsupported ${JSON.stringify(peftType)} (LORA, SPP, and the types of this package's other variants, which come with a sparse_variant key, are)`);
  if (typeof name !== 'string') throw fail('config', 'sparse_variant', `expected a variant name, got ${JSON.stringify(name)}`);
  if (!variants.has(name)) {
    const hint = variants.closest(name, 1)[0];
    throw fail('config', 'sparse_variant', `unknown variant ${JSON.stringify(name)}${hint === undefined ? '' : `; did you mean '${hint}'?`}`);
  }
  if (name === 'lora' || name === 'sqft' || name === 'spp') throw fail('config', 'sparse_variant', `${name} is written with peft_type ${name === 'spp' ? '"SPP"' : '"LORA"'}, not ${JSON.stringify(peftType)}`);
  if (peftType !== peftTypeOf(name)) throw fail('config', 'peft_type', `${JSON.stringify(peftType)} does not match sparse_variant ${JSON.stringify(name)} (expected ${JSON.stringify(peftTypeOf(name))})`);
  const variant = getVariant(name);

  // The variant's config: every non-reserved key, back to camelCase, through its schema.
  const raw: Record<string, unknown> = {};
  const keyOf = new Map<string, string>();
  for (const [k, v] of Object.entries(c)) {
    if (RESERVED.has(k)) continue;
    const camel = toCamel(k);
    if (toSnake(camel) !== k) throw fail('config', k, `not a snake_case config key of ${name}`);
    raw[camel] = v;
    keyOf.set(camel, k);
  }
  let config: unknown;
  const schema = variant.schema;
  if (schema !== undefined) {
    const r = schema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const unknownKey = issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys?.[0] : undefined;
      const top = unknownKey ?? (issue.path.length > 0 ? String(issue.path[0]) : undefined);
      const f = top === undefined ? '(config)' : (keyOf.get(top) ?? toSnake(top));
      throw fail('config', f, unknownKey !== undefined ? `not a config field of ${name}` : `invalid ${name} config: ${issue.message}`);
    }
  }
  try {
    config = variant.parseConfig(raw);
  } catch (error) {
    throw fail('config', '(config)', (error as Error).message);
  }

  const shapes = c.module_shapes;
  if (typeof shapes !== 'object' || shapes === null || Array.isArray(shapes)) throw fail('config', 'module_shapes', `expected { "<module>": [out, in] }, got ${JSON.stringify(shapes)}`);
  const params = c.adapter_params;
  if (!isStringList(params) || params.length === 0 || !params.every((p) => NAME.test(p))) throw fail('config', 'adapter_params', `expected a non-empty list of param names, got ${JSON.stringify(params)}`);
  const idxNames = c.adapter_indices;
  if (idxNames !== null && (!isStringList(idxNames) || !idxNames.every((p) => NAME.test(p)))) throw fail('config', 'adapter_indices', `expected a list of index names or null, got ${JSON.stringify(idxNames)}`);

  const modules: Record<string, AdapterState> = {};
  for (const [m, s] of Object.entries(shapes as Record<string, unknown>)) {
    if (!Array.isArray(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d > 0)) throw fail('config', `module_shapes.${m}`, `expected [out, in] of positive integers, got ${JSON.stringify(s)}`);
    modules[m] = { variant: name, shape: [s[0], s[1]], config, params: {}, ...(idxNames === null ? {} : { indices: {} }) };
  }
  if (Object.keys(modules).length === 0) throw fail('config', 'module_shapes', 'lists no modules');

  const known = new Set(params.map((p) => `${p}.weight`).concat((idxNames ?? []).map((p) => `${p}.indices`)));
  for (const t of weights.tensorNames) {
    const hit = /^base_model\.model\.(.+)\.([A-Za-z0-9_]+)\.(weight|indices)$/.exec(t);
    if (hit === null) throw fail('weights', t, `not an adapter tensor name (expected ${PREFIX}<module>.<param>.weight or .<name>.indices)`);
    const [, m, p, kind] = hit as unknown as [string, string, string, 'weight' | 'indices'];
    const state = modules[m];
    if (state === undefined) throw fail('weights', t, `module '${m}' is not in module_shapes`);
    if (!known.has(`${p}.${kind}`)) throw fail('weights', t, `${name} keeps no ${kind === 'weight' ? 'param' : 'indices'} '${p}' (adapter_${kind === 'weight' ? 'params' : 'indices'} lists ${JSON.stringify(kind === 'weight' ? params : idxNames)})`);
    const v = weights.tensor(t);
    if (kind === 'weight') {
      if (v.dtype !== 'float32') throw fail('weights', t, `expected F32, got ${v.dtype}`);
      state.params[p] = tensor(Float32Array.from(v.data as Float32Array), v.shape) as Float32Tensor;
    } else {
      if (v.dtype !== 'int32') throw fail('weights', t, `expected I32, got ${v.dtype}`);
      if (v.shape.length !== 1) throw fail('weights', t, `shape [${v.shape.join(', ')}] should be one-dimensional`);
      const a = Int32Array.from(v.data as Int32Array);
      const bad = a.findIndex((x) => x < 0);
      if (bad >= 0) throw fail('weights', t, `entry ${bad} is ${a[bad]}; selections are non-negative`);
      (state as AdapterState & { indices: Record<string, Int32Array> }).indices[p] = a;
    }
  }
  for (const [m, s] of Object.entries(modules)) {
    for (const p of params) if (s.params[p] === undefined) throw fail('weights', `${PREFIX}${m}.${p}.weight`, 'missing');
    const idx = indicesOf(s);
    for (const p of idxNames ?? []) if (idx?.[p] === undefined) throw fail('weights', `${PREFIX}${m}.${p}.indices`, 'missing');
  }
  return { variant: name, config, modules };
}
