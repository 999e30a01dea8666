// Half-precision conversions (IEEE 754 binary16 and bfloat16) and dtype casts.
// Both 16-bit formats are stored as raw bits in a Uint16Array, so every read or write of a
// float16/bfloat16 tensor element as a number goes through these functions.

import { allocStorage, assertDType, DType, Storage } from './dtype.js';
import { ArgumentError } from './errors.js';
import { forEachIndex, isContiguous, sizeOf, Tensor, contiguousStrides } from './tensor.js';

// One scratch double whose two 32-bit halves give exact access to the bits of a JS number.
const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const LO = LITTLE_ENDIAN ? 0 : 1;
// The same for a float32, to turn float32 bits into a number.
const scratchF32 = new Float32Array(1);
const scratchU32Of32 = new Uint32Array(scratchF32.buffer);

/**
 * Rounds a float64 (given as its two 32-bit halves) to a narrower IEEE-style binary format with
 * `expBits` exponent bits and `mantBits` (<= 20) stored mantissa bits, round-to-nearest-even.
 * Integer-only, so the result is exact for every input: subnormals, overflow to infinity, -0.
 * NaN keeps its sign and the top mantissa bits of its payload and is made quiet.
 */
function roundFromFloat64Bits(hi: number, lo: number, expBits: number, mantBits: number): number {
  const sign = (hi >>> 16) & 0x8000;
  const e64 = (hi >>> 20) & 0x7ff;
  const mh = hi & 0xfffff; // top 20 of the 52 mantissa bits; `lo` holds the other 32
  const maxExp = (1 << expBits) - 1;
  const inf = sign | (maxExp << mantBits);
  if (e64 === 0x7ff) {
    if (mh === 0 && lo === 0) return inf;
    return inf | (1 << (mantBits - 1)) | (mh >>> (20 - mantBits));
  }
  const bias = (1 << (expBits - 1)) - 1;
  const e = e64 - 1023 + bias; // biased exponent in the target format
  if (e >= maxExp) return inf;
  let q: number;
  let rem: number;
  let shift: number;
  if (e <= 0) {
    // Subnormal (or zero) in the target: the value is below half the smallest subnormal when e < -mantBits.
    // Float64 subnormals (e64 = 0) always land here since their target exponent is hugely negative.
    if (e < -mantBits) return sign;
    const full = mh | 0x100000; // 1.m scaled by 2^20
    shift = 21 - mantBits - e;
    q = full >>> shift;
    rem = full & ((1 << shift) - 1);
  } else {
    shift = 20 - mantBits;
    q = (e << mantBits) | (mh >>> shift);
    rem = mh & ((1 << shift) - 1);
  }
  const half = 1 << (shift - 1);
  // Ties go to even; any bit set in `lo` puts the value strictly above the tie. A carry out of the
  // mantissa correctly bumps the exponent (and turns the largest finite value into infinity).
  if (rem > half || (rem === half && (lo !== 0 || (q & 1) === 1))) q += 1;
  return sign | q;
}

/** Bits of the float16 nearest to x (round to nearest, ties to even); exact for float64 and float32 inputs. */
export function toFloat16(x: number): number {
  scratchF64[0] = x;
  return roundFromFloat64Bits(scratchU32[HI]!, scratchU32[LO]!, 5, 10);
}

/** Bits of the bfloat16 nearest to x (round to nearest, ties to even), rounding the exact value of x. */
export function toBFloat16(x: number): number {
  scratchF64[0] = x;
  return roundFromFloat64Bits(scratchU32[HI]!, scratchU32[LO]!, 8, 7);
}

// 2^(e - 25) for every float16 exponent field e, so decoding is one multiply.
const F16_SCALE = Array.from({ length: 32 }, (_, e) => 2 ** (e - 25));

/** The exact value of float16 bits (the low 16 bits of `bits` are used). */
export function fromFloat16(bits: number): number {
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  let v: number;
  if (e === 0) v = m * 2 ** -24;
  else if (e === 31) v = m === 0 ? Infinity : NaN;
  else v = (m + 1024) * F16_SCALE[e]!;
  return bits & 0x8000 ? -v : v;
}

/** The exact value of bfloat16 bits: they are the top half of a float32. */
export function fromBFloat16(bits: number): number {
  const e = (bits >>> 7) & 0xff;
  const m = bits & 0x7f;
  let v: number;
  if (e === 0) v = m * 2 ** -133;
  else if (e === 255) v = m === 0 ? Infinity : NaN;
  else v = (m + 128) * 2 ** (e - 134);
  return bits & 0x8000 ? -v : v;
}

/** x rounded to the nearest float16 value (like Math.fround for half precision). */
export function roundFloat16(x: number): number {
  return fromFloat16(toFloat16(x));
}

/** x rounded to the nearest bfloat16 value. */
export function roundBFloat16(x: number): number {
  return fromBFloat16(toBFloat16(x));
}

/**
 * Float16 bits from float32 bits. Numbers go through toFloat16 (a float32 is exact as a double);
 * NaN is handled on the bits so its sign and top payload bits survive even where engines canonicalize NaN.
 */
export function float32BitsToFloat16(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) {
    return ((u >>> 16) & 0x8000) | 0x7e00 | ((u >>> 13) & 0x3ff);
  }
  scratchU32Of32[0] = u;
  return toFloat16(scratchF32[0]!);
}

/** Bfloat16 bits from float32 bits (round to nearest even; NaN sign and top payload bits kept, made quiet). */
export function float32BitsToBFloat16(u: number): number {
  u >>>= 0;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return (u >>> 16) | 0x40;
  // Adding 0x7fff plus the lowest kept bit rounds the low half to nearest, ties to even.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

type FloatOut = Float32Array | Float64Array;

function checkOut(srcLength: number, out: { length: number }, where: string): void {
  if (out.length !== srcLength) {
    throw new ArgumentError(`${where}: output has length ${out.length} but the input has ${srcLength}`);
  }
}

/** Float16 bits of every element (a Float32Array is read as bits so NaN payloads survive). */
export function encodeFloat16(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkOut(src.length, out, 'encodeFloat16');
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = float32BitsToFloat16(bits[i]!);
  } else {
    for (let i = 0; i < src.length; i++) out[i] = toFloat16(src[i]!);
  }
  return out;
}

/** Bfloat16 bits of every element (a Float32Array is rounded on its bits). */
export function encodeBFloat16(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkOut(src.length, out, 'encodeBFloat16');
  if (src instanceof Float32Array) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) out[i] = float32BitsToBFloat16(bits[i]!);
  } else {
    for (let i = 0; i < src.length; i++) out[i] = toBFloat16(src[i]!);
  }
  return out;
}

/** The values of float16 bits, into a new Float32Array (every float16 is exact in float32) or `out`. */
export function decodeFloat16(src: Uint16Array): Float32Array;
export function decodeFloat16<T extends FloatOut>(src: Uint16Array, out: T): T;
export function decodeFloat16(src: Uint16Array, out: FloatOut = new Float32Array(src.length)): FloatOut {
  checkOut(src.length, out, 'decodeFloat16');
  for (let i = 0; i < src.length; i++) out[i] = fromFloat16(src[i]!);
  return out;
}

/** The values of bfloat16 bits, into a new Float32Array or `out`; into a Float32Array this is a bit shift (NaN payloads kept). */
export function decodeBFloat16(src: Uint16Array): Float32Array;
export function decodeBFloat16<T extends FloatOut>(src: Uint16Array, out: T): T;
export function decodeBFloat16(src: Uint16Array, out: FloatOut = new Float32Array(src.length)): FloatOut {
  checkOut(src.length, out, 'decodeBFloat16');
  if (out instanceof Float32Array) {
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else {
    for (let i = 0; i < src.length; i++) out[i] = fromBFloat16(src[i]!);
  }
  return out;
}

/** The number a raw storage element of `dtype` stands for (decodes float16/bfloat16 bits; bool reads 0 or 1). */
export function decodeValue(dtype: DType, raw: number): number {
  switch (dtype) {
    case 'float16':
      return fromFloat16(raw);
    case 'bfloat16':
      return fromBFloat16(raw);
    case 'bool':
      return raw === 0 ? 0 : 1;
    default:
      return raw;
  }
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int32: [-2147483648, 2147483647],
  int8: [-128, 127],
  uint8: [0, 255],
};

/**
 * The raw storage element of `dtype` that stores x, following the cast rules:
 * - float32/float64: nearest value (float32 rounds to nearest even, as Float32Array does);
 * - float16/bfloat16: bits of the nearest value, ties to even, overflow to ±Infinity, NaN stays NaN;
 * - int32/int8/uint8: truncated toward zero and saturated to the type's range; NaN becomes 0
 *   (the rule of Rust's `as` and of WebAssembly's saturating truncation, chosen because it never wraps);
 * - bool: 1 when x !== 0 (so NaN is true), else 0.
 */
export function encodeValue(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32':
      return Math.fround(x);
    case 'float64':
      return x;
    case 'float16':
      return toFloat16(x);
    case 'bfloat16':
      return toBFloat16(x);
    case 'bool':
      return x !== 0 ? 1 : 0;
    case 'int32':
    case 'int8':
    case 'uint8': {
      if (Number.isNaN(x)) return 0;
      const [lo, hi] = INT_RANGE[dtype]!;
      const t = Math.trunc(x);
      return t < lo ? lo : t > hi ? hi : t === 0 ? 0 : t;
    }
    default:
      assertDType(dtype, 'encodeValue');
      return x;
  }
}

/**
 * A new contiguous (row-major, offset 0) tensor holding t's values converted to `dtype` with the rules
 * of encodeValue. Always copies, also when the dtype does not change, so the result never aliases t.
 */
/** float32 and float64 storage hold plain numbers: a typed-array copy converts between them exactly as encodeValue does. */
function isFloatStorage(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

export function cast<D extends DType>(t: Tensor, dtype: D): Tensor<D> {
  assertDType(dtype, 'cast');
  const out = allocStorage(dtype, sizeOf(t.shape)) as Storage<D>;
  const src = t.data;
  let k = 0;
  if (isContiguous(t) && (t.dtype === dtype || (isFloatStorage(t.dtype) && isFloatStorage(dtype)))) {
    // One native copy (float32 <-> float64 converts as encodeValue does: round to nearest, or exact).
    (out as Float32Array | Float64Array).set(src.subarray(t.offset, t.offset + out.length) as Float32Array | Float64Array);
  } else if (t.dtype === dtype) {
    forEachIndex(t, (pos) => {
      out[k++] = src[pos]!;
    });
  } else {
    const from = t.dtype;
    forEachIndex(t, (pos) => {
      out[k++] = encodeValue(dtype, decodeValue(from, src[pos]!));
    });
  }
  return { data: out, shape: [...t.shape], stride: contiguousStrides(t.shape), offset: 0, dtype };
}
