import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeError } from '../errors.js';
import { Random } from '../random.js';
import { tensor, type Tensor } from '../tensor.js';
import { cholesky, choleskyInverse, triangularInverse } from './index.js';
import { fromM, maxAbsDiff, mul, toM, tr, type M } from './__fixtures__/nested.js';

// Plain nested-array helpers, independent of the library's internals.

/** Gauss–Jordan elimination with partial pivoting: the textbook inverse, as the reference. */
function gaussJordanInverse(a: M): M {
  const n = a.length;
  const w = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(w[r]![c]!) > Math.abs(w[p]![c]!)) p = r;
    [w[c], w[p]] = [w[p]!, w[c]!];
    const piv = w[c]![c]!;
    for (let j = 0; j < 2 * n; j++) w[c]![j] = w[c]![j]! / piv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = w[r]![c]!;
      for (let j = 0; j < 2 * n; j++) w[r]![j] = w[r]![j]! - f * w[c]![j]!;
    }
  }
  return w.map((row) => row.slice(n));
}

/** A random SPD matrix B B^T + eps I. */
function randomSpd(n: number, rng: Random, eps = 0.1): M {
  const b = Array.from({ length: n }, () => Array.from({ length: n + 2 }, () => rng.normal()));
  const a = mul(b, tr(b));
  return a.map((row, i) => row.map((x, j) => x + (i === j ? eps : 0)));
}

describe('cholesky', () => {
  it('gives a lower factor with L L^T = a and a positive diagonal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
        const a = randomSpd(n, new Random(seed));
        const L = toM(cholesky(fromM(a)));
        L.forEach((row, i) => row.forEach((x, j) => (j > i ? expect(x).toBe(0) : j === i && expect(x).toBeGreaterThan(0))));
        expect(maxAbsDiff(mul(L, tr(L)), a)).toBeLessThan(1e-10 * Math.max(1, ...a.flat().map(Math.abs)));
      }),
      { numRuns: 40 },
    );
  });

  it('gives the upper factor U = L^T with upper: true', () => {
    const a = randomSpd(5, new Random(3));
    const L = toM(cholesky(fromM(a)));
    const U = toM(cholesky(fromM(a), { upper: true }));
    expect(maxAbsDiff(U, tr(L))).toBe(0);
    expect(maxAbsDiff(mul(tr(U), U), a)).toBeLessThan(1e-10);
  });

  it('matches the closed form on a 2x2 matrix', () => {
    // [[4, 2], [2, 5]] = L L^T with L = [[2, 0], [1, 2]].
    expect(toM(cholesky(fromM([[4, 2], [2, 5]])))).toEqual([[2, 0], [1, 2]]);
  });

  it('returns float32 for float32 input and float64 for float64', () => {
    const a = [[4, 2], [2, 5]];
    expect(cholesky(fromM(a)).dtype).toBe('float64');
    expect(cholesky(tensor(Float32Array.from(a.flat()), [2, 2])).dtype).toBe('float32');
  });

  it('rejects non-positive-definite, non-square and non-finite input', () => {
    expect(() => cholesky(fromM([[1, 2], [2, 1]]))).toThrow(ArgumentError);
    expect(() => cholesky(fromM([[1, 2], [2, 1]]))).toThrow(/pivot 1/);
    expect(() => cholesky(fromM([[0]]))).toThrow(ArgumentError);
    expect(() => cholesky(fromM([[1, 2, 3], [4, 5, 6]]))).toThrow(ShapeError);
    expect(() => cholesky(fromM([[NaN]]))).toThrow(ArgumentError);
  });
});

describe('choleskyInverse', () => {
  it('equals the Gauss–Jordan inverse, from the lower or the upper factor', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
        const a = randomSpd(n, new Random(seed), 0.5);
        const ref = gaussJordanInverse(a);
        const scale = Math.max(1, ...ref.flat().map(Math.abs));
        const fromLower = toM(choleskyInverse(cholesky(fromM(a))));
        const fromUpper = toM(choleskyInverse(cholesky(fromM(a), { upper: true }), { upper: true }));
        expect(maxAbsDiff(fromLower, ref)).toBeLessThan(1e-9 * scale);
        expect(maxAbsDiff(fromUpper, ref)).toBeLessThan(1e-9 * scale);
        expect(maxAbsDiff(fromLower, tr(fromLower))).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('rejects a factor with a zero on the diagonal', () => {
    expect(() => choleskyInverse(fromM([[1, 0], [3, 0]]))).toThrow(ArgumentError);
  });
});

describe('triangularInverse', () => {
  it('equals the Gauss–Jordan inverse of lower and upper triangular matrices', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
        const rng = new Random(seed);
        const lower = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (j < i ? rng.normal() : j === i ? 0.5 + rng.uniform() : 0)));
        const ref = gaussJordanInverse(lower);
        const scale = Math.max(1, ...ref.flat().map(Math.abs));
        const inv = toM(triangularInverse(fromM(lower)));
        expect(maxAbsDiff(inv, ref)).toBeLessThan(1e-10 * scale);
        inv.forEach((row, i) => row.forEach((x, j) => j > i && expect(x).toBe(0)));
        expect(maxAbsDiff(toM(triangularInverse(fromM(tr(lower)), { upper: true })), tr(ref))).toBeLessThan(1e-10 * scale);
      }),
      { numRuns: 40 },
    );
    expect(() => triangularInverse(fromM([[1, 0], [2, 0]]))).toThrow(ArgumentError);
    expect(() => triangularInverse(fromM([[1, 2, 3]]))).toThrow(ShapeError);
  });
});
