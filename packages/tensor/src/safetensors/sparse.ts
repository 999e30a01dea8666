// Sparse layouts stored in safetensors as named dense parts plus one metadata entry, so a pruned
// checkpoint stays a valid safetensors file that any reader (Python included) can open.
//
// A layout called `w` becomes:
//   metadata  "sparse.w" = {"format":..,"shape":[..],"dtype":..[,"blockShape":[br,bc]][,"n":..,"m":..,"indexBits":..]}
//   bitmask   w.bits (U8, packed mask bytes)         w.values (layout dtype, [nnz])
//   csr       w.indptr (I32, [rows+1])  w.indices (I32, [nnz])  w.values ([nnz])
//   bsr       w.indptr (I32, [blockRows+1])  w.indices (I32, [nnzb])  w.values ([nnzb, br, bc])
//   nm        w.values ([rows, cols/m*n])  w.indices (U8, packed group positions)
//             metadata {"format":"nm","n":..,"m":..}: shape, dtype and indexBits follow from
//             w.values (rows, cols/m*n; its dtype) and m (ceil(log2 m)); a reader also accepts
//             them written out, as files before this form carry them
//   coo       w.deltas (U32, [nnz])  w.values ([nnz])
// COO deltas are stored as U32, their true type: numpy and torch (>= 2.3) read U32, and storing
// them as I32 bits would show large gaps as negative numbers to every other reader.

import { DType, isDType } from '../dtype.js';
import { LayoutError, SafetensorsError } from '../errors.js';
import { validateLayout } from '../layouts/generic.js';
import { indexBitsFor } from '../layouts/packed.js';
import { MAX_TENSOR_ELEMENTS } from '../limits.js';
import type { SparseFormat, SparseLayout } from '../layouts/types.js';
import { dtypeToSafetensors, SafetensorsArray, SafetensorsDType, safetensorsToDType } from './codec.js';

/** A tensor given as its safetensors code, shape and a row-major array (natural array of the code, or LE bytes). */
export interface SafetensorsRawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

/** What `tensorsToSparse` needs from an opened file. `parseSafetensors` results satisfy it. */
export interface SafetensorsPartSource {
  /** Names the source in error messages. */
  readonly file: string;
  readonly metadata: Readonly<Record<string, string>>;
  has(name: string): boolean;
  raw(name: string): SafetensorsRawTensor;
}

/** The metadata entry describing one sparse layout (everything but its arrays). */
export interface SparseSpec {
  format: SparseFormat;
  shape: number[];
  dtype: DType;
  blockShape?: [number, number];
  n?: number;
  m?: number;
  indexBits?: number;
}

export const SAFETENSORS_SPARSE_PREFIX = 'sparse.';

const FORMATS: readonly SparseFormat[] = ['bitmask', 'csr', 'bsr', 'nm', 'coo'];

/** Part suffixes per format, in the order they are written. */
const PARTS: Record<SparseFormat, readonly string[]> = {
  bitmask: ['bits', 'values'],
  csr: ['indptr', 'indices', 'values'],
  bsr: ['indptr', 'indices', 'values'],
  nm: ['indices', 'values'],
  coo: ['deltas', 'values'],
};

function isSparseFormat(value: unknown): value is SparseFormat {
  return typeof value === 'string' && (FORMATS as readonly string[]).includes(value);
}

/** Names of the tensors a layout called `name` is stored as. */
export function sparsePartNames(name: string, format: SparseFormat): string[] {
  return PARTS[format].map((p) => `${name}.${p}`);
}

function partCode(spec: SparseSpec, part: string): SafetensorsDType {
  if (part === 'values') return dtypeToSafetensors(spec.dtype);
  if (part === 'bits') return 'U8';
  if (part === 'deltas') return 'U32';
  if (part === 'indices') return spec.format === 'nm' ? 'U8' : 'I32';
  return 'I32'; // indptr
}

function partArray(layout: SparseLayout, part: string): SafetensorsArray {
  return (layout as unknown as Record<string, SafetensorsArray>)[part]!;
}

/** The stored shape of a part (1-D except N:M values and BSR blocks). */
function partShape(layout: SparseLayout, part: string): number[] {
  const len = partArray(layout, part).length;
  if (part === 'values' && layout.format === 'nm') return [layout.shape[0], (layout.shape[1] / layout.m) * layout.n];
  if (part === 'values' && layout.format === 'bsr') {
    const [br, bc] = layout.blockShape;
    return [len / (br * bc), br, bc];
  }
  return [len];
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function specOf(layout: SparseLayout): SparseSpec {
  const spec: SparseSpec = { format: layout.format, shape: [...layout.shape], dtype: layout.dtype };
  if (layout.format === 'bsr') spec.blockShape = [layout.blockShape[0], layout.blockShape[1]];
  if (layout.format === 'nm') {
    spec.n = layout.n;
    spec.m = layout.m;
    spec.indexBits = layout.indexBits;
  }
  return spec;
}

/**
 * Checks a spec's metadata fields: enough to size and shape its parts safely. The finer rules
 * (n < m, exact indexBits, sorted indices...) are the layout validator's, applied once assembled.
 */
function specProblem(spec: Record<string, unknown>): string | undefined {
  if (!isSparseFormat(spec.format)) return `format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(spec.format)}`;
  const shape = spec.shape;
  if (!Array.isArray(shape) || !shape.every(isCount)) return `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`;
  if (!Number.isSafeInteger(numel(shape))) return `shape [${shape.join(', ')}] has too many elements`;
  if (numel(shape) > MAX_TENSOR_ELEMENTS) {
    return `shape [${shape.join(', ')}] claims ${numel(shape)} elements, above the limit of ${MAX_TENSOR_ELEMENTS} (2^31 - 1) elements per tensor`;
  }
  if (!isDType(spec.dtype)) return `dtype must be one of our dtypes, got ${JSON.stringify(spec.dtype)}`;
  const f = spec.format;
  if ((f === 'csr' || f === 'bsr' || f === 'nm') && shape.length !== 2) return `${f} needs a 2-D shape, got [${shape.join(', ')}]`;
  if (f === 'bsr') {
    const b = spec.blockShape;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => isCount(x) && x >= 1)) {
      return `blockShape must be two positive integers, got ${JSON.stringify(b)}`;
    }
  }
  if (f === 'nm') {
    const { n, m, indexBits } = spec;
    if (!isCount(m) || m < 1) return `m must be a positive integer, got ${JSON.stringify(m)}`;
    if (!isCount(n) || n < 1 || n > m) return `n must be an integer in [1, m=${m}], got ${JSON.stringify(n)}`;
    if (!isCount(indexBits) || indexBits < 1 || indexBits > 24 || 2 ** indexBits < m) {
      return `indexBits must be an integer in [1, 24] with 2^indexBits >= m=${m}, got ${JSON.stringify(indexBits)}`;
    }
    if (shape[1] % m !== 0) return `columns ${shape[1]} are not a multiple of m=${m}`;
  }
  return undefined;
}

/**
 * The first inconsistency in a layout, or undefined: the layout module's own validator (lengths,
 * pointer order, index ranges, sorted indices, zero padding), so files obey exactly the rules
 * the in-memory layouts do and a layout that passes can be walked without bounds checks.
 */
function layoutProblem(layout: SparseLayout): string | undefined {
  try {
    validateLayout(layout);
    return undefined;
  } catch (e) {
    if (e instanceof LayoutError) return e.message;
    throw e;
  }
}

/**
 * The parts and metadata entry a layout is stored as (see the table at the top of this file).
 * Arrays are not copied. Throws LayoutError for an inconsistent layout.
 */
export function sparseToTensors(
  name: string,
  layout: SparseLayout,
): { tensors: Record<string, SafetensorsRawTensor>; metadata: Record<string, string> } {
  const problem = layoutProblem(layout);
  if (problem) throw new LayoutError(`sparse layout ${JSON.stringify(name)}: ${problem}`);
  const spec = specOf(layout);
  const tensors: Record<string, SafetensorsRawTensor> = Object.create(null);
  for (const part of PARTS[layout.format]) {
    tensors[`${name}.${part}`] = { dtype: partCode(spec, part), shape: partShape(layout, part), data: partArray(layout, part) };
  }
  // Fixed key order so the same layout always serializes to the same bytes. N:M writes only what its
  // values part does not say (see the table above): the entry repeats for every pruned weight, and
  // with it the file stays smaller than the compressed-tensors 2:4 layout of the same weights.
  const meta: Record<string, unknown> =
    spec.format === 'nm' ? { format: 'nm', n: spec.n, m: spec.m } : { format: spec.format, shape: spec.shape, dtype: spec.dtype };
  if (spec.blockShape) meta.blockShape = spec.blockShape;
  return { tensors, metadata: { [SAFETENSORS_SPARSE_PREFIX + name]: JSON.stringify(meta) } };
}

/** A part's header entry, by part name (undefined when the file has no such tensor). */
export type SparsePartLookup = (part: string) => { dtype: SafetensorsDType; shape: readonly number[] } | undefined;

/**
 * Fills the fields the compact N:M entry leaves out from its values part: shape [rows, k / n * m]
 * for values of shape [rows, k], the values' dtype, and indexBits = ceil(log2 m). Fields the entry
 * does give are kept, and the checks that follow compare them with the parts.
 */
function completeNMSpec(v: Record<string, unknown>, name: string, lookup: SparsePartLookup): string | undefined {
  if (v.shape !== undefined && v.dtype !== undefined && v.indexBits !== undefined) return undefined;
  const { n, m } = v;
  if (!isCount(m) || m < 1) return `m must be a positive integer, got ${JSON.stringify(m)}`;
  if (!isCount(n) || n < 1 || n > m) return `n must be an integer in [1, m=${m}], got ${JSON.stringify(n)}`;
  const partName = `${name}.values`;
  const values = lookup(partName);
  if (!values) return `sparse layout ${JSON.stringify(name)} (nm) is missing its part ${JSON.stringify(partName)}`;
  if (values.shape.length !== 2) return `sparse part ${JSON.stringify(partName)} has shape [${values.shape.join(', ')}], expected rank 2`;
  const [rows, kept] = values.shape as [number, number];
  if (kept % n !== 0) return `sparse part ${JSON.stringify(partName)} has ${kept} values per row, not a multiple of n=${n}`;
  v.shape ??= [rows, (kept / n) * m];
  v.dtype ??= safetensorsToDType(values.dtype);
  v.indexBits ??= indexBitsFor(m);
  return undefined;
}

/**
 * Parses and checks the `sparse.<name>` metadata value; `lookup` gives the header entries of its
 * parts (a compact N:M entry takes its shape and dtype from them). Throws SafetensorsError.
 */
export function parseSparseSpec(name: string, json: string, file: string, lookup: SparsePartLookup): SparseSpec {
  const where = `metadata ${JSON.stringify(SAFETENSORS_SPARSE_PREFIX + name)}`;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new SafetensorsError(file, `${where} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError(file, `${where} must be a JSON object, got ${json.slice(0, 80)}`);
  }
  const v = value as Record<string, unknown>;
  const problem = (v.format === 'nm' ? completeNMSpec(v, name, lookup) : undefined) ?? specProblem(v);
  if (problem) throw new SafetensorsError(file, `${where}: ${problem}`);
  const spec: SparseSpec = { format: v.format as SparseFormat, shape: [...(v.shape as number[])], dtype: v.dtype as DType };
  if (spec.format === 'bsr') spec.blockShape = [...(v.blockShape as [number, number])];
  if (spec.format === 'nm') {
    spec.n = v.n as number;
    spec.m = v.m as number;
    spec.indexBits = v.indexBits as number;
  }
  return spec;
}

/**
 * Checks what a header alone can tell about a layout's parts: each exists with the right dtype code
 * and a shape of the right rank. Returns the first problem or undefined.
 */
export function sparsePartsProblem(name: string, spec: SparseSpec, lookup: SparsePartLookup): string | undefined {
  for (const part of PARTS[spec.format]) {
    const partName = `${name}.${part}`;
    const e = lookup(partName);
    if (!e) return `sparse layout ${JSON.stringify(name)} (${spec.format}) is missing its part ${JSON.stringify(partName)}`;
    const want = partCode(spec, part);
    if (e.dtype !== want) return `sparse part ${JSON.stringify(partName)} has dtype ${e.dtype}, expected ${want}`;
    const rank = part === 'values' && spec.format === 'nm' ? 2 : part === 'values' && spec.format === 'bsr' ? 3 : 1;
    if (e.shape.length !== rank) return `sparse part ${JSON.stringify(partName)} has shape [${e.shape.join(', ')}], expected rank ${rank}`;
  }
  return undefined;
}

/**
 * Rebuilds the layout stored under `name` in a parsed file: reads `sparse.<name>` from the metadata,
 * decodes its parts and checks them fully (sparseLayoutProblem). Arrays may share memory with the
 * source. Throws SafetensorsError naming the file, the layout and the problem.
 */
export function tensorsToSparse(name: string, source: SafetensorsPartSource): SparseLayout {
  const key = SAFETENSORS_SPARSE_PREFIX + name;
  const json = Object.prototype.hasOwnProperty.call(source.metadata, key) ? source.metadata[key] : undefined;
  if (json === undefined) throw new SafetensorsError(source.file, `no sparse layout ${JSON.stringify(name)} (no metadata key ${JSON.stringify(key)})`);
  const parts = new Map<string, SafetensorsRawTensor>();
  const lookup = (partName: string) => {
    if (!source.has(partName)) return undefined;
    const raw = parts.get(partName) ?? source.raw(partName);
    parts.set(partName, raw);
    return raw;
  };
  const spec = parseSparseSpec(name, json, source.file, lookup);
  const problem = sparsePartsProblem(name, spec, lookup);
  if (problem) throw new SafetensorsError(source.file, problem);
  const get = (part: string) => parts.get(`${name}.${part}`)!.data;
  const base = { shape: [...spec.shape], dtype: spec.dtype };
  let layout: SparseLayout;
  switch (spec.format) {
    case 'bitmask':
      layout = { format: 'bitmask', ...base, bits: get('bits') as Uint8Array, values: get('values') } as SparseLayout;
      break;
    case 'csr':
      layout = { format: 'csr', ...base, indptr: get('indptr'), indices: get('indices'), values: get('values') } as SparseLayout;
      break;
    case 'bsr':
      layout = {
        format: 'bsr',
        ...base,
        blockShape: spec.blockShape!,
        indptr: get('indptr'),
        indices: get('indices'),
        values: get('values'),
      } as SparseLayout;
      break;
    case 'nm':
      layout = {
        format: 'nm',
        ...base,
        n: spec.n!,
        m: spec.m!,
        indexBits: spec.indexBits!,
        values: get('values'),
        indices: get('indices'),
      } as SparseLayout;
      break;
    case 'coo':
      layout = { format: 'coo', ...base, deltas: get('deltas'), values: get('values') } as SparseLayout;
      break;
  }
  const bad = layoutProblem(layout);
  if (bad) throw new SafetensorsError(source.file, `sparse layout ${JSON.stringify(name)} (${spec.format}): ${bad}`);
  // The stored part shapes must be the ones the writer would produce (e.g. N:M values [rows, cols/m*n]).
  for (const part of PARTS[spec.format]) {
    const stored = parts.get(`${name}.${part}`)!.shape;
    const want = partShape(layout, part);
    if (stored.length !== want.length || stored.some((d, i) => d !== want[i])) {
      throw new SafetensorsError(source.file, `sparse part "${name}.${part}" has shape [${stored.join(', ')}], expected [${want.join(', ')}]`);
    }
  }
  return layout;
}
