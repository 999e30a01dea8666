// SFT deltas in one safetensors file: per weight `<name>.sft_indices` (I32 [nnz], row-major flat
// indices into [out, in]) and `<name>.sft_values` (F32 or F16 [nnz]); the metadata entry
// `sft_shapes` holds {name: [out, in]} as JSON and `format` is "sft". Any safetensors reader opens it.
import { decodeFloat16, encodeFloat16, SafetensorsError, type SafetensorsInput, type SafetensorsPartSource } from '@sparse/tensor';
import { validateSparseDelta, type SparseDelta } from './delta.js';

export const SFT_FORMAT = 'sft';
export const SFT_SHAPES_KEY = 'sft_shapes';

export interface SparseDeltaFileOptions {
  /** Value precision on disk. Default 'F32' (exact round trip); 'F16' halves the value bytes. */
  valueDtype?: 'F32' | 'F16';
  /** Extra string metadata (e.g. base model name); `format` and `sft_shapes` are reserved. */
  metadata?: Record<string, string>;
}

/** The tensors and metadata of an SFT delta file. */
export function sparseDeltasToSafetensors(deltas: Record<string, SparseDelta>, opts: SparseDeltaFileOptions = {}): { tensors: Record<string, SafetensorsInput>; metadata: Record<string, string> } {
  const dtype = opts.valueDtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new SafetensorsError('(sft delta)', `valueDtype must be 'F32' or 'F16', got ${String(dtype)}`);
  for (const k of [SFT_SHAPES_KEY, 'format']) if (opts.metadata && k in opts.metadata) throw new SafetensorsError('(sft delta)', `metadata key '${k}' is reserved`);
  const tensors: Record<string, SafetensorsInput> = {};
  const shapes: Record<string, [number, number]> = {};
  for (const [name, d] of Object.entries(deltas)) {
    validateSparseDelta(d, `sparseDeltasToSafetensors: '${name}'`);
    shapes[name] = [d.shape[0], d.shape[1]];
    const n = d.indices.length;
    tensors[`${name}.sft_indices`] = { dtype: 'I32', shape: [n], data: d.indices };
    tensors[`${name}.sft_values`] = dtype === 'F32' ? { dtype: 'F32', shape: [n], data: d.values } : { dtype: 'F16', shape: [n], data: encodeFloat16(d.values) };
  }
  return { tensors, metadata: { ...opts.metadata, format: SFT_FORMAT, [SFT_SHAPES_KEY]: JSON.stringify(shapes) } };
}

/** Reads the deltas back from an opened file (values widened to float32); malformed files throw SafetensorsError. */
export function sparseDeltasFromSafetensors(source: SafetensorsPartSource): Record<string, SparseDelta> {
  const file = source.file;
  const text = source.metadata[SFT_SHAPES_KEY];
  if (text === undefined) throw new SafetensorsError(file, `no '${SFT_SHAPES_KEY}' metadata: not an SFT delta file`);
  let shapes: unknown;
  try {
    shapes = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(file, `metadata '${SFT_SHAPES_KEY}' is not JSON: ${(error as Error).message}`);
  }
  if (shapes === null || typeof shapes !== 'object' || Array.isArray(shapes)) throw new SafetensorsError(file, `metadata '${SFT_SHAPES_KEY}' must be an object of [out, in] shapes`);
  const out: Record<string, SparseDelta> = {};
  for (const [name, shape] of Object.entries(shapes as Record<string, unknown>)) {
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new SafetensorsError(file, `${SFT_SHAPES_KEY}['${name}'] must be [out, in], got ${JSON.stringify(shape)}`);
    }
    for (const part of ['sft_indices', 'sft_values']) if (!source.has(`${name}.${part}`)) throw new SafetensorsError(file, `missing tensor '${name}.${part}'`);
    const idx = source.raw(`${name}.sft_indices`);
    const val = source.raw(`${name}.sft_values`);
    if (idx.dtype !== 'I32') throw new SafetensorsError(file, `'${name}.sft_indices' must be I32, got ${idx.dtype}`);
    if (val.dtype !== 'F32' && val.dtype !== 'F16') throw new SafetensorsError(file, `'${name}.sft_values' must be F32 or F16, got ${val.dtype}`);
    if (idx.shape.length !== 1 || val.shape.length !== 1 || idx.shape[0] !== val.shape[0]) {
      throw new SafetensorsError(file, `'${name}': indices [${idx.shape.join(', ')}] and values [${val.shape.join(', ')}] must be 1-D of the same length`);
    }
    const indices = Int32Array.from(idx.data as Int32Array);
    const values = val.dtype === 'F32' ? Float32Array.from(val.data as Float32Array) : decodeFloat16(val.data as Uint16Array);
    const delta: SparseDelta = { shape: [shape[0], shape[1]], indices, values };
    try {
      validateSparseDelta(delta, `'${name}'`);
    } catch (error) {
      throw new SafetensorsError(file, (error as Error).message);
    }
    out[name] = delta;
  }
  return out;
}
