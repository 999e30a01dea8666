// @sparse/tensor/testing: seeded inputs and an independent float64 brute force for checking any
// gemm-shaped kernel (the TypeScript references here, native or CUDA ones in other packages).
// Framework-free: checks return a message instead of asserting, so any test runner can use them.
import type { GemmArgs } from './kernels/types.js';
import { Random } from './random.js';

/** A uniform [0, 1) source drawn from the project's seeded Random, so fast-check seeds replay exactly. */
export function seededUniform(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

/** Uniform values in [-1, 1). */
export function randomArray(length: number, next: () => number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = next() * 2 - 1;
  return out;
}

/** The expected C array of a product, with the error scale of each element and which elements C covers. */
export interface GemmExpected {
  /** Expected value of every element of the C array (elements outside C keep their old value). */
  want: Float64Array;
  /** |alpha| * sum_p |a b| + |beta c|: the magnitude float32 rounding errors scale with. */
  scale: Float64Array;
  /** 1 where the element is part of the logical C. */
  inC: Uint8Array;
}

/**
 * C = alpha * op(A) op(B) + beta * C over the whole array `c` with float64 sums; getA(i, p) and
 * getB(p, j) read the logical operands. alpha = 0 reads neither and beta = 0 ignores C, as in BLAS.
 */
export function denseBruteForce(
  m: number,
  n: number,
  k: number,
  alpha: number,
  getA: (i: number, p: number) => number,
  getB: (p: number, j: number) => number,
  beta: number,
  c: ArrayLike<number>,
  cOffset: number,
  ldc: number,
): GemmExpected {
  const want = Float64Array.from(c);
  const scale = new Float64Array(c.length);
  const inC = new Uint8Array(c.length);
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
      const old = c[at]!;
      want[at] = alpha * s + (beta === 0 ? 0 : beta * old);
      scale[at] = Math.abs(alpha) * abs + (beta === 0 ? 0 : Math.abs(beta * old));
      inC[at] = 1;
    }
  }
  return { want, scale, inC };
}

export interface GemmCaseParams {
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

/** A gemm call with padded leading dimensions, offsets, and 3 elements of slack after every array. */
export function makeGemmCase(p: GemmCaseParams): GemmCase {
  const next = seededUniform(p.seed);
  const [aRows, aCols] = p.transA ? [p.k, p.m] : [p.m, p.k];
  const [bRows, bCols] = p.transB ? [p.n, p.k] : [p.k, p.n];
  const lda = Math.max(1, aCols) + p.pads[0];
  const ldb = Math.max(1, bCols) + p.pads[1];
  const ldc = Math.max(1, p.n) + p.pads[2];
  // trailing slack: a kernel that writes past C's last row shows up as a change there
  const a = randomArray(p.offsets[0] + aRows * lda + 3, next);
  const b = randomArray(p.offsets[1] + bRows * ldb + 3, next);
  const c = randomArray(p.offsets[2] + p.m * ldc + 3, next);
  if (p.poisonC && p.beta === 0) {
    for (let i = 0; i < p.m; i++) for (let j = 0; j < p.n; j++) c[p.offsets[2] + i * ldc + j] = j % 2 ? NaN : Infinity;
  }
  const { transA, transB, m, n, k, alpha, beta } = p;
  const args: GemmArgs = { transA, transB, m, n, k, alpha, a, aOffset: p.offsets[0], lda, b, bOffset: p.offsets[1], ldb, beta, c, cOffset: p.offsets[2], ldc };
  return { args, before: c.slice() };
}

/** The float64 brute force of a gemm case, written independently of every kernel under test. */
export function gemmBruteForce({ args, before }: GemmCase): GemmExpected {
  const { transA, transB, a, aOffset, lda, b, bOffset, ldb } = args;
  const getA = (i: number, p: number) => (transA ? a[aOffset + p * lda + i]! : a[aOffset + i * lda + p]!);
  const getB = (p: number, j: number) => (transB ? b[bOffset + j * ldb + p]! : b[bOffset + p * ldb + j]!);
  return denseBruteForce(args.m, args.n, args.k, args.alpha, getA, getB, args.beta, before, args.cOffset, args.ldc);
}

/**
 * A float32 sum of k products is within about k * 2^-24 * scale of the exact value; this allows
 * 1e-6 * (k + 8) * scale, a few times that bound, plus 1e-30.
 */
export function gemmTolerance(k: number, scale: number): number {
  return 1e-6 * (k + 8) * scale + 1e-30;
}

/**
 * The first element of C outside `tolerance` of the brute force, or any element outside C that
 * changed at all (bit for bit), as a message; null when everything matches.
 */
export function gemmMismatch(
  got: Float32Array,
  expected: GemmExpected,
  before: Float32Array,
  tolerance: (scale: number) => number,
  label = '',
): string | null {
  const { want, scale, inC } = expected;
  for (let i = 0; i < got.length; i++) {
    if (!inC[i]) {
      if (!Object.is(got[i], before[i])) return `${label}: element ${i} outside C changed from ${before[i]} to ${got[i]}`;
      continue;
    }
    const err = Math.abs(got[i]! - want[i]!);
    const tol = tolerance(scale[i]!);
    if (!(err <= tol)) return `${label}: C element ${i} is ${got[i]}, expected ${want[i]} (error ${err}, tolerance ${tol})`;
  }
  return null;
}

/**
 * The element with the largest relative error |got - want| / (1 + |want|) as a message when that error
 * is above `tolerance` (or a length mismatch, or a NaN where a number is expected); null when every
 * element is within it.
 */
export function relativeMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number, label = ''): string | null {
  if (got.length !== want.length) return `${label}: ${got.length} values, expected ${want.length}`;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  if (worst <= tolerance) return null;
  return `${label}: element ${at} is ${got[at]}, expected ${want[at]} (relative error ${worst}, tolerance ${tolerance})`;
}

/**
 * Brute-force top-k for checking selections: the indices of the k largest values among the allowed
 * ones (ties to the lower index), sorted increasing. A sort of every index, nothing clever.
 */
export function bruteTopK(values: ArrayLike<number>, k: number, allowed: (index: number) => boolean = () => true): number[] {
  return Array.from(values, (v, q) => [v, q] as const)
    .filter(([, q]) => allowed(q))
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map((e) => e[1])
    .sort((a, b) => a - b);
}
