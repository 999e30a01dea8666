// The sparse layouts of the compressed-tensors library (the format vLLM and llm-compressor read),
// written and read as the library's compressors do (sparse_compressors/sparse_24_bitmask.py and
// sparse_bitmask.py, utils/helpers.py, config/base.py, model_compressor.py update_config):
//
//   sparse-24-bitmask (Sparse24BitMaskCompressor), for weights with at most 2 non-zeros in every 4:
//     <prefix>.shape       I64 [2, 1]                 the dense shape, torch.tensor(shape).reshape(-1, 1)
//     <prefix>.compressed  F16/BF16 [rows, cols / 2]  the 2 kept values of each group of 4, in order
//     <prefix>.bitmask     U8 [rows, ceil(cols / 8)]  the kept positions
//   sparse-bitmask (BitmaskCompressor), any sparsity:
//     <prefix>.shape       I64 [2]                    torch.tensor(shape), not reshaped
//     <prefix>.compressed  F16/BF16 [nnz]             the non-zeros (tensor != 0), row-major
//     <prefix>.bitmask     U8 [rows, ceil(cols / 8)]  tensor != 0
//     <prefix>.row_offsets I64 [rows]                 cumsum(row_counts) - row_counts
//
// <prefix> is the weight's name without ".weight". Bitmasks are numpy.packbits(mask, axis=-1,
// bitorder="little"): each row padded to whole bytes, column 8j+k in bit k (LSB first) of byte j.
// Every other tensor is stored as is. The 2:4 compressor keeps the top 2 of each group of 4 by
// magnitude (torch.topk), so a group with fewer than 2 non-zeros also keeps zeros; torch leaves the
// choice among equal magnitudes open, and this writer keeps the lowest-index zeros. Readers take
// any bitmask whose count matches, as the library's decompressors do.
//
// The safetensors file is laid out as Python's save_file lays it out (tensors by dtype: I64, F32,
// BF16, F16, U8; then by name) with __metadata__ {"format": "pt"} (what transformers' save_pretrained
// writes; its loader refuses other formats), plus our model spec under "spec". config.json holds
// quantization_config as update_config writes it: json.dump(indent=2, sort_keys=True) of
// {version, quant_method: "compressed-tensors", sparsity_config: {format, targets, ignore,
// global_sparsity, sparsity_structure}, transform_config: {}}.

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ArgumentError, cast, serializeSafetensors, tensor, type SafetensorsInput, type Tensor } from '@sparse/tensor';
import { atomicWriteFile, openSafetensors, writeSafetensorsFile } from '@sparse/tensor/node';
import type { BaseModel } from './base.js';
import { CheckpointError } from './errors.js';
import { createModel, paramShapes } from './index.js';
import type { LanguageModel, ModelSpec } from './types.js';

/** The compressed-tensors formats written here (CompressionFormat values). */
export const COMPRESSED_TENSORS_FORMATS = ['sparse-24-bitmask', 'sparse-bitmask'] as const;
export type CompressedTensorsFormat = (typeof COMPRESSED_TENSORS_FORMATS)[number];
export type CompressedTensorsDType = 'float16' | 'bfloat16';
/** The library release whose code this layout follows; written as quantization_config.version. */
export const COMPRESSED_TENSORS_VERSION = '0.12.2';
/** quantization_config.quant_method of compressed-tensors checkpoints. */
export const COMPRESSED_TENSORS_METHOD = 'compressed-tensors';

/** One parameter to write. `target`: compress it (a 2-D pruned weight whose name ends in ".weight"). */
export interface CompressedTensorsParam {
  name: string;
  shape: readonly number[];
  values: Float32Array;
  target: boolean;
}

export interface CompressedTensorsOptions {
  format: CompressedTensorsFormat;
  /** The dtype of every stored float tensor, `.compressed` included. */
  dtype: CompressedTensorsDType;
  /** sparsity_config.sparsity_structure for sparse-bitmask (default "unstructured"; sparse-24-bitmask is always "2:4"). */
  sparsityStructure?: string;
  /** Our model spec (JSON), stored as __metadata__.spec so our loader can rebuild the model. */
  spec?: string;
}

/** sparsity_config as SparsityCompressionConfig.model_dump() gives it. */
export interface CompressedTensorsSparsityConfig {
  format: CompressedTensorsFormat;
  targets: string[];
  ignore: string[];
  global_sparsity: number;
  sparsity_structure: string;
}

const WEIGHT = '.weight';
const isZeroBits = (bits: number) => (bits & 0x7fff) === 0; // ±0 in both fp16 and bf16

function rounded(p: CompressedTensorsParam, dtype: CompressedTensorsDType): Tensor {
  return cast(tensor(p.values, [...p.shape]), dtype);
}

function checkTarget(p: CompressedTensorsParam): [number, number] {
  if (!p.name.endsWith(WEIGHT) || p.shape.length !== 2) {
    throw new ArgumentError(`compressed-tensors: ${p.name}: only 2-D parameters named *.weight can be compressed (shape [${p.shape.join(', ')}])`);
  }
  return [p.shape[0]!, p.shape[1]!];
}

/** True when every target, rounded to `dtype`, has at most 2 non-zeros in each group of 4 of a row (so sparse-24-bitmask applies). */
export function fitsSparse24(params: readonly CompressedTensorsParam[], dtype: CompressedTensorsDType): boolean {
  for (const p of params) {
    if (!p.target) continue;
    if (!p.name.endsWith(WEIGHT) || p.shape.length !== 2 || p.shape[1]! % 4 !== 0) return false;
    const bits = rounded(p, dtype).data as Uint16Array;
    for (let g = 0; g < bits.length; g += 4) {
      let nz = 0;
      for (let j = 0; j < 4; j++) if (!isZeroBits(bits[g + j]!)) nz++;
      if (nz > 2) return false;
    }
  }
  return true;
}

function i64(values: readonly number[], shape: number[]): SafetensorsInput {
  return { dtype: 'I64', shape, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

/** numpy.packbits(keep.reshape(rows, cols), axis=-1, bitorder="little"). */
function packRows(keep: Uint8Array, rows: number, cols: number): Uint8Array {
  const stride = Math.ceil(cols / 8);
  const out = new Uint8Array(rows * stride);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) if (keep[r * cols + c]) out[r * stride + (c >>> 3)]! |= 1 << (c & 7);
  }
  return out;
}

function compress24(p: CompressedTensorsParam, dtype: CompressedTensorsDType): Record<string, SafetensorsInput> {
  const [rows, cols] = checkTarget(p);
  if (cols % 4 !== 0) throw new ArgumentError(`compressed-tensors: ${p.name}: sparse-24-bitmask needs a column count divisible by 4, got ${cols}`);
  const bits = rounded(p, dtype).data as Uint16Array;
  const keep = new Uint8Array(bits.length);
  const values = new Uint16Array(bits.length / 2);
  let v = 0;
  for (let g = 0; g < bits.length; g += 4) {
    let nz = 0;
    for (let j = 0; j < 4; j++) if (!isZeroBits(bits[g + j]!)) nz++;
    if (nz > 2) throw new ArgumentError(`compressed-tensors: ${p.name}: group of 4 at flat index ${g} has ${nz} non-zeros; sparse-24-bitmask holds at most 2`);
    let zerosToKeep = 2 - nz;
    for (let j = 0; j < 4; j++) {
      const zero = isZeroBits(bits[g + j]!);
      if (!zero || zerosToKeep > 0) {
        if (zero) zerosToKeep--;
        keep[g + j] = 1;
        values[v++] = bits[g + j]!;
      }
    }
  }
  const prefix = p.name.slice(0, -WEIGHT.length);
  return {
    [`${prefix}.shape`]: i64([rows, cols], [2, 1]),
    [`${prefix}.compressed`]: tensor(values, [rows, cols / 2], { dtype }),
    [`${prefix}.bitmask`]: { dtype: 'U8', shape: [rows, Math.ceil(cols / 8)], data: packRows(keep, rows, cols) },
  };
}

function compressBitmask(p: CompressedTensorsParam, dtype: CompressedTensorsDType): Record<string, SafetensorsInput> {
  const [rows, cols] = checkTarget(p);
  const bits = rounded(p, dtype).data as Uint16Array;
  const keep = new Uint8Array(bits.length);
  const kept: number[] = [];
  const offsets: number[] = [];
  for (let r = 0; r < rows; r++) {
    offsets.push(kept.length);
    for (let c = 0; c < cols; c++) {
      const b = bits[r * cols + c]!;
      if (!isZeroBits(b)) {
        keep[r * cols + c] = 1;
        kept.push(b);
      }
    }
  }
  const prefix = p.name.slice(0, -WEIGHT.length);
  return {
    [`${prefix}.shape`]: i64([rows, cols], [2]),
    [`${prefix}.compressed`]: tensor(Uint16Array.from(kept), [kept.length], { dtype }),
    [`${prefix}.bitmask`]: { dtype: 'U8', shape: [rows, Math.ceil(cols / 8)], data: packRows(keep, rows, cols) },
    [`${prefix}.row_offsets`]: i64(offsets, [rows]),
  };
}

/** The safetensors entries, metadata and sparsity_config of a model in a compressed-tensors format. */
export function compressedTensorsEntries(
  params: readonly CompressedTensorsParam[],
  opts: CompressedTensorsOptions,
): { entries: Record<string, SafetensorsInput>; metadata: Record<string, string>; sparsityConfig: CompressedTensorsSparsityConfig } {
  const entries: Record<string, SafetensorsInput> = {};
  const targets: string[] = [];
  let zeros = 0;
  let total = 0;
  for (const p of params) {
    const r = rounded(p, opts.dtype);
    const bits = r.data as Uint16Array;
    for (let i = 0; i < bits.length; i++) if (isZeroBits(bits[i]!)) zeros++;
    total += bits.length;
    if (!p.target) {
      entries[p.name] = r;
      continue;
    }
    const parts = opts.format === 'sparse-24-bitmask' ? compress24(p, opts.dtype) : compressBitmask(p, opts.dtype);
    for (const [k, v] of Object.entries(parts)) {
      if (k in entries) throw new ArgumentError(`compressed-tensors: ${k} is both a parameter and a part of ${p.name}`);
      entries[k] = v;
    }
    targets.push(p.name.slice(0, -WEIGHT.length));
  }
  const sparsityConfig: CompressedTensorsSparsityConfig = {
    format: opts.format,
    targets,
    ignore: [],
    global_sparsity: total === 0 ? 0 : zeros / total,
    sparsity_structure: opts.format === 'sparse-24-bitmask' ? '2:4' : (opts.sparsityStructure ?? 'unstructured'),
  };
  const metadata: Record<string, string> = { format: 'pt', ...(opts.spec !== undefined ? { spec: opts.spec } : {}) };
  return { entries, metadata, sparsityConfig };
}

/** Python's repr of a float (json.dump writes floats with it): "0.0", "0.5", "1e-05". */
export function pythonFloat(x: number): string {
  if (!Number.isFinite(x)) throw new ArgumentError(`pythonFloat: ${x} is not finite (json.dump would write NaN/Infinity)`);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e16) {
    const [m, e] = x.toExponential().split('e') as [string, string];
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '');
    return `${m}e${sign}${digits.padStart(2, '0')}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

// json.dumps(..., indent=2, sort_keys=True) with the default ensure_ascii=True
function pythonJSON(v: unknown, indent = ''): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return pythonFloat(v); // the only number here is global_sparsity, a Python float
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + pythonJSON(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v as object).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${pythonJSON(k)}: ${pythonJSON((v as Record<string, unknown>)[k], inner)}`).join(',\n')}\n${indent}}`;
}

/** config.json as the library's update_config writes it (json.dump, indent 2, keys sorted, no final newline). */
export function compressedTensorsConfigJSON(sparsityConfig: CompressedTensorsSparsityConfig): string {
  return pythonJSON({
    quantization_config: { version: COMPRESSED_TENSORS_VERSION, quant_method: COMPRESSED_TENSORS_METHOD, sparsity_config: sparsityConfig, transform_config: {} },
  });
}

/** The two files of a compressed-tensors checkpoint, in memory. */
export function serializeCompressedTensors(
  params: readonly CompressedTensorsParam[],
  opts: CompressedTensorsOptions,
): { safetensors: Uint8Array; configJSON: string; sparsityConfig: CompressedTensorsSparsityConfig } {
  const { entries, metadata, sparsityConfig } = compressedTensorsEntries(params, opts);
  return { safetensors: serializeSafetensors(entries, metadata, { order: 'alignment' }), configJSON: compressedTensorsConfigJSON(sparsityConfig), sparsityConfig };
}

/** Writes `dir`/model.safetensors and `dir`/config.json, each atomically. Returns their paths and sizes. */
export async function writeCompressedTensors(
  dir: string,
  params: readonly CompressedTensorsParam[],
  opts: CompressedTensorsOptions,
): Promise<{ modelPath: string; configPath: string; modelBytes: number; configBytes: number; sparsityConfig: CompressedTensorsSparsityConfig }> {
  mkdirSync(dir, { recursive: true });
  const { entries, metadata, sparsityConfig } = compressedTensorsEntries(params, opts);
  const modelPath = join(dir, 'model.safetensors');
  const configPath = join(dir, 'config.json');
  const modelBytes = await writeSafetensorsFile(modelPath, entries, metadata, { order: 'alignment' });
  const configJSON = compressedTensorsConfigJSON(sparsityConfig);
  const configBytes = await atomicWriteFile(configPath, new TextEncoder().encode(configJSON));
  return { modelPath, configPath, modelBytes, configBytes, sparsityConfig };
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The sparsity format named by the config.json beside `path` (a file or its directory), when it is a compressed-tensors checkpoint of one of ours. */
export function compressedTensorsFormatAt(path: string): CompressedTensorsFormat | undefined {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) return undefined;
  let cfg: unknown;
  try {
    cfg = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch {
    return undefined; // not ours to judge; the caller reports a bad config.json if it needs one
  }
  const q = (cfg as { quantization_config?: { quant_method?: unknown; sparsity_config?: { format?: unknown } | null } } | null)?.quantization_config;
  if (q?.quant_method !== COMPRESSED_TENSORS_METHOD) return undefined;
  const format = q.sparsity_config?.format;
  if (format === undefined || format === null || format === 'dense') return undefined;
  if (!(COMPRESSED_TENSORS_FORMATS as readonly unknown[]).includes(format)) {
    throw new CheckpointError(configPath, `compressed-tensors sparsity format ${JSON.stringify(format)} is not supported (${COMPRESSED_TENSORS_FORMATS.join(', ')})`);
  }
  return format as CompressedTensorsFormat;
}

const PARTS = ['shape', 'compressed', 'bitmask', 'row_offsets'] as const;

/**
 * Reads a compressed-tensors safetensors file and decompresses every `<prefix>.compressed` group into
 * a dense `<prefix>.weight` (in the dtype of `.compressed`); other tensors pass through.
 */
export async function readCompressedTensors(file: string, format: CompressedTensorsFormat): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const r = await openSafetensors(file, { wideInts: 'float64' });
  try {
    const names = new Set(r.tensorNames);
    const prefixes = [...names].filter((n) => n.endsWith('.compressed')).map((n) => n.slice(0, -'.compressed'.length));
    const parts = new Set<string>();
    const tensors = new Map<string, Tensor>();
    for (const prefix of prefixes) {
      const need = format === 'sparse-24-bitmask' ? PARTS.slice(0, 3) : PARTS;
      for (const p of need) {
        if (!names.has(`${prefix}.${p}`)) throw new CheckpointError(file, `${prefix}.compressed has no ${prefix}.${p} (${format})`, { tensor: `${prefix}.${p}` });
        parts.add(`${prefix}.${p}`);
      }
      const weight = `${prefix}${WEIGHT}`;
      if (names.has(weight)) throw new CheckpointError(file, `${weight} is stored both dense and compressed`, { tensor: weight });
      const shapeT = await r.readTensor(`${prefix}.shape`);
      const shape = Array.from(shapeT.data as Float64Array);
      if (shape.length !== 2) throw new CheckpointError(file, `${prefix}.shape holds [${shape.join(', ')}]; only 2-D weights are supported`, { tensor: `${prefix}.shape` });
      const [rows, cols] = shape as [number, number];
      const values = await r.readTensor(`${prefix}.compressed`);
      if (values.dtype !== 'float16' && values.dtype !== 'bfloat16' && values.dtype !== 'float32') {
        throw new CheckpointError(file, `${prefix}.compressed has dtype ${values.dtype}; expected F16, BF16 or F32`, { tensor: `${prefix}.compressed` });
      }
      const bitmask = await r.readTensor(`${prefix}.bitmask`);
      const stride = Math.ceil(cols / 8);
      if (bitmask.dtype !== 'uint8' || bitmask.shape.length !== 2 || bitmask.shape[0] !== rows || bitmask.shape[1] !== stride) {
        throw new CheckpointError(file, `${prefix}.bitmask must be U8 [${rows}, ${stride}] for shape [${rows}, ${cols}], got ${bitmask.dtype} [${bitmask.shape.join(', ')}]`, { tensor: `${prefix}.bitmask` });
      }
      const bits = bitmask.data as Uint8Array;
      const counts: number[] = [];
      for (let row = 0; row < rows; row++) {
        let n = 0;
        for (let c = 0; c < cols; c++) n += (bits[row * stride + (c >>> 3)]! >>> (c & 7)) & 1;
        counts.push(n);
      }
      const nnz = counts.reduce((a, b) => a + b, 0);
      const size = values.shape.reduce((a, b) => a * b, 1);
      if (size !== nnz) throw new CheckpointError(file, `${prefix}.bitmask marks ${nnz} elements but ${prefix}.compressed holds ${size}`, { tensor: `${prefix}.compressed` });
      if (format === 'sparse-24-bitmask' && (values.shape.length !== 2 || values.shape[0] !== rows || values.shape[1]! * 2 !== cols)) {
        throw new CheckpointError(file, `${prefix}.compressed must be [${rows}, ${cols / 2}] (sparse-24-bitmask), got [${values.shape.join(', ')}]`, { tensor: `${prefix}.compressed` });
      }
      if (format === 'sparse-bitmask') {
        const offsets = Array.from((await r.readTensor(`${prefix}.row_offsets`)).data as Float64Array);
        let at = 0;
        for (let row = 0; row < rows; row++) {
          if (offsets[row] !== at) throw new CheckpointError(file, `${prefix}.row_offsets[${row}] is ${offsets[row]}, but the bitmask's rows before it hold ${at}`, { tensor: `${prefix}.row_offsets` });
          at += counts[row]!;
        }
        if (offsets.length !== rows) throw new CheckpointError(file, `${prefix}.row_offsets has ${offsets.length} entries for ${rows} rows`, { tensor: `${prefix}.row_offsets` });
      }
      const src = values.data as Uint16Array | Float32Array;
      const dense = new (src.constructor as Uint16ArrayConstructor | Float32ArrayConstructor)(rows * cols);
      let v = 0;
      for (let row = 0; row < rows; row++) {
        for (let c = 0; c < cols; c++) if ((bits[row * stride + (c >>> 3)]! >>> (c & 7)) & 1) dense[row * cols + c] = src[v++]!;
      }
      tensors.set(weight, tensor(dense, [rows, cols], { dtype: values.dtype }));
    }
    for (const n of r.tensorNames) if (!parts.has(n)) tensors.set(n, await r.readTensor(n));
    return { tensors, metadata: { ...r.metadata } };
  } finally {
    await r.close();
  }
}

/**
 * Reads a compressed-tensors checkpoint written by our export (`path`: its directory or its
 * model.safetensors, config.json beside it) back into a model, from the spec in __metadata__.spec.
 */
export async function loadCompressedTensorsModel(path: string): Promise<LanguageModel & BaseModel> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'model.safetensors') : path;
  const format = compressedTensorsFormatAt(path);
  if (format === undefined) throw new CheckpointError(path, 'no config.json with a compressed-tensors sparsity_config beside it');
  const { tensors, metadata } = await readCompressedTensors(file, format);
  if (metadata.spec === undefined) throw new CheckpointError(file, '__metadata__ has no spec; only compressed-tensors files written by our export can be rebuilt into a model');
  let spec: ModelSpec;
  try {
    spec = JSON.parse(metadata.spec) as ModelSpec;
  } catch (cause) {
    throw new CheckpointError(file, `__metadata__.spec is not JSON (${(cause as Error).message})`, { cause });
  }
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(spec)) {
    const t = tensors.get(name);
    if (!t) throw new CheckpointError(file, `missing tensor ${name}`, { tensor: name });
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new CheckpointError(file, `tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`, { tensor: name });
    }
    values.set(name, cast(t, 'float32').data as Float32Array);
  }
  return createModel(spec, { values });
}
