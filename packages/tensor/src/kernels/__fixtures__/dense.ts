// Test-only helpers over the shared checks in ../../testing.ts (also published as @sparse/tensor/testing).
import { expect } from 'vitest';
import { denseBruteForce, type GemmExpected } from '../../testing.js';

export { randomArray, seededUniform as rng } from '../../testing.js';

/** The float64 brute force of C = alpha * opA * opB + beta * C over the whole array c. */
export const bruteForce = denseBruteForce;

/** Elements inside C match within float32 rounding of the float64 result; everything else is untouched. */
export function expectClose(got: Float32Array, expected: GemmExpected, before: Float32Array, what = ''): void {
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
