// The Hugging Face safetensors format, read and written exactly. Pure: no Node built-ins.
//
//   [8 bytes]  N, u64 little-endian
//   [N bytes]  UTF-8 JSON header {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...},
//              padded with trailing spaces so the data starts 8-byte aligned
//   [rest]     the data buffer; offsets are relative to its start; elements little-endian, row-major
//
// Reading follows the HF reference validation: header at most 100 MB (configurable), no duplicate
// keys, every size consistent, and the tensors' byte ranges, sorted by offset, tiling the whole
// buffer with no gap, overlap or trailing bytes. The order of keys in the JSON is not significant
// (the reference parses into a hash map), so a header may list tensors in any order.
//
// Writing: tensors are laid out in order of name (Unicode code point order, as Python and Rust sort
// strings), not HF's "largest alignment first, then name". Readers handle both; a tensor that ends
// up misaligned for zero-copy is copied on read. `__metadata__` comes first, keys sorted likewise.
//
// Endianness: files are little-endian. On a big-endian host reading copies and byte-swaps, writing
// swaps into fresh chunks; zero-copy views exist only on little-endian hosts.

import type { DType, Storage } from '../dtype.js';
import { ArgumentError, SafetensorsError, SparseError } from '../errors.js';
import { isSparseLayout } from '../layouts/generic.js';
import { MAX_TENSOR_ELEMENTS } from '../limits.js';
import type { SparseLayout } from '../layouts/types.js';
import { contiguousStrides, Tensor, tensor as makeTensor } from '../tensor.js';
import {
  decodeSafetensorsArray,
  dtypeToSafetensors,
  encodeStrided,
  isSafetensorsDType,
  safetensorsArrayType,
  safetensorsBits,
  SafetensorsArray,
  SafetensorsDType,
  SafetensorsWideInts,
  StridedArray,
  toTensorStorage,
} from './codec.js';
import { isJSONObject, JSONObject, JSONSyntaxError, JSONValue, parseStrictJSON } from './json.js';
import {
  parseSparseSpec,
  SAFETENSORS_SPARSE_PREFIX,
  SafetensorsRawTensor,
  sparsePartNames,
  sparsePartsProblem,
  SparseSpec,
  sparseToTensors,
  tensorsToSparse,
} from './sparse.js';

/** The reference implementation's header cap. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
/** How in-memory sources are named in errors. */
export const SAFETENSORS_BUFFER_NAME = '<buffer>';
const METADATA_KEY = '__metadata__';

/** One tensor of a header. `begin`/`end` are byte offsets into the data buffer. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header's length in bytes (padding included). */
  headerLength: number;
  /** Where the data buffer starts in the file: 8 + N. */
  dataOffset: number;
  /** Length of the data buffer in bytes. */
  dataLength: number;
  /** Tensors in data order (sorted by offset). */
  tensors: SafetensorsEntry[];
  /** `__metadata__` (empty when absent). A null-prototype object. */
  metadata: Record<string, string>;
}

export interface SafetensorsHeaderOptions {
  /** Names the source in errors (default "<buffer>"; file readers pass the path). */
  file?: string;
  /** Largest header accepted, in bytes (default 100 MB, as the reference implementation). */
  maxHeaderBytes?: number;
}

export interface SafetensorsReadOptions extends SafetensorsHeaderOptions {
  /** Always copy tensor data instead of viewing the source bytes (default false: view when aligned). */
  copy?: boolean;
  /** What `tensor()` does with U32/I64/U64, which have no storage of ours (default 'error'). */
  wideInts?: SafetensorsWideInts;
}

const fileOf = (opts: SafetensorsHeaderOptions | undefined) => opts?.file ?? SAFETENSORS_BUFFER_NAME;

function maxHeaderOf(opts: SafetensorsHeaderOptions | undefined): number {
  const max = opts?.maxHeaderBytes ?? SAFETENSORS_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(max) || max < 2) throw new ArgumentError(`maxHeaderBytes must be an integer >= 2, got ${String(max)}`);
  return max;
}

/**
 * Reads N from the 8-byte prefix and checks it against the cap and the total source length.
 * Throws SafetensorsError for a short prefix, an oversized header or one that runs past the end.
 */
export function readSafetensorsHeaderLength(prefix: Uint8Array, totalLength: number, opts?: SafetensorsHeaderOptions): number {
  const file = fileOf(opts);
  const max = maxHeaderOf(opts);
  if (prefix.length < 8 || totalLength < 8) {
    throw new SafetensorsError(file, `truncated: ${Math.min(prefix.length, totalLength)} bytes, fewer than the 8-byte header length prefix`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  // Any high word makes N >= 2^32, far past every cap; report the exact u64 anyway.
  const n = hi === 0 ? lo : Number(view.getBigUint64(0, true));
  const shown = hi === 0 ? String(lo) : view.getBigUint64(0, true).toString();
  if (hi !== 0 || n > max) throw new SafetensorsError(file, `header length ${shown} exceeds the limit of ${max} bytes`);
  if (8 + n > totalLength) {
    throw new SafetensorsError(file, `header length ${shown} runs past the end of the file (${totalLength} bytes, header would end at ${8 + n})`);
  }
  return n;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const isCount = (v: JSONValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function describe(v: JSONValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (isJSONObject(v)) return 'an object';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Bytes a tensor of `code` and `shape` occupies, or an error reason. BigInt: products may pass 2^53. */
function expectedBytes(code: SafetensorsDType, shape: number[]): bigint | string {
  let bits = BigInt(safetensorsBits(code));
  for (const d of shape) bits *= BigInt(d);
  if (bits % 8n !== 0n) return `${code} x [${shape.join(', ')}] is not a whole number of bytes`;
  return bits / 8n;
}

function parseEntry(name: string, value: JSONValue, dataLength: number, file: string): SafetensorsEntry {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isJSONObject(value)) throw new SafetensorsError(file, `${where}: expected an object with dtype, shape and data_offsets, got ${describe(value)}`);
  const dtype = value.get('dtype');
  if (typeof dtype !== 'string') throw new SafetensorsError(file, `${where}: dtype must be a string, got ${describe(dtype)}`);
  if (!isSafetensorsDType(dtype)) throw new SafetensorsError(file, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
  const shape = value.get('shape');
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new SafetensorsError(file, `${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  const elements = (shape as number[]).reduce((n, d) => n * d, 1);
  if (elements > MAX_TENSOR_ELEMENTS) {
    throw new SafetensorsError(
      file,
      `${where}: shape [${(shape as number[]).join(', ')}] claims ${elements} elements, above the limit of ${MAX_TENSOR_ELEMENTS} (2^31 - 1) elements per tensor`,
    );
  }
  const offsets = value.get('data_offsets');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsError(file, `${where}: data_offsets must be [begin, end] with non-negative integers, got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(file, `${where}: data_offsets begin ${begin} is after end ${end}`);
  if (end > dataLength) {
    throw new SafetensorsError(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the data buffer (${dataLength} bytes)`);
  }
  const want = expectedBytes(dtype, shape as number[]);
  if (typeof want === 'string') throw new SafetensorsError(file, `${where}: shape: ${want}`);
  if (BigInt(end - begin) !== want) {
    throw new SafetensorsError(
      file,
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but dtype ${dtype} with shape [${(shape as number[]).join(', ')}] needs ${want}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

function parseMetadata(value: JSONValue, file: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (value === null) return out; // the reference accepts an explicit null as "no metadata"
  if (!isJSONObject(value)) throw new SafetensorsError(file, `${METADATA_KEY} must be an object of strings, got ${describe(value)}`);
  for (const [k, v] of value) {
    if (typeof v !== 'string') throw new SafetensorsError(file, `${METADATA_KEY}: value of ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
    out[k] = v;
  }
  return out;
}

function jsonReason(e: JSONSyntaxError): string {
  const [first, ...rest] = e.path;
  if (e.duplicateKey !== undefined) {
    if (first === undefined) return `duplicate tensor name ${JSON.stringify(e.duplicateKey)} in the header (${e.message})`;
    const owner = first === METADATA_KEY ? METADATA_KEY : `tensor ${JSON.stringify(first)}`;
    return `${owner}: duplicate key ${JSON.stringify(e.duplicateKey)}${rest.length ? ` in ${rest.join('.')}` : ''} (${e.message})`;
  }
  const inside = first === undefined ? '' : first === METADATA_KEY ? ` (in ${METADATA_KEY})` : ` (in tensor ${JSON.stringify(first)})`;
  return `header is not valid JSON: ${e.message}${inside}`;
}

/**
 * Parses and validates the N header bytes, given the data buffer's length. Throws SafetensorsError
 * naming the file, the tensor and the field for every malformed case.
 */
export function decodeSafetensorsHeader(headerBytes: Uint8Array, dataLength: number, opts?: SafetensorsHeaderOptions): SafetensorsHeader {
  const file = fileOf(opts);
  let text: string;
  try {
    text = UTF8.decode(headerBytes);
  } catch (cause) {
    throw new SafetensorsError(file, 'header is not valid UTF-8', { cause });
  }
  // The reference rejects headers that do not open with '{' (no leading whitespace or BOM).
  if (text.charCodeAt(0) !== 0x7b) throw new SafetensorsError(file, `header must start with '{', got ${describe(text.slice(0, 20))}`);
  let root: JSONValue;
  try {
    root = parseStrictJSON(text);
  } catch (cause) {
    if (cause instanceof JSONSyntaxError) throw new SafetensorsError(file, jsonReason(cause), { cause });
    throw cause;
  }
  if (!isJSONObject(root)) throw new SafetensorsError(file, `header must be a JSON object, got ${describe(root)}`);
  let metadata: Record<string, string> = Object.create(null);
  const tensors: SafetensorsEntry[] = [];
  for (const [key, value] of root as JSONObject) {
    if (key === METADATA_KEY) metadata = parseMetadata(value, file);
    else tensors.push(parseEntry(key, value, dataLength, file));
  }
  // The data regions, in offset order, must tile [0, dataLength) exactly.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: SafetensorsEntry | undefined;
  for (const t of tensors) {
    if (t.begin > cursor) {
      throw new SafetensorsError(
        file,
        `data buffer bytes [${cursor}, ${t.begin}) belong to no tensor (gap before tensor ${JSON.stringify(t.name)} at data_offsets [${t.begin}, ${t.end}])`,
      );
    }
    if (t.begin < cursor) {
      throw new SafetensorsError(
        file,
        `tensor ${JSON.stringify(t.name)} data_offsets [${t.begin}, ${t.end}] overlap tensor ${JSON.stringify(previous!.name)} [${previous!.begin}, ${previous!.end}]`,
      );
    }
    cursor = t.end;
    if (t.end > t.begin || !previous) previous = t;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError(file, `the last ${dataLength - cursor} bytes of the data buffer (from ${cursor} to ${dataLength}) belong to no tensor`);
  }
  return { headerLength: headerBytes.length, dataOffset: 8 + headerBytes.length, dataLength, tensors, metadata };
}

/** Validates the header of a whole safetensors file held in memory. */
export function parseSafetensorsHeader(bytes: Uint8Array, opts?: SafetensorsHeaderOptions): SafetensorsHeader {
  const n = readSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.length, opts);
  return decodeSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, opts);
}

/**
 * Name lookups shared by the in-memory and the file reader: raw tensors, sparse layouts (from
 * `sparse.<name>` metadata) and the logical names a user sees. Validates the sparse entries' parts
 * against the header when built, so a file with a broken layout fails at open.
 */
export class SafetensorsIndex {
  readonly file: string;
  readonly header: SafetensorsHeader;
  readonly metadata: Readonly<Record<string, string>>;
  /** Logical names, sorted: dense tensors that are not sparse parts, and sparse layouts. */
  readonly names: readonly string[];
  /** Every stored tensor name, in data order (sparse parts included). */
  readonly tensorNames: readonly string[];
  private readonly entries = new Map<string, SafetensorsEntry>();
  private readonly sparse = new Map<string, SparseSpec>();

  constructor(header: SafetensorsHeader, file: string) {
    this.file = file;
    this.header = header;
    this.metadata = header.metadata;
    for (const t of header.tensors) this.entries.set(t.name, t);
    this.tensorNames = header.tensors.map((t) => t.name);
    const parts = new Set<string>();
    for (const key of Object.keys(header.metadata)) {
      if (!key.startsWith(SAFETENSORS_SPARSE_PREFIX)) continue;
      const name = key.slice(SAFETENSORS_SPARSE_PREFIX.length);
      const lookup = (p: string) => this.entries.get(p);
      const spec = parseSparseSpec(name, header.metadata[key]!, file, lookup);
      const problem = sparsePartsProblem(name, spec, lookup);
      if (problem) throw new SafetensorsError(file, problem);
      if (this.entries.has(name)) throw new SafetensorsError(file, `${JSON.stringify(name)} is both a tensor and a sparse layout`);
      for (const p of sparsePartNames(name, spec.format)) parts.add(p);
      this.sparse.set(name, spec);
    }
    const names = [...this.sparse.keys(), ...this.tensorNames.filter((n) => !parts.has(n))];
    this.names = names.sort(compareCodePoints);
  }

  has(name: string): boolean {
    return this.entries.has(name) || this.sparse.has(name);
  }

  isSparse(name: string): boolean {
    return this.sparse.has(name);
  }

  /** The header entry of a stored tensor. Throws ArgumentError for an unknown name. */
  entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) throw new ArgumentError(`${this.file}: no tensor named ${JSON.stringify(name)}${this.listing()}`);
    return e;
  }

  sparseSpec(name: string): SparseSpec {
    const s = this.sparse.get(name);
    if (!s) {
      const why = this.entries.has(name) ? 'is a dense tensor, not a sparse layout' : `does not exist${this.listing()}`;
      throw new ArgumentError(`${this.file}: ${JSON.stringify(name)} ${why}`);
    }
    return s;
  }

  partNames(name: string): string[] {
    return sparsePartNames(name, this.sparseSpec(name).format);
  }

  private listing(): string {
    const shown = this.names.slice(0, 8).map((n) => JSON.stringify(n));
    return this.names.length === 0 ? ' (the file holds none)' : ` (it holds ${shown.join(', ')}${this.names.length > 8 ? `, ... ${this.names.length} in all` : ''})`;
  }
}

/** Builds our Tensor from a stored tensor's raw array, applying the wide-int policy. */
export function entryToTensor(entry: SafetensorsEntry, raw: SafetensorsArray, wide: SafetensorsWideInts, file: string): Tensor {
  const { dtype, data } = toTensorStorage(entry.dtype, raw, wide, `${file}: tensor ${JSON.stringify(entry.name)}`);
  return { data, shape: [...entry.shape], stride: contiguousStrides(entry.shape), offset: 0, dtype };
}

/** A safetensors file held in memory, validated. Tensors view the source bytes unless `copy` is set. */
export class SafetensorsBuffer {
  readonly file: string;
  readonly header: SafetensorsHeader;
  readonly metadata: Readonly<Record<string, string>>;
  readonly names: readonly string[];
  readonly tensorNames: readonly string[];
  readonly #bytes: Uint8Array;
  readonly #index: SafetensorsIndex;
  readonly #copy: boolean;
  readonly #wide: SafetensorsWideInts;

  constructor(bytes: Uint8Array, opts?: SafetensorsReadOptions) {
    this.file = fileOf(opts);
    this.header = parseSafetensorsHeader(bytes, opts);
    this.#index = new SafetensorsIndex(this.header, this.file);
    this.#bytes = bytes;
    this.#copy = opts?.copy ?? false;
    this.#wide = opts?.wideInts ?? 'error';
    this.metadata = this.header.metadata;
    this.names = this.#index.names;
    this.tensorNames = this.#index.tensorNames;
  }

  /** True for stored tensor names and sparse layout names. */
  has(name: string): boolean {
    return this.#index.has(name);
  }

  isSparse(name: string): boolean {
    return this.#index.isSparse(name);
  }

  entry(name: string): SafetensorsEntry {
    return this.#index.entry(name);
  }

  /** The stored little-endian bytes of a tensor (a view, never a copy). */
  tensorBytes(name: string): Uint8Array {
    const e = this.#index.entry(name);
    const start = this.header.dataOffset + e.begin;
    return this.#bytes.subarray(start, start + (e.end - e.begin));
  }

  /** A tensor in its natural JS array, whatever its code (I64 as BigInt64Array, F8 as bytes...). */
  raw(name: string): SafetensorsRawTensor {
    const e = this.#index.entry(name);
    return { dtype: e.dtype, shape: [...e.shape], data: decodeSafetensorsArray(e.dtype, this.tensorBytes(name), this.#copy) };
  }

  /** A stored tensor as our Tensor (I16/U16 widen to int32; U32/I64/U64 follow `wideInts`). */
  tensor(name: string): Tensor {
    const e = this.#index.entry(name);
    return entryToTensor(e, this.raw(name).data, this.#wide, this.file);
  }

  /** The sparse layout stored under `name`, fully validated. */
  readLayout(name: string): SparseLayout {
    this.#index.sparseSpec(name);
    return tensorsToSparse(name, this);
  }

  /** A logical name: the sparse layout when it is one, else the tensor. */
  read(name: string): Tensor | SparseLayout {
    return this.#index.isSparse(name) ? this.readLayout(name) : this.tensor(name);
  }
}

/** Parses and validates a whole safetensors file held in memory. Throws SafetensorsError when malformed. */
export function parseSafetensors(bytes: Uint8Array, opts?: SafetensorsReadOptions): SafetensorsBuffer {
  return new SafetensorsBuffer(bytes, opts);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** What the writer accepts per name: a Tensor (any strides), a sparse layout, or a raw coded array. */
export type SafetensorsInput = Tensor | SparseLayout | SafetensorsRawTensor;

/** One tensor of a write plan. */
export interface SafetensorsPlannedTensor extends SafetensorsEntry {
  source: StridedArray;
}

export interface SafetensorsPlan {
  /** The 8-byte prefix, the JSON header and its padding: everything before the data buffer. */
  head: Uint8Array;
  tensors: SafetensorsPlannedTensor[];
  /** Length of the whole file. */
  byteLength: number;
}

export interface SafetensorsLayoutOptions {
  /**
   * Order of the tensors in the data buffer (and the header). 'name' (default): by name. 'alignment':
   * as the Hugging Face writer lays them out, by dtype in descending order of its Rust enum (U64, I64,
   * F64, C64, F32, U32, I32, BF16, F16, U16, I16, ..., U8, BOOL), then by name; the bytes then equal those of
   * Python's `safetensors.torch.save_file` for the same tensors and metadata.
   */
  order?: 'name' | 'alignment';
}

// Declaration order of the reference implementation's Dtype enum, whose derived Ord its writer sorts by.
const RUST_DTYPE_ORDER: readonly SafetensorsDType[] = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
];

function alignmentRank(code: SafetensorsDType): number {
  return RUST_DTYPE_ORDER.indexOf(code);
}

/** Orders strings by Unicode code point (UTF-16 order differs for astral characters). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

// Lone surrogates cannot be encoded as UTF-8; the reference would reject the header.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkText(s: string, what: string): void {
  if (LONE_SURROGATE.test(s)) throw new ArgumentError(`serializeSafetensors: ${what} contains a lone surrogate and cannot be written as UTF-8`);
}

function isTensorLike(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as Tensor).stride) && ArrayBuffer.isView((v as Tensor).data);
}

function isRawLike(v: unknown): v is SafetensorsRawTensor {
  return typeof v === 'object' && v !== null && isSafetensorsDType((v as SafetensorsRawTensor).dtype) && ArrayBuffer.isView((v as SafetensorsRawTensor).data);
}

function checkedTensor(name: string, t: Tensor): StridedArray & { dtype: DType } {
  try {
    // tensor() validates dtype, storage type, shape, strides and that the view stays inside data.
    const v = makeTensor(t.data as Storage, t.shape, { dtype: t.dtype, stride: t.stride, offset: t.offset ?? 0 });
    return { data: v.data as SafetensorsArray, shape: v.shape, stride: v.stride, offset: v.offset, dtype: v.dtype };
  } catch (cause) {
    if (SparseError.isInstance(cause)) throw new ArgumentError(`serializeSafetensors: tensor ${JSON.stringify(name)}: ${cause.message}`, { cause });
    throw cause;
  }
}

function checkedRaw(name: string, r: SafetensorsRawTensor): StridedArray {
  const where = `serializeSafetensors: tensor ${JSON.stringify(name)} (${r.dtype})`;
  if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ArgumentError(`${where}: shape must be an array of non-negative integers`);
  }
  const ctor = safetensorsArrayType(r.dtype);
  if (!(r.data instanceof ctor) && !(r.data instanceof Uint8Array)) {
    throw new ArgumentError(`${where}: data must be a ${ctor.name} (or its little-endian bytes as a Uint8Array), got ${r.data.constructor.name}`);
  }
  const want = expectedBytes(r.dtype, r.shape);
  if (typeof want === 'string') throw new ArgumentError(`${where}: ${want}`);
  if (BigInt(r.data.byteLength) !== want) throw new ArgumentError(`${where}: data has ${r.data.byteLength} bytes, shape [${r.shape.join(', ')}] needs ${want}`);
  // Stored as a flat run of the array's own elements.
  return { data: r.data, shape: [r.data.length], stride: [1], offset: 0 };
}

/**
 * Lays out a file: validates every input, expands sparse layouts into parts and metadata, assigns
 * offsets in name order and encodes the header. Nothing is copied yet; see safetensorsChunks.
 */
export function planSafetensors(entries: Record<string, SafetensorsInput>, metadata?: Record<string, string>, opts: SafetensorsLayoutOptions = {}): SafetensorsPlan {
  if (typeof entries !== 'object' || entries === null) throw new ArgumentError('serializeSafetensors: expected a record of tensors');
  const meta = new Map<string, string>();
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null) throw new ArgumentError('serializeSafetensors: metadata must be a record of strings');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new ArgumentError(`serializeSafetensors: metadata ${JSON.stringify(k)} must be a string, got ${typeof v}`);
      if (k.startsWith(SAFETENSORS_SPARSE_PREFIX)) {
        throw new ArgumentError(`serializeSafetensors: metadata key ${JSON.stringify(k)}: keys starting with "${SAFETENSORS_SPARSE_PREFIX}" are reserved for sparse layouts`);
      }
      checkText(k, `metadata key ${JSON.stringify(k)}`);
      checkText(v, `metadata ${JSON.stringify(k)}`);
      meta.set(k, v);
    }
  }
  const planned = new Map<string, { dtype: SafetensorsDType; shape: number[]; source: StridedArray }>();
  const add = (name: string, dtype: SafetensorsDType, shape: number[], source: StridedArray) => {
    if (name === METADATA_KEY) throw new ArgumentError(`serializeSafetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    if (planned.has(name)) throw new ArgumentError(`serializeSafetensors: two tensors named ${JSON.stringify(name)} (a sparse part collides with another entry)`);
    checkText(name, `tensor name ${JSON.stringify(name)}`);
    planned.set(name, { dtype, shape: [...shape], source });
  };
  const names = Object.keys(entries);
  for (const name of names) {
    const value = entries[name];
    if (isSparseLayout(value)) {
      const { tensors, metadata: m } = sparseToTensors(name, value);
      for (const [k, v] of Object.entries(m)) meta.set(k, v);
      for (const [part, raw] of Object.entries(tensors)) {
        add(part, raw.dtype, raw.shape, { data: raw.data, shape: raw.shape, stride: contiguousStrides(raw.shape), offset: 0 });
      }
    } else if (isTensorLike(value)) {
      const t = checkedTensor(name, value);
      add(name, dtypeToSafetensors(t.dtype), t.shape as number[], t);
    } else if (isRawLike(value)) {
      add(name, value.dtype, value.shape, checkedRaw(name, value));
    } else {
      throw new ArgumentError(`serializeSafetensors: ${JSON.stringify(name)} is neither a Tensor, a sparse layout nor a raw { dtype, shape, data } tensor`);
    }
  }
  // A dense tensor named like a layout would make the file ambiguous on read.
  for (const key of meta.keys()) {
    if (key.startsWith(SAFETENSORS_SPARSE_PREFIX) && planned.has(key.slice(SAFETENSORS_SPARSE_PREFIX.length))) {
      throw new ArgumentError(`serializeSafetensors: ${JSON.stringify(key.slice(SAFETENSORS_SPARSE_PREFIX.length))} names both a tensor and a sparse layout`);
    }
  }

  const byName = [...planned.keys()].sort(compareCodePoints);
  const order = opts.order === 'alignment' ? byName.sort((a, b) => alignmentRank(planned.get(b)!.dtype) - alignmentRank(planned.get(a)!.dtype)) : byName;
  const tensors: SafetensorsPlannedTensor[] = [];
  let offset = 0;
  for (const name of order) {
    const p = planned.get(name)!;
    const bytes = Number(expectedBytes(p.dtype, p.shape));
    tensors.push({ name, dtype: p.dtype, shape: p.shape, begin: offset, end: offset + bytes, source: p.source });
    offset += bytes;
  }

  // Built by hand, not with JSON.stringify on an object: JS would move integer-like keys ("0") first.
  const fields: string[] = [];
  if (meta.size > 0) {
    const keys = [...meta.keys()].sort(compareCodePoints);
    fields.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(meta.get(k))}`).join(',')}}`);
  }
  for (const t of tensors) {
    fields.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${t.begin},${t.end}]}`);
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const pad = (8 - (json.length % 8)) % 8; // the data then starts 8-byte aligned in the file
  const n = json.length + pad;
  if (n > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new ArgumentError(`serializeSafetensors: header of ${n} bytes exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit readers enforce`);
  }
  const head = new Uint8Array(8 + n);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.length);
  return { head, tensors, byteLength: head.length + offset };
}

/** Yields a planned file as byte chunks: the head, then each tensor's data in pieces of at most ~chunkBytes. */
export function* safetensorsChunks(plan: SafetensorsPlan, chunkBytes = 1 << 22): Generator<Uint8Array> {
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new ArgumentError(`chunkBytes must be a positive integer, got ${String(chunkBytes)}`);
  yield plan.head;
  for (const t of plan.tensors) yield* encodeStrided(t.source, chunkBytes);
}

/**
 * Serializes tensors, sparse layouts and raw coded arrays to safetensors bytes. Strided views are
 * packed row-major; tensors are laid out in name order; `metadata` must map strings to strings.
 * Sparse layouts become parts plus a `sparse.<name>` metadata entry (see ./sparse.ts).
 */
export function serializeSafetensors(entries: Record<string, SafetensorsInput>, metadata?: Record<string, string>, opts?: SafetensorsLayoutOptions): Uint8Array {
  const plan = planSafetensors(entries, metadata, opts);
  const out = new Uint8Array(plan.byteLength);
  let at = 0;
  for (const chunk of safetensorsChunks(plan)) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
