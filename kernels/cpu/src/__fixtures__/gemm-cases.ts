// Test-only helpers: seeded gemm cases with padded leading dimensions, offsets and slack around C,
// and an independent float64 brute force to check any gemm kernel against.
import { expect } from 'vitest';
import type { GemmArgs } from '@sparse/tensor';

/** mulberry32: a tiny seeded generator, so fast-check controls (and replays) every array's contents. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(length: number, next: () => number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = next() * 2 - 1;
  return out;
}

export interface CaseParams {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  /** Element offsets of A, B, C inside their arrays. */
  offsets: [number, number, number];
  /** How much lda, ldb, ldc exceed the minimum. */
  pads: [number, number, number];
  seed: number;
  /** With beta = 0, fill C with NaN/Inf first: BLAS says C is not read then. */
  poisonC: boolean;
}

export interface GemmCase {
  args: GemmArgs;
  /** C before the call. */
  before: Float32Array;
}

export function makeCase(p: CaseParams): GemmCase {
  const next = rng(p.seed);
  const [aRows, aCols] = p.transA ? [p.k, p.m] : [p.m, p.k];
  const [bRows, bCols] = p.transB ? [p.n, p.k] : [p.k, p.n];
  const lda = Math.max(1, aCols) + p.pads[0];
  const ldb = Math.max(1, bCols) + p.pads[1];
  const ldc = Math.max(1, p.n) + p.pads[2];
  // Trailing slack of 3 elements: a kernel that writes past C's last row shows up as a change there.
  const a = randomArray(p.offsets[0] + aRows * lda + 3, next);
  const b = randomArray(p.offsets[1] + bRows * ldb + 3, next);
  const c = randomArray(p.offsets[2] + p.m * ldc + 3, next);
  if (p.poisonC && p.beta === 0) {
    for (let i = 0; i < p.m; i++) for (let j = 0; j < p.n; j++) c[p.offsets[2] + i * ldc + j] = j % 2 ? NaN : Infinity;
  }
  const args: GemmArgs = {
    transA: p.transA,
    transB: p.transB,
    m: p.m,
    n: p.n,
    k: p.k,
    alpha: p.alpha,
    a,
    aOffset: p.offsets[0],
    lda,
    b,
    bOffset: p.offsets[1],
    ldb,
    beta: p.beta,
    c,
    cOffset: p.offsets[2],
    ldc,
  };
  return { args, before: c.slice() };
}

export interface Expected {
  /** Expected value of every element of the C array (untouched ones keep their old value). */
  want: Float64Array;
  /** |alpha| * sum_p |a b| + |beta c|: the magnitude float32 rounding errors scale with. */
  scale: Float64Array;
  /** 1 where the element is part of the logical C. */
  inC: Uint8Array;
}

/** The float64 triple loop, written independently of every kernel under test. */
export function bruteForce({ args, before }: GemmCase): Expected {
  const { transA, transB, m, n, k, alpha, a, aOffset, lda, b, bOffset, ldb, beta, cOffset, ldc } = args;
  const getA = (i: number, p: number) => (transA ? a[aOffset + p * lda + i]! : a[aOffset + i * lda + p]!);
  const getB = (p: number, j: number) => (transB ? b[bOffset + j * ldb + p]! : b[bOffset + p * ldb + j]!);
  const want = Float64Array.from(before);
  const scale = new Float64Array(before.length);
  const inC = new Uint8Array(before.length);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let abs = 0;
      if (alpha !== 0) {
        for (let p = 0; p < k; p++) {
          const t = getA(i, p) * getB(p, j);
          s += t;
          abs += Math.abs(t);
        }
      }
      const at = cOffset + i * ldc + j;
      const old = before[at]!;
      want[at] = alpha * s + (beta === 0 ? 0 : beta * old);
      scale[at] = Math.abs(alpha) * abs + (beta === 0 ? 0 : Math.abs(beta * old));
      inC[at] = 1;
    }
  }
  return { want, scale, inC };
}

/**
 * Tolerance: a float32 sum of k products is within about k * 2^-24 * scale of the exact value
 * (scale as in Expected); we allow 1e-6 * (k + 8) * scale, a few times that bound, plus 1e-30.
 */
export function tolerance(k: number, scale: number): number {
  return 1e-6 * (k + 8) * scale + 1e-30;
}

/** Elements of C within tolerance of the float64 result; everything outside C bit-for-bit unchanged. */
export function expectMatches(got: Float32Array, expected: Expected, k: number, before: Float32Array, label: string): void {
  const { want, scale, inC } = expected;
  for (let i = 0; i < got.length; i++) {
    if (!inC[i]) {
      if (!Object.is(got[i], before[i])) {
        expect.fail(`${label}: element ${i} outside C changed from ${before[i]} to ${got[i]}`);
      }
      continue;
    }
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tolerance(k, scale[i]!))) {
      expect.fail(`${label}: C element ${i} is ${got[i]}, expected ${want[i]} (error ${err}, tolerance ${tolerance(k, scale[i]!)})`);
    }
  }
}
