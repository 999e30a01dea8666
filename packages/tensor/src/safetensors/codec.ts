// Safetensors dtype codes and the byte <-> typed-array conversions. Pure: no Node built-ins.
// Files are little-endian; on a big-endian host every multi-byte element is copied and byte-swapped
// (zero-copy views are only taken on little-endian hosts).

import type { DType, Storage } from '../dtype.js';
import { DTypeError } from '../errors.js';

/** Every dtype code the Hugging Face format defines. */
export type SafetensorsDType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64'
  | 'C64'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2';

/** The typed array a code decodes to by `raw()`: its natural JS array, or packed bytes where JS has none. */
export type SafetensorsArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type ArrayCtor = {
  new (length: number): SafetensorsArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsArray;
  readonly BYTES_PER_ELEMENT: number;
};

interface CodeInfo {
  /** Bits per element (4 and 6 for the packed micro-float codes). */
  bits: number;
  /** Natural JS array; Uint8Array (raw bytes) for codes JS cannot represent. C64 is interleaved re/im Float32. */
  array: ArrayCtor;
  /** Our dtype when the bytes are exactly our storage (no conversion). */
  dtype?: DType;
}

const CODES: ReadonlyMap<string, CodeInfo> = new Map<SafetensorsDType, CodeInfo>([
  ['BOOL', { bits: 8, array: Uint8Array, dtype: 'bool' }],
  ['U8', { bits: 8, array: Uint8Array, dtype: 'uint8' }],
  ['I8', { bits: 8, array: Int8Array, dtype: 'int8' }],
  ['I16', { bits: 16, array: Int16Array }],
  ['U16', { bits: 16, array: Uint16Array }],
  ['F16', { bits: 16, array: Uint16Array, dtype: 'float16' }],
  ['BF16', { bits: 16, array: Uint16Array, dtype: 'bfloat16' }],
  ['I32', { bits: 32, array: Int32Array, dtype: 'int32' }],
  ['U32', { bits: 32, array: Uint32Array }],
  ['F32', { bits: 32, array: Float32Array, dtype: 'float32' }],
  ['F64', { bits: 64, array: Float64Array, dtype: 'float64' }],
  ['I64', { bits: 64, array: BigInt64Array }],
  ['U64', { bits: 64, array: BigUint64Array }],
  ['C64', { bits: 64, array: Float32Array }],
  ['F8_E5M2', { bits: 8, array: Uint8Array }],
  ['F8_E4M3', { bits: 8, array: Uint8Array }],
  ['F8_E8M0', { bits: 8, array: Uint8Array }],
  ['F4', { bits: 4, array: Uint8Array }],
  ['F6_E2M3', { bits: 6, array: Uint8Array }],
  ['F6_E3M2', { bits: 6, array: Uint8Array }],
]);

export const SAFETENSORS_DTYPES: readonly SafetensorsDType[] = [...CODES.keys()] as SafetensorsDType[];

const TO_CODE: Record<DType, SafetensorsDType> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int32: 'I32',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && CODES.has(value);
}

function info(code: SafetensorsDType): CodeInfo {
  const i = CODES.get(code);
  if (!i) throw new DTypeError(`unknown safetensors dtype ${JSON.stringify(code)}`);
  return i;
}

/** Bits per element of a code. */
export function safetensorsBits(code: SafetensorsDType): number {
  return info(code).bits;
}

/** The code our dtype is written as. */
export function dtypeToSafetensors(dtype: DType): SafetensorsDType {
  const code = TO_CODE[dtype];
  if (!code) throw new DTypeError(`no safetensors code for dtype ${JSON.stringify(dtype)}`);
  return code;
}

/** Our dtype whose storage holds this code's bytes unchanged, or undefined (I16, U16, U32, I64, U64, C64, F8/F6/F4). */
export function safetensorsToDType(code: SafetensorsDType): DType | undefined {
  return info(code).dtype;
}

/** The constructor of a code's natural array (see SafetensorsArray). */
export function safetensorsArrayType(code: SafetensorsDType): ArrayCtor {
  return info(code).array;
}

/** True when this host stores numbers little-endian (every mainstream CPU today). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the bytes of each `width`-byte element in place (big-endian hosts only). */
export function swapBytes(bytes: Uint8Array, width: number): void {
  if (width <= 1) return;
  for (let p = 0; p + width <= bytes.length; p += width) {
    for (let a = p, b = p + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Decodes a tensor's little-endian bytes into its natural array. Without `copy`, a view over the same
 * memory is returned when the host is little-endian and the bytes are aligned for the element type.
 * `bytes.length` must be a whole number of elements (the header validation guarantees it).
 */
export function decodeSafetensorsArray(code: SafetensorsDType, bytes: Uint8Array, copy = false): SafetensorsArray {
  const ctor = info(code).array;
  const width = ctor.BYTES_PER_ELEMENT;
  const length = bytes.byteLength / width;
  if (!copy && HOST_LITTLE_ENDIAN && bytes.byteOffset % width === 0) {
    return new ctor(bytes.buffer, bytes.byteOffset, length);
  }
  const out = new ctor(length);
  const view = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  view.set(bytes);
  if (!HOST_LITTLE_ENDIAN) swapBytes(view, width); // C64 swaps as two float32s, as it is stored
  return out;
}

/** How `tensor()` treats codes that have no storage of ours: I64, U64 and U32. */
export type SafetensorsWideInts = 'error' | 'int32' | 'float64';

/**
 * Turns a decoded natural array into our storage. Exact codes pass through; I16/U16 widen to int32
 * (lossless); U32/I64/U64 follow `wide` (default 'error'; 'int32' and 'float64' check every value
 * fits exactly); codes with no numeric storage (C64, F8, F6, F4) throw. `where` prefixes messages.
 */
export function toTensorStorage(
  code: SafetensorsDType,
  raw: SafetensorsArray,
  wide: SafetensorsWideInts,
  where: string,
): { dtype: DType; data: Storage } {
  const direct = info(code).dtype;
  if (direct) return { dtype: direct, data: raw as Storage };
  if (code === 'I16' || code === 'U16') return { dtype: 'int32', data: Int32Array.from(raw as Int16Array | Uint16Array) };
  if (code === 'U32' || code === 'I64' || code === 'U64') {
    if (wide === 'int32') return { dtype: 'int32', data: narrow(raw, Int32Array, -0x80000000, 0x7fffffff, where, code) };
    if (wide === 'float64') {
      return { dtype: 'float64', data: narrow(raw, Float64Array, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, where, code) };
    }
    throw new DTypeError(
      `${where}: ${code} has no storage in @sparse/tensor; pass { wideInts: 'int32' } or { wideInts: 'float64' } to convert with a range check, or use raw()`,
    );
  }
  throw new DTypeError(`${where}: ${code} has no numeric storage in @sparse/tensor; use raw() or tensorBytes() for its bytes`);
}

// Copies integers into a narrower array, refusing any value that would not survive exactly.
function narrow<T extends Int32Array | Float64Array>(
  raw: SafetensorsArray,
  ctor: new (n: number) => T,
  lo: number,
  hi: number,
  where: string,
  code: string,
): T {
  const out = new ctor(raw.length);
  const big = raw instanceof BigInt64Array || raw instanceof BigUint64Array;
  const blo = BigInt(lo);
  const bhi = BigInt(hi);
  for (let k = 0; k < raw.length; k++) {
    const v = raw[k]!;
    if (big ? (v as bigint) < blo || (v as bigint) > bhi : (v as number) < lo || (v as number) > hi) {
      throw new DTypeError(`${where}: ${code} element ${k} = ${String(v)} does not fit exactly in ${ctor === (Int32Array as unknown) ? 'int32' : 'float64'}`);
    }
    out[k] = Number(v);
  }
  return out;
}

/** A strided read of any typed array: element i0,i1,.. at data[offset + sum(stride[a]*ia)]. */
export interface StridedArray {
  data: SafetensorsArray;
  shape: readonly number[];
  stride: readonly number[];
  offset: number;
}

function isRowMajor(src: StridedArray): boolean {
  let expect = 1;
  for (let a = src.shape.length - 1; a >= 0; a--) {
    if (src.shape[a]! > 1 && src.stride[a] !== expect) return false;
    expect *= src.shape[a]!;
  }
  return true;
}

/**
 * Yields the little-endian bytes of a strided array in row-major order, in pieces of at most
 * about `chunkBytes`. A row-major source on a little-endian host yields views of its own memory
 * (no copy); anything else is packed chunk by chunk, so memory use stays at one chunk.
 */
export function* encodeStrided(src: StridedArray, chunkBytes: number): Generator<Uint8Array> {
  let count = 1;
  for (const d of src.shape) count *= d;
  if (count === 0) return;
  const ctor = src.data.constructor as ArrayCtor;
  const width = ctor.BYTES_PER_ELEMENT;
  const perChunk = Math.max(1, Math.floor(chunkBytes / width));
  if (isRowMajor(src)) {
    const whole = new Uint8Array(src.data.buffer, src.data.byteOffset + src.offset * width, count * width);
    for (let p = 0; p < whole.length; p += perChunk * width) {
      const piece = whole.subarray(p, Math.min(whole.length, p + perChunk * width));
      if (HOST_LITTLE_ENDIAN) yield piece;
      else {
        const swapped = piece.slice();
        swapBytes(swapped, width);
        yield swapped;
      }
    }
    return;
  }
  // Odometer over the multi-index, walking the last axis in a tight inner loop.
  const { shape, stride } = src;
  const data = src.data as unknown as ArrayLike<number>;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let pos = src.offset;
  const last = rank - 1;
  const lastLen = shape[last]!;
  const lastStride = stride[last]!;
  for (let done = 0; done < count; ) {
    const n = Math.min(perChunk, count - done);
    const out = new ctor(n);
    const dst = out as unknown as number[];
    let k = 0;
    while (k < n) {
      let i = idx[last]!;
      while (i < lastLen && k < n) {
        dst[k++] = data[pos]!;
        pos += lastStride;
        i++;
      }
      idx[last] = i;
      if (i < lastLen) break;
      pos -= lastStride * lastLen;
      idx[last] = 0;
      for (let a = last - 1; a >= 0; a--) {
        idx[a]!++;
        pos += stride[a]!;
        if (idx[a]! < shape[a]!) break;
        pos -= stride[a]! * shape[a]!;
        idx[a] = 0;
      }
    }
    done += n;
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    if (!HOST_LITTLE_ENDIAN) swapBytes(bytes, width);
    yield bytes;
  }
}
