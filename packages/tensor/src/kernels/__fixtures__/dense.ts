// Test-only helpers: a seeded filler for Float32Arrays and an independent float64 brute-force
// gemm to compare kernels against. Nothing here is exported from the package.
import { expect } from 'vitest';

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

/** Uniform values in [-1, 1), exactly representable as float32. */
export function randomArray(length: number, next: () => number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = next() * 2 - 1;
  return out;
}

export interface Strided {
  data: Float32Array;
  offset: number;
  ld: number;
}

/**
 * Expected result of C = alpha * opA * opB + beta * C over the whole array c, with float64 sums,
 * plus the error scale of each element (|alpha| * sum |a||b| + |beta c|) and which elements C covers.
 * getA(i, p) / getB(p, j) read the logical operands.
 */
export function bruteForce(
  m: number,
  n: number,
  k: number,
  alpha: number,
  getA: (i: number, p: number) => number,
  getB: (p: number, j: number) => number,
  beta: number,
  c: Float32Array,
  cOffset: number,
  ldc: number,
): { want: Float64Array; scale: Float64Array; inC: Uint8Array } {
  const want = Float64Array.from(c);
  const scale = new Float64Array(c.length);
  const inC = new Uint8Array(c.length);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let abs = 0;
      for (let p = 0; p < k; p++) {
        const t = getA(i, p) * getB(p, j);
        s += t;
        abs += Math.abs(t);
      }
      const at = cOffset + i * ldc + j;
      const old = c[at]!;
      want[at] = beta === 0 ? alpha * s : alpha * s + beta * old;
      scale[at] = Math.abs(alpha) * abs + (beta === 0 ? 0 : Math.abs(beta * old));
      inC[at] = 1;
    }
  }
  return { want, scale, inC };
}

/** Elements inside C match within float32 rounding of the float64 result; everything else is untouched. */
export function expectClose(got: Float32Array, expected: ReturnType<typeof bruteForce>, before: Float32Array, what = ''): void {
  const { want, scale, inC } = expected;
  for (let i = 0; i < got.length; i++) {
    if (inC[i]) {
      const tol = 1e-6 * scale[i]! + 1e-12;
      if (!(Math.abs(got[i]! - want[i]!) <= tol)) {
        expect.fail(`${what} element ${i}: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
      }
    } else if (!Object.is(got[i], before[i])) {
      expect.fail(`${what} element ${i} outside C changed: ${before[i]} -> ${got[i]}`);
    }
  }
}
