// The native float64 Cholesky factorization and lower-triangular inverse against a float64 brute force
// (L L^T = A, L X = I) and against the reference kernels, at sizes around the 96-wide factorization
// blocks and the 8 x 16 micro-tiles (1, 7, 8, 17, 95, 96, 97, 191, 193, 300), with leading dimensions
// wider than n and offsets; the failing pivot and the singular diagonal are reported as the reference
// reports them; bad arguments get the reference's typed errors before native code runs.
import { ArgumentError, DTypeError, REFERENCE_BACKEND, ShapeError, getKernel } from '@sparse/tensor';
import { expect, it } from 'vitest';
import { rng } from './__fixtures__/gemm-cases.js';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { choleskyF64KernelFrom, triangularInverseF64KernelFrom } from './linalg-f64.js';

const suite = nativeSuite(status.available && typeof status.addon.choleskyF64 !== 'function' ? 'this addon build has no choleskyF64' : undefined);

/** A random symmetric positive definite n x n matrix (B B^T / n + 0.1 I), stored at offset with leading dimension ld. */
function spd(n: number, ld: number, offset: number, seed: number): Float64Array {
  const next = rng(seed);
  const b = Float64Array.from({ length: n * n }, () => next() * 2 - 1);
  const a = new Float64Array(offset + Math.max(0, n - 1) * ld + n + 3).fill(Number.NaN);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += b[i * n + k]! * b[j * n + k]!;
      a[offset + i * ld + j] = s / n + (i === j ? 0.1 : 0);
    }
  }
  return a;
}

const SIZES = [1, 7, 8, 17, 95, 96, 97, 191, 193, 300];

suite('native float64 linear algebra', () => {
  const addon = status.available ? status.addon : undefined;
  const chol = () => choleskyF64KernelFrom(addon!);
  const inv = () => triangularInverseF64KernelFrom(addon!);

  it.each(SIZES)('choleskyF64 n = %i: L L^T = A to 1e-13 relative, upper triangle zero, agrees with the reference', (n) => {
    const ld = n + 5;
    const off = 3;
    const a = spd(n, ld, off, n);
    const native = a.slice();
    const reference = a.slice();
    expect(chol()({ n, a: native, aOffset: off, lda: ld })).toBeNull();
    expect(getKernel('choleskyF64', REFERENCE_BACKEND)({ n, a: reference, aOffset: off, lda: ld })).toBeNull();
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const lij = native[off + i * ld + j]!;
        if (j > i) {
          expect(lij).toBe(0);
          continue;
        }
        let s = 0;
        for (let k = 0; k <= j; k++) s += native[off + i * ld + k]! * native[off + j * ld + k]!;
        worst = Math.max(worst, Math.abs(s - a[off + i * ld + j]!));
        expect(Math.abs(lij - reference[off + i * ld + j]!)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(reference[off + i * ld + j]!)));
      }
      // Padding between rows and after the matrix is never written.
      for (let j = n; j < ld && i < n - 1; j++) expect(native[off + i * ld + j]).toBeNaN();
    }
    expect(worst).toBeLessThanOrEqual(1e-13 * n);
    expect(native.slice(0, off).every(Number.isNaN)).toBe(true);
  });

  it.each(SIZES)('triangularInverseF64 n = %i: L X = I to 1e-12, upper triangle zero, agrees with the reference', (n) => {
    const l = spd(n, n, 0, 1000 + n);
    expect(chol()({ n, a: l, aOffset: 0, lda: n })).toBeNull();
    const ldx = n + 2;
    const x = new Float64Array(1 + (n - 1) * ldx + n).fill(Number.NaN);
    const ref = new Float64Array(n * n);
    expect(inv()({ n, l, lOffset: 0, ldl: n, x, xOffset: 1, ldx })).toBe(-1);
    expect(getKernel('triangularInverseF64', REFERENCE_BACKEND)({ n, l, lOffset: 0, ldl: n, x: ref, xOffset: 0, ldx: n })).toBe(-1);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const xij = x[1 + i * ldx + j]!;
        if (j > i) expect(xij).toBe(0);
        let s = 0;
        for (let k = j; k <= i; k++) s += l[i * n + k]! * x[1 + k * ldx + j]!;
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
        expect(Math.abs(xij - ref[i * n + j]!)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(ref[i * n + j]!)));
      }
    }
    expect(worst).toBeLessThanOrEqual(1e-12 * n);
  });

  it.each([1, 50, 96, 97, 250])('triangularInverseF64 n = %i in place (x is l) equals the out-of-place inverse, in native and reference kernels', (n) => {
    const l = spd(n, n + 3, 2, 77 + n);
    expect(chol()({ n, a: l, aOffset: 2, lda: n + 3 })).toBeNull();
    const apart = new Float64Array(n * n);
    expect(inv()({ n, l, lOffset: 2, ldl: n + 3, x: apart, xOffset: 0, ldx: n })).toBe(-1);
    for (const [kernel, label] of [[inv(), 'native'], [getKernel('triangularInverseF64', REFERENCE_BACKEND), 'reference']] as const) {
      const same = l.slice();
      expect(kernel({ n, l: same, lOffset: 2, ldl: n + 3, x: same, xOffset: 2, ldx: n + 3 }), label).toBe(-1);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const want = apart[i * n + j]!;
          expect(Math.abs(same[2 + i * (n + 3) + j]! - want), `${label} (${i}, ${j})`).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(want)));
        }
      }
    }
  });

  it('reports the first pivot that is not positive, as the reference does, past the first block', () => {
    const n = 200;
    for (const bad of [0, 95, 150]) {
      const a = spd(n, n, 0, bad);
      for (let j = 0; j < n; j++) a[bad * n + j] = a[j * n + bad] = 0;
      a[bad * n + bad] = -2;
      expect(chol()({ n, a: a.slice(), aOffset: 0, lda: n })).toEqual({ index: bad, pivot: -2 });
      expect(getKernel('choleskyF64', REFERENCE_BACKEND)({ n, a: a.slice(), aOffset: 0, lda: n })).toEqual({ index: bad, pivot: -2 });
    }
    const nan = spd(130, 130, 0, 9);
    nan[120 * 130 + 120] = Number.NaN;
    expect(chol()({ n: 130, a: nan, aOffset: 0, lda: 130 })?.index).toBe(120);
  });

  it('reports a zero or non-finite diagonal entry of the triangular matrix', () => {
    const n = 150;
    const l = spd(n, n, 0, 3);
    expect(chol()({ n, a: l, aOffset: 0, lda: n })).toBeNull();
    for (const [at, v] of [[0, 0], [140, 0], [99, Number.POSITIVE_INFINITY], [7, Number.NaN]] as const) {
      const m = l.slice();
      m[at * n + at] = v;
      expect(inv()({ n, l: m, lOffset: 0, ldl: n, x: new Float64Array(n * n), xOffset: 0, ldx: n })).toBe(at);
    }
  });

  it('checks its arguments before native code runs, with the reference kernels typed errors', () => {
    expect(() => chol()({ n: 3, a: new Float32Array(9) as unknown as Float64Array, aOffset: 0, lda: 3 })).toThrow(DTypeError);
    expect(() => chol()({ n: 3, a: new Float64Array(9), aOffset: 0, lda: 2 })).toThrow(ShapeError);
    expect(() => chol()({ n: 3, a: new Float64Array(8), aOffset: 0, lda: 3 })).toThrow(/a has length 8 but a \[3, 3\] matrix/);
    const shared = new Float64Array(32);
    expect(() => inv()({ n: 3, l: shared.subarray(0, 9), lOffset: 0, ldl: 3, x: shared.subarray(5, 14), xOffset: 0, ldx: 3 })).toThrow(ArgumentError);
    expect(() => inv()({ n: 3, l: shared.subarray(0, 9), lOffset: 0, ldl: 3, x: shared.subarray(9, 18), xOffset: 0, ldx: 3 })).not.toThrow();
    expect(() => addon!.triangularInverseF64!(3, shared, 0, 3, shared, 4, 3)).toThrow(/X overlaps L/);
    expect(() => inv()({ n: 3, l: shared, lOffset: 0, ldl: 3, x: shared, xOffset: 0, ldx: 4 })).toThrow(ArgumentError);
    expect(() => addon!.triangularInverseF64!(3, shared, 0, 3, shared, 0, 4)).toThrow(/X overlaps L/);
    expect(() => addon!.choleskyF64!(4, new Float64Array(15), 0, 4)).toThrow(RangeError);
  });
});
