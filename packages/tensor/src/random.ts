// The one seeded random generator of the sparse project. Every package draws from it, so a run is
// reproducible from one seed and its generator state can be checkpointed and resumed exactly.

import { DType } from './dtype.js';
import { ArgumentError, DTypeError } from './errors.js';
import { encodeBFloat16, encodeFloat16, encodeValue } from './float16.js';
import { sizeOf, Tensor, zeros } from './tensor.js';

// ---- 64-bit arithmetic on [hi, lo] pairs of uint32, so seeding needs no BigInt. ----

type U64 = [hi: number, lo: number];

function add64(a: U64, b: U64): U64 {
  const lo = a[1] + b[1];
  return [(a[0] + b[0] + (lo > 0xffffffff ? 1 : 0)) >>> 0, lo >>> 0];
}

/** a * b mod 2^64. The low 32x32 product is split in 16-bit halves so every partial sum is exact. */
function mul64(a: U64, b: U64): U64 {
  const a0 = a[1] & 0xffff;
  const a1 = a[1] >>> 16;
  const b0 = b[1] & 0xffff;
  const b1 = b[1] >>> 16;
  const mid = a0 * b1 + a1 * b0;
  const low = a0 * b0 + (mid % 65536) * 65536;
  const highOfLow = a1 * b1 + Math.floor(mid / 65536) + Math.floor(low / 4294967296);
  return [(highOfLow + Math.imul(a[0], b[1]) + Math.imul(a[1], b[0])) >>> 0, low >>> 0];
}

/** x ^ (x >>> r) for 0 < r < 32. */
function xorShr64(x: U64, r: number): U64 {
  return [(x[0] ^ (x[0] >>> r)) >>> 0, (x[1] ^ ((x[1] >>> r) | (x[0] << (32 - r)))) >>> 0];
}

const GOLDEN: U64 = [0x9e3779b9, 0x7f4a7c15];
const MIX1: U64 = [0xbf58476d, 0x1ce4e5b9];
const MIX2: U64 = [0x94d049bb, 0x133111eb];

/** The SplitMix64 output function (Stafford's Mix13), a bijection of 64-bit words. */
function mix64(z: U64): U64 {
  z = mul64(xorShr64(z, 30), MIX1);
  z = mul64(xorShr64(z, 27), MIX2);
  return xorShr64(z, 31);
}

const FNV_OFFSET: U64 = [0xcbf29ce4, 0x84222325];
const FNV_PRIME: U64 = [0x00000100, 0x000001b3];
const utf8 = new TextEncoder();

/** 64-bit FNV-1a of the UTF-8 bytes of a fork label. */
function hashLabel(label: string): U64 {
  let h = FNV_OFFSET;
  for (const byte of utf8.encode(label)) {
    h = mul64([h[0], (h[1] ^ byte) >>> 0], FNV_PRIME);
  }
  return h;
}

const TWO32 = 4294967296;
const TWO53 = 9007199254740992;

function seedToU64(seed: number | bigint): U64 {
  if (typeof seed === 'bigint') {
    const s = BigInt.asUintN(64, seed);
    return [Number(s >> 32n), Number(s & 0xffffffffn)];
  }
  if (!Number.isSafeInteger(seed)) {
    throw new ArgumentError(`Random: seed must be a safe integer or a bigint, got ${String(seed)}`);
  }
  // Two's complement modulo 2^64, the same word BigInt.asUintN(64, BigInt(seed)) gives.
  return [Math.floor(seed / TWO32) >>> 0, seed >>> 0];
}

/** A checkpointable snapshot of a Random: plain JSON-safe numbers. */
export interface RandomState {
  algorithm: 'xoshiro128**';
  /** The 64-bit stream key [hi, lo]: the seed, or what fork() derived; forks are computed from it. */
  key: [number, number];
  /** The four xoshiro128** state words (uint32). */
  s: [number, number, number, number];
  /** The second normal of the last Box–Muller pair, not yet returned (null when none). */
  spare: number | null;
}

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function checkRange(where: string, lo: number, hi: number): void {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi) || !Number.isFinite(hi - lo)) {
    throw new ArgumentError(`${where}: need finite lo < hi with finite hi - lo, got [${lo}, ${hi})`);
  }
}

function checkNormal(where: string, mean: number, std: number): void {
  if (!Number.isFinite(mean) || !(std >= 0) || !Number.isFinite(std)) {
    throw new ArgumentError(`${where}: need finite mean and finite std >= 0, got mean ${mean}, std ${std}`);
  }
}

function checkCount(where: string, name: string, v: number, max = 0x7fffffff): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new ArgumentError(`${where}: ${name} must be an integer in [0, ${max}], got ${String(v)}`);
  }
}

/** Anything with numeric indices that can be written: plain arrays and every typed array. */
export interface MutableArrayLike<T> {
  length: number;
  [i: number]: T;
}

/**
 * A seeded pseudo-random generator: xoshiro128** 1.1 (Blackman & Vigna), 32-bit output, period 2^128 - 1,
 * chosen because it is fast with 32-bit integer arithmetic in every JS engine and passes BigCrush.
 *
 * Seeding: the seed is read as a 64-bit word (a negative number or bigint modulo 2^64) and fed to
 * SplitMix64; its first output gives state words s0 = low half, s1 = high half, its second s2, s3.
 * (Consecutive SplitMix64 outputs are distinct, so the state is never all zero.)
 *
 * Derived values:
 * - next(): 53 random bits from two outputs, (a >>> 5) * 2^26 + (b >>> 6), divided by 2^53: in [0, 1).
 * - normal(): Box–Muller on u1 = 1 - next() in (0, 1] and u2 = next(); both values of a pair are
 *   used (the second is kept as `spare`, which state() records). The uniform stream is bit-exact on
 *   every engine; normals go through Math.log/sin/cos, which engines may round differently in the last bit.
 * - int(lo, hi): rejection sampling, so every integer in [lo, hi) is exactly equally likely.
 * - fork(label): a new generator keyed by Mix13(key XOR FNV-1a-64(UTF-8 of String(label))), seeded as above.
 *   It depends only on this generator's key and the label, not on how much has been drawn, so
 *   `rng.fork('dropout')` is the same stream wherever it is called, and adding a consumer elsewhere
 *   never shifts it. Use distinct labels for distinct streams (number labels hash as their string).
 */
export class Random {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private key: U64 = [0, 0];
  private spare: number | null = null;

  constructor(seed: number | bigint) {
    this.reseed(seedToU64(seed));
  }

  private reseed(key: U64): void {
    this.key = key;
    let sm = key;
    sm = add64(sm, GOLDEN);
    const a = mix64(sm);
    sm = add64(sm, GOLDEN);
    const b = mix64(sm);
    this.s0 = a[1] | 0;
    this.s1 = a[0] | 0;
    this.s2 = b[1] | 0;
    this.s3 = b[0] | 0;
    this.spare = null;
  }

  /** The next 32 random bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2 ^ s0;
    const s3 = this.s3 ^ s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    this.s0 = s0 ^ s3;
    this.s1 = s1 ^ s2;
    this.s2 = s2 ^ (s1 << 9);
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits (consumes two outputs). */
  next(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / TWO53;
  }

  /** A uniform double in [lo, hi) (redraws in the rare case rounding of lo + (hi - lo) * u reaches hi). */
  uniform(lo = 0, hi = 1): number {
    checkRange('uniform', lo, hi);
    const span = hi - lo;
    for (;;) {
      const v = lo + span * this.next();
      if (v < hi) return v;
    }
  }

  /** 1 with probability p, else 0. */
  bernoulli(p = 0.5): number {
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`bernoulli: p must be in [0, 1], got ${p}`);
    return this.next() < p ? 1 : 0;
  }

  private gauss(): number {
    const spare = this.spare;
    if (spare !== null) {
      this.spare = null;
      return spare;
    }
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A normal sample (Box–Muller, see the class comment). */
  normal(mean = 0, std = 1): number {
    checkNormal('normal', mean, std);
    return mean + std * this.gauss();
  }

  /** A uniform integer in [lo, hi) (hi exclusive); lo, hi and hi - lo must be safe integers. */
  int(lo: number, hi: number): number {
    const n = hi - lo;
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || !(n > 0) || !Number.isSafeInteger(n)) {
      throw new ArgumentError(`int: need safe integers lo < hi with hi - lo < 2^53, got [${lo}, ${hi})`);
    }
    if (n <= TWO32) {
      // Accept x below the largest multiple of n that fits in 32 bits, so x % n is exactly uniform.
      const limit = TWO32 - (TWO32 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return lo + (x % n);
      }
    }
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const x = (this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6);
      if (x < limit) return lo + (x % n);
    }
  }

  /** Shuffles in place (Fisher–Yates from the end: position i swaps with int(0, i + 1)); returns the array. */
  shuffle<A extends MutableArrayLike<unknown>>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
    return array;
  }

  /**
   * k distinct integers from [0, n), in random order (each ordered k-subset equally likely): the first k
   * steps of a forward Fisher–Yates over 0..n-1 (position i swaps with int(i, n)), tracking only the
   * touched positions, so memory is O(k) however large n is.
   */
  sample(k: number, n: number): Int32Array {
    checkCount('sample', 'n', n);
    checkCount('sample', 'k', k, n);
    const out = new Int32Array(k);
    if (k * 4 >= n) {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = i;
      for (let i = 0; i < k; i++) {
        const j = this.int(i, n);
        const t = a[j]!;
        a[j] = a[i]!;
        a[i] = t;
        out[i] = t;
      }
      return out;
    }
    const moved = new Map<number, number>();
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n);
      const vj = moved.get(j) ?? j;
      moved.set(j, moved.get(i) ?? i);
      out[i] = vj;
    }
    return out;
  }

  /** A random permutation of 0..n-1 (the same draws as sample(n, n)). */
  permutation(n: number): Int32Array {
    return this.sample(n, n);
  }

  /** An independent generator derived from this one's key and a label (see the class comment). */
  fork(label: string | number): Random {
    if (typeof label !== 'string' && typeof label !== 'number') {
      throw new ArgumentError(`fork: label must be a string or a number, got ${typeof label}`);
    }
    const h = hashLabel(String(label));
    const child = Object.create(Random.prototype) as Random;
    child.reseed(mix64([(this.key[0] ^ h[0]) >>> 0, (this.key[1] ^ h[1]) >>> 0]));
    return child;
  }

  /**
   * Fills with uniform values in [lo, hi). A Float32Array takes one output per element, u on a 2^-24 grid
   * (exact in float32, so [0, 1) never yields 1); other arrays take uniform(lo, hi) per element. Values are
   * computed in float64 and then stored, so a float32 array can hold fround(hi) when hi is not a float32.
   */
  fillUniform<A extends Float32Array | Float64Array | number[]>(arr: A, lo = 0, hi = 1): A {
    checkRange('fillUniform', lo, hi);
    const span = hi - lo;
    if (arr instanceof Float32Array) {
      for (let i = 0; i < arr.length; i++) {
        let v: number;
        do v = lo + span * ((this.nextUint32() >>> 8) * 5.9604644775390625e-8);
        while (v >= hi);
        arr[i] = v;
      }
    } else {
      for (let i = 0; i < arr.length; i++) arr[i] = this.uniform(lo, hi);
    }
    return arr;
  }

  /** Fills with normal samples: exactly the values of arr.length successive normal(mean, std) calls. */
  fillNormal<A extends Float32Array | Float64Array | number[]>(arr: A, mean = 0, std = 1): A {
    checkNormal('fillNormal', mean, std);
    for (let i = 0; i < arr.length; i++) arr[i] = mean + std * this.gauss();
    return arr;
  }

  /** A snapshot to checkpoint; Random.fromState(rng.state()) continues exactly where rng is. */
  state(): RandomState {
    return {
      algorithm: 'xoshiro128**',
      key: [this.key[0], this.key[1]],
      s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      spare: this.spare,
    };
  }

  /** Restores a generator from state() (for example after JSON round trip of a checkpoint). */
  static fromState(state: RandomState): Random {
    const st = state as Partial<RandomState> | null;
    if (typeof st !== 'object' || st === null || st.algorithm !== 'xoshiro128**') {
      throw new ArgumentError(`Random.fromState: expected { algorithm: 'xoshiro128**', ... }`);
    }
    if (!Array.isArray(st.key) || st.key.length !== 2 || !st.key.every(isUint32)) {
      throw new ArgumentError('Random.fromState: key must be two uint32 numbers [hi, lo]');
    }
    if (!Array.isArray(st.s) || st.s.length !== 4 || !st.s.every(isUint32)) {
      throw new ArgumentError('Random.fromState: s must be four uint32 numbers');
    }
    if (st.s.every((w) => w === 0)) throw new ArgumentError('Random.fromState: an all-zero xoshiro state is invalid');
    if (st.spare !== null && !(typeof st.spare === 'number' && Number.isFinite(st.spare))) {
      throw new ArgumentError('Random.fromState: spare must be null or a finite number');
    }
    const r = Object.create(Random.prototype) as Random;
    r.key = [st.key[0]!, st.key[1]!];
    r.s0 = st.s[0]! | 0;
    r.s1 = st.s[1]! | 0;
    r.s2 = st.s[2]! | 0;
    r.s3 = st.s[3]! | 0;
    r.spare = st.spare ?? null;
    return r;
  }
}

export interface RandomTensorOptions<D extends DType = DType> {
  /** 'uniform' (default): [lo, hi); 'normal': mean, std; 'bernoulli': 1 with probability p, else 0. */
  dist?: 'uniform' | 'normal' | 'bernoulli';
  /** Element type, float32 by default. */
  dtype?: D;
  /** Uniform range [lo, hi); defaults [0, 1). Integer dtypes need integers and draw with rng.int. */
  lo?: number;
  hi?: number;
  mean?: number;
  std?: number;
  p?: number;
}

/**
 * A new contiguous tensor of random values drawn from rng, row-major.
 * - float32/float64: fillUniform / fillNormal straight into the storage.
 * - float16/bfloat16: drawn as float64 (uniform/normal), then rounded to nearest even; note a uniform
 *   draw just below hi can round up to hi at 16-bit precision.
 * - int32/int8/uint8: 'uniform' draws integers in [lo, hi) (hi required); 'normal' is refused.
 * - bool accepts only 'bernoulli'; 'bernoulli' works for every dtype (stores 1 or 0).
 */
export function randomTensor<D extends DType = 'float32'>(
  shape: readonly number[],
  rng: Random,
  opts: RandomTensorOptions<D> = {},
): Tensor<D> {
  const dtype = (opts.dtype ?? 'float32') as D;
  const dist = opts.dist ?? 'uniform';
  const out = zeros(shape, dtype);
  const n = sizeOf(shape);
  const data = out.data;
  if (dist === 'bernoulli') {
    const p = opts.p ?? 0.5;
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`randomTensor: p must be in [0, 1], got ${String(p)}`);
    const one = encodeValue(dtype, 1);
    for (let i = 0; i < n; i++) data[i] = rng.next() < p ? one : 0;
    return out;
  }
  if (dist !== 'uniform' && dist !== 'normal') {
    throw new ArgumentError(`randomTensor: dist must be 'uniform', 'normal' or 'bernoulli', got ${JSON.stringify(dist)}`);
  }
  const fill = (arr: Float32Array | Float64Array): void => {
    if (dist === 'uniform') rng.fillUniform(arr, opts.lo ?? 0, opts.hi ?? 1);
    else rng.fillNormal(arr, opts.mean ?? 0, opts.std ?? 1);
  };
  switch (dtype) {
    case 'float32':
    case 'float64':
      fill(data as Float32Array | Float64Array);
      return out;
    case 'float16':
    case 'bfloat16': {
      const tmp = new Float64Array(n);
      fill(tmp);
      if (dtype === 'float16') encodeFloat16(tmp, data as Uint16Array);
      else encodeBFloat16(tmp, data as Uint16Array);
      return out;
    }
    case 'int32':
    case 'int8':
    case 'uint8': {
      if (dist === 'normal') throw new DTypeError(`randomTensor: 'normal' needs a float dtype, got ${dtype}`);
      const lo = opts.lo ?? 0;
      const hi = opts.hi;
      if (hi === undefined) throw new ArgumentError(`randomTensor: integer dtype ${dtype} needs an explicit hi`);
      if (!(lo < hi) || encodeValue(dtype, lo) !== lo || encodeValue(dtype, hi - 1) !== hi - 1) {
        throw new ArgumentError(`randomTensor: [${lo}, ${hi}) is not a range of integers representable as ${dtype}`);
      }
      for (let i = 0; i < n; i++) data[i] = rng.int(lo, hi);
      return out;
    }
    default:
      throw new DTypeError(`randomTensor: dtype ${dtype} supports only dist 'bernoulli'`);
  }
}
