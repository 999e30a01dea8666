import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeError } from '../errors.js';
import { Random } from '../random.js';
import { tensor, transpose, type Tensor } from '../tensor.js';
import { qr, svd, symmetricEigen } from './index.js';
import { mat } from './matrix.js';
import { symmetricEigenMat } from './symmetric-eigen.js';
import { fromM, identity, maxAbsDiff, mul, randomM, toM, tr, type M } from './__fixtures__/nested.js';

// More nested-array helpers, as independent of the library as those of the fixture.

function toV(t: Tensor): number[] {
  return Array.from({ length: t.shape[0]! }, (_, i) => t.data[t.offset + i * t.stride[0]!]!);
}

function sub(a: M, b: M): M {
  return a.map((row, i) => row.map((x, j) => x - b[i]![j]!));
}

/** Frobenius norm, computed in units of max|a_ij| so 1e300-sized entries do not overflow. */
function frob(a: M): number {
  const flat = a.flat();
  const big = flat.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return big === 0 ? 0 : big * Math.sqrt(flat.reduce((s, x) => s + (x / big) ** 2, 0));
}

/** (B + B^T) / 2 for a random Gaussian B. */
function randomSymmetric(n: number, rng: Random): M {
  const b = randomM(n, n, rng);
  return b.map((row, i) => row.map((x, j) => 0.5 * (x + b[j]![i]!)));
}

/** A random orthogonal matrix: the Q factor of a square Gaussian matrix. */
function randomOrthogonal(n: number, rng: Random): M {
  return toM(qr(fromM(randomM(n, n, rng))).q);
}

/** Q diag(lambda) Q^T for a random orthogonal Q. */
function withSpectrum(lambda: number[], rng: Random): M {
  const q = randomOrthogonal(lambda.length, rng);
  return mul(
    q.map((row) => row.map((x, j) => x * lambda[j]!)),
    tr(q),
  );
}

/** The Gram matrix W^T W of a random rows x cols W (rank min(rows, cols)). */
function randomGram(rows: number, cols: number, rng: Random): M {
  const w = randomM(rows, cols, rng);
  return mul(tr(w), w);
}

const descending = (xs: number[]): number[] => [...xs].sort((x, y) => y - x);

/**
 * The decomposition of a, checked on the spot: shapes, values non-increasing, V^T V = I, A = V diag(values) V^T
 * and A v_j = lambda_j v_j, all to `tol` relative to ||A||_F (absolute when A = 0).
 */
function decomposeAndCheck(a: M, tol = 1e-13): { values: number[]; V: M } {
  const n = a.length;
  const r = symmetricEigen(fromM(a));
  expect(r.values.shape).toEqual([n]);
  expect(r.vectors.shape).toEqual([n, n]);
  expect(r.values.dtype).toBe('float64');
  expect(r.vectors.dtype).toBe('float64');
  const values = toV(r.values);
  const V = toM(r.vectors);
  for (let j = 1; j < n; j++) expect(values[j]!).toBeLessThanOrEqual(values[j - 1]!);
  const scale = Math.max(frob(a), Number.MIN_VALUE);
  const bound = tol * Math.max(1, n);
  expect(maxAbsDiff(mul(tr(V), V), identity(n))).toBeLessThan(bound);
  const recon = mul(
    V.map((row) => row.map((x, j) => x * values[j]!)),
    tr(V),
  );
  expect(frob(sub(a, recon)) / scale).toBeLessThan(bound);
  for (let j = 0; j < n; j++) {
    const v = V.map((row) => row[j]!);
    const av = a.map((row) => row.reduce((s, x, k) => s + x * v[k]!, 0));
    const residual = frob([av.map((x, k) => x - values[j]! * v[k]!)]);
    expect(residual / scale).toBeLessThan(bound);
  }
  return { values, V };
}

const sizeAndSeed = fc.record({ n: fc.integer({ min: 1, max: 40 }), seed: fc.integer({ min: 0, max: 1e6 }) });

describe('symmetricEigen: reconstruction and orthogonality', () => {
  it('A = V diag(values) V^T, V^T V = I and A v = lambda v for random symmetric matrices (n = 1..40)', () => {
    fc.assert(
      fc.property(sizeAndSeed, ({ n, seed }) => {
        decomposeAndCheck(randomSymmetric(n, new Random(seed)));
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('handles rows that need no reflection (partly tridiagonal input) mixed with rows that do', () => {
    fc.assert(
      fc.property(sizeAndSeed, fc.integer({ min: 0, max: 2 ** 30 }), ({ n, seed }, pattern) => {
        const a = randomSymmetric(n, new Random(seed));
        // Rows whose bit is set get zeros beyond the superdiagonal (and the mirrored column entries).
        for (let k = 0; k < n; k++) {
          if (((pattern >>> k % 30) & 1) === 0) continue;
          for (let j = k + 2; j < n; j++) a[k]![j] = a[j]![k] = 0;
        }
        decomposeAndCheck(a);
      }),
      { seed: 42, numRuns: 30 },
    );
  });

  it('keeps the eigenvectors orthonormal for repeated eigenvalues: Q diag(lambda) Q^T with repeats', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.array(fc.constantFrom(-2, 0, 1, 3), { minLength: 30, maxLength: 30 }),
        (n, seed, pool) => {
          const lambda = pool.slice(0, n);
          const { values } = decomposeAndCheck(withSpectrum(lambda, new Random(seed)));
          const ref = descending(lambda);
          values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-12 * n));
        },
      ),
      { seed: 42, numRuns: 30 },
    );
  });

  it('handles the Wilkinson matrix W21+ (pairs of eigenvalues agreeing to 15 digits) and a larger clustered case', () => {
    const w21 = Array.from({ length: 21 }, (_, i) => Array.from({ length: 21 }, (_, j) => (i === j ? Math.abs(10 - i) : Math.abs(i - j) === 1 ? 1 : 0)));
    const { values } = decomposeAndCheck(w21);
    // The two largest eigenvalues of W21+ (10.746194182903...) agree to about 1e-14.
    expect(values[0]!).toBeCloseTo(10.746194182903393, 12);
    expect(values[1]!).toBeCloseTo(10.746194182903322, 12);
    const lambda = Array.from({ length: 90 }, (_, i) => (i < 40 ? 1 : i < 60 ? 1 + 1e-12 * i : i - 70));
    const got = decomposeAndCheck(withSpectrum(lambda, new Random(5)));
    const ref = descending(lambda);
    got.values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-12));
  });

  it('factors rank-deficient Gram matrices W^T W (W with fewer rows than columns): the extra eigenvalues are ~0', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, seed, frac) => {
        const rows = Math.max(1, Math.floor(frac * (n - 1))); // 1 .. n - 1 rows: rank rows < n
        const a = randomGram(rows, n, new Random(seed));
        const { values } = decomposeAndCheck(a);
        const top = values[0]!;
        for (let j = rows; j < n; j++) expect(Math.abs(values[j]!)).toBeLessThan(1e-13 * n * top);
        for (let j = 0; j < rows; j++) expect(values[j]!).toBeGreaterThan(1e-8 * top);
      }),
      { seed: 42, numRuns: 30 },
    );
  });

  it('returns zeros and an orthonormal basis for the zero matrix, and [[1]] for a 1x1', () => {
    for (const n of [1, 2, 5, 13]) {
      const { values, V } = decomposeAndCheck(Array.from({ length: n }, () => new Array<number>(n).fill(0)));
      expect(values).toEqual(new Array<number>(n).fill(0));
      expect(maxAbsDiff(mul(tr(V), V), identity(n))).toBe(0);
    }
    const one = symmetricEigen(fromM([[-3.5]]));
    expect(toV(one.values)).toEqual([-3.5]);
    expect(Math.abs(toM(one.vectors)[0]![0]!)).toBe(1);
    const empty = symmetricEigen(tensor(new Float64Array(0), [0, 0]));
    expect(empty.values.shape).toEqual([0]);
    expect(empty.vectors.shape).toEqual([0, 0]);
  });

  it('returns the sorted diagonal of a diagonal matrix, with signed unit vectors as eigenvectors', () => {
    const diag = [3, -1, 7, 0, 3, -10, 2.5];
    const n = diag.length;
    const a = diag.map((x, i) => diag.map((_, j) => (i === j ? x : 0)));
    const { values, V } = decomposeAndCheck(a);
    expect(values).toEqual(descending(diag));
    for (let j = 0; j < n; j++) {
      const col = V.map((row) => row[j]!);
      expect(col.filter((x) => x !== 0)).toHaveLength(1);
      const i = col.findIndex((x) => x !== 0);
      expect(Math.abs(col[i]!)).toBe(1);
      expect(diag[i]).toBe(values[j]);
    }
  });

  it('copes with widely different scales', () => {
    const rng = new Random(11);
    const a = randomSymmetric(17, rng);
    const base = symmetricEigen(fromM(a));
    // Power-of-two scalings are exact, so the decomposition scales exactly, far into over- and underflow.
    for (const p of [600, -600, 1000, -960]) {
      const s = 2 ** p;
      const scaled = symmetricEigen(fromM(a.map((row) => row.map((x) => x * s))));
      expect(toV(scaled.values)).toEqual(toV(base.values).map((x) => x * s));
      expect(toM(scaled.vectors)).toEqual(toM(base.vectors));
    }
    // A graded matrix: entries from 1e-12 to 1e12 (D S D with D = diag(10^-6 .. 10^6)); and huge / tiny values.
    const g = Array.from({ length: 13 }, (_, i) => 10 ** (i - 6));
    const s = randomSymmetric(13, rng);
    decomposeAndCheck(s.map((row, i) => row.map((x, j) => x * g[i]! * g[j]!)));
    decomposeAndCheck(a.map((row) => row.map((x) => x * 1e300)));
    decomposeAndCheck(a.map((row) => row.map((x) => x * 1e-300)));
    // A block diagonal matrix with blocks at scale 1e8 and 1e-8: the small block's eigenvalues survive.
    const big = withSpectrum([5e8, -2e8, 1e8], rng);
    const small = withSpectrum([4e-8, 3e-8, -1e-8], rng);
    const block = Array.from({ length: 6 }, (_, i) => Array.from({ length: 6 }, (_, j) => (i < 3 && j < 3 ? big[i]![j]! : i >= 3 && j >= 3 ? small[i - 3]![j - 3]! : 0)));
    const { values } = decomposeAndCheck(block);
    const ref = [5e8, 1e8, 4e-8, 3e-8, -1e-8, -2e8];
    values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-14 * 5e8 * 6));
  });
});

describe('symmetricEigen: eigenvalues against independent references', () => {
  it('equal the singular values of the Jacobi svd on positive semidefinite Gram matrices', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1e6 }), (n, rows, seed) => {
        const a = randomGram(rows, n, new Random(seed));
        const values = toV(symmetricEigen(fromM(a)).values);
        const s = toV(svd(fromM(a)).s);
        const top = Math.max(s[0]!, Number.MIN_VALUE);
        values.forEach((x, i) => expect(Math.abs(x - s[i]!) / top).toBeLessThan(1e-10));
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('equal the closed form of a 2x2, and A v = lambda v there', () => {
    // Subnormal entries are flushed to 0: the checks' own arithmetic (V diag(values) V^T) loses all its
    // relative accuracy there.
    const entry = fc.double({ min: -10, max: 10, noNaN: true }).map((x) => (Math.abs(x) < 1e-200 ? 0 : x));
    fc.assert(
      fc.property(
        entry,
        entry,
        entry,
        (x, y, z) => {
          const mean = (x + z) / 2;
          const radius = Math.hypot((x - z) / 2, y);
          const { values } = decomposeAndCheck([
            [x, y],
            [y, z],
          ]);
          const bound = 1e-14 * Math.max(Math.abs(x), Math.abs(y), Math.abs(z));
          expect(Math.abs(values[0]! - (mean + radius))).toBeLessThanOrEqual(bound);
          expect(Math.abs(values[1]! - (mean - radius))).toBeLessThanOrEqual(bound);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('equal lambda for an indefinite Q diag(lambda) Q^T with a random orthogonal Q', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
        const rng = new Random(seed);
        const lambda = Array.from({ length: n }, () => rng.uniform(-5, 5));
        const { values } = decomposeAndCheck(withSpectrum(lambda, rng));
        const ref = descending(lambda);
        values.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-13 * n * 5));
      }),
      { seed: 42, numRuns: 30 },
    );
  });
});

describe('symmetricEigen: dtypes, views and the Mat-level entry', () => {
  it('returns float64 for float64 input and float32 otherwise; reads strided views', () => {
    const a = randomSymmetric(6, new Random(3));
    const f32 = symmetricEigen(tensor(Float32Array.from(a.flat()), [6, 6]));
    expect(f32.values.dtype).toBe('float32');
    expect(f32.vectors.dtype).toBe('float32');
    const f64 = symmetricEigen(fromM(a));
    toV(f32.values).forEach((x, i) => expect(Math.abs(x - toV(f64.values)[i]!)).toBeLessThan(1e-5));
    const ints = symmetricEigen(tensor(new Int32Array([2, 1, 1, 2]), [2, 2]));
    expect(ints.values.dtype).toBe('float32');
    expect(toV(ints.values)).toEqual([3, 1]);
    // A transposed view of a symmetric matrix is the same matrix, read through other strides.
    const view = symmetricEigen(transpose(fromM(a)));
    expect(toV(view.values)).toEqual(toV(f64.values));
  });

  it('symmetricEigenMat leaves its input alone and agrees with symmetricEigen', () => {
    const a = randomSymmetric(9, new Random(8));
    const m = mat(9, 9, Float64Array.from(a.flat()));
    const before = Float64Array.from(m.data);
    const r = symmetricEigenMat(m);
    expect(m.data).toEqual(before);
    const t = symmetricEigen(fromM(a));
    expect(Array.from(r.values)).toEqual(toV(t.values));
    expect(Array.from(r.vectors.data)).toEqual(toM(t.vectors).flat());
    expect(() => symmetricEigenMat(mat(2, 3))).toThrow(ArgumentError);
  });

  it('decomposes the symmetric part of a nearly symmetric input within symmetryTolerance', () => {
    const a = randomSymmetric(5, new Random(4));
    const skew = a.map((row, i) => row.map((x, j) => x + (i < j ? 1e-10 : i > j ? -1e-10 : 0)));
    const r = symmetricEigen(fromM(skew));
    const ref = symmetricEigen(fromM(a));
    toV(r.values).forEach((x, i) => expect(Math.abs(x - toV(ref.values)[i]!)).toBeLessThan(1e-13));
    // float32 input gets a looser default; an explicit tolerance overrides the default.
    const f32 = a.map((row, i) => row.map((x, j) => x + (i < j ? 1e-6 : 0)));
    expect(() => symmetricEigen(tensor(Float32Array.from(f32.flat()), [5, 5]))).not.toThrow();
    expect(() => symmetricEigen(fromM(f32))).toThrow(ArgumentError);
    expect(() => symmetricEigen(fromM(f32), { symmetryTolerance: 1e-4 })).not.toThrow();
  });
});

describe('symmetricEigen: errors', () => {
  it('throws ArgumentError naming the problem for non-square, asymmetric and non-finite input', () => {
    expect(() => symmetricEigen(fromM([[1, 2, 3], [2, 1, 0]]))).toThrow(ArgumentError);
    expect(() => symmetricEigen(fromM([[1, 2, 3], [2, 1, 0]]))).toThrow(/symmetricEigen: a must be square, got shape \[2, 3\]/);
    expect(() => symmetricEigen(fromM([[1, 2], [3, 1]]))).toThrow(ArgumentError);
    expect(() => symmetricEigen(fromM([[1, 2], [3, 1]]))).toThrow(/symmetricEigen: a is not symmetric: \|a\[0, 1\] - a\[1, 0\]\| = 1/);
    expect(() => symmetricEigen(fromM([[1, NaN], [NaN, 1]]))).toThrow(ArgumentError);
    expect(() => symmetricEigen(fromM([[1, NaN], [NaN, 1]]))).toThrow(/symmetricEigen: a\[0, 1\] is NaN; entries must be finite/);
    expect(() => symmetricEigen(fromM([[Infinity]]))).toThrow(/is Infinity; entries must be finite/);
    expect(() => symmetricEigenMat(mat(1, 1, new Float64Array([NaN])))).toThrow(/symmetricEigen: a\[0, 0\] is NaN/);
    expect(() => symmetricEigen(fromM([[1]]), { symmetryTolerance: -1 })).toThrow(/symmetryTolerance must be a finite non-negative number/);
    expect(() => symmetricEigen(tensor(new Float64Array(3), [3]))).toThrow(ShapeError);
  });
});
