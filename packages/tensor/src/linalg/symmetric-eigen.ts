// Full eigendecomposition of a real symmetric matrix: Householder reduction to tridiagonal form with the
// orthogonal factor accumulated, then implicit QL iterations with Wilkinson shifts on the tridiagonal
// matrix, the plane rotations accumulated into the eigenvectors (the tred2 + imtql2 scheme of EISPACK).
// About 8 n^3 flops in all (4/3 n^3 to reduce, 4/3 n^3 to form Q, the rest in the QL rotations, at about
// two QL sweeps per eigenvalue), against O(n^3) per sweep for the Jacobi `svd`.
//
// Memory layout: everything is row-major. The reduction keeps only the upper triangle of the trailing
// block, so the column being reduced is a contiguous row and every inner loop runs along a row. The
// eigenvectors are accumulated transposed (one eigenvector per row), so each QL rotation combines two
// contiguous rows.

import { ArgumentError } from '../errors.js';
import type { DType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { mat, matFromTensor, matToTensor, outDType, vecToTensor, type LinalgDType, type Mat } from './matrix.js';

export interface SymmetricEigenResult<D extends LinalgDType = LinalgDType> {
  /** [n] eigenvalues in non-increasing order (largest first). */
  values: Tensor<D>;
  /** [n, n] orthogonal matrix whose column j is the unit eigenvector of values[j]: a = V diag(values) V^T. */
  vectors: Tensor<D>;
}

export interface SymmetricEigenOptions {
  /**
   * Largest accepted |a_ij - a_ji| relative to max |a_ij| (default 1e-8 for float64 input, 1e-4 for float32
   * and integer dtypes, 1e-2 for float16 and bfloat16). Within it the symmetric part (a + a^T) / 2 is
   * decomposed; beyond it the call throws ArgumentError.
   */
  symmetryTolerance?: number;
}

/** The eigendecomposition as float64 arrays: vectors column j belongs to values[j]. */
export interface SymmetricEigenMat {
  values: Float64Array;
  vectors: Mat;
}

const EPS = 2.220446049250313e-16;
/**
 * A squared norm below which the part of a column to be annihilated counts as zero (the matrix is scaled
 * so its largest entry is near 1): the entries left in place are under 1e-145, far below eps * ||a||.
 */
const NEGLIGIBLE = 1e-290;
/** QL iterations allowed per eigenvalue on average before giving up (two or three are typical). */
const MAX_ITERATIONS_PER_VALUE = 30;

/** The default `symmetryTolerance` for an input of this dtype: a few rounding errors of the dtype. */
function defaultSymmetryTolerance(dtype: DType): number {
  if (dtype === 'float64') return 1e-8;
  if (dtype === 'float16' || dtype === 'bfloat16') return 1e-2;
  return 1e-4;
}

/**
 * Checks that the square matrix in w (n x n, row-major) is symmetric within tol * max|w_ij|, then replaces
 * it by its symmetric part and scales it by a power of two (exact) so the largest entry is near 1.
 * Returns that scale.
 */
function symmetrizeAndScale(w: Float64Array, n: number, tol: number, where: string): number {
  let maxAbs = 0;
  for (let i = 0; i < w.length; i++) {
    const x = Math.abs(w[i]!);
    if (x > maxAbs) maxAbs = x;
  }
  let worst = 0;
  let wi = 0;
  let wj = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const diff = Math.abs(w[i * n + j]! - w[j * n + i]!);
      if (diff > worst) {
        worst = diff;
        wi = i;
        wj = j;
      }
    }
  }
  if (worst > tol * maxAbs) {
    throw new ArgumentError(
      `${where}: a is not symmetric: |a[${wi}, ${wj}] - a[${wj}, ${wi}]| = ${worst} exceeds symmetryTolerance * max|a_ij| = ${tol} * ${maxAbs}`,
    );
  }
  const scale = maxAbs > 0 ? 2 ** Math.max(-1000, Math.min(1000, -Math.round(Math.log2(maxAbs)))) : 1; // clamped: 2^1074 overflows
  for (let i = 0; i < n; i++) {
    w[i * n + i] = w[i * n + i]! * scale;
    for (let j = i + 1; j < n; j++) {
      const s = 0.5 * (w[i * n + j]! + w[j * n + i]!) * scale;
      w[i * n + j] = s;
      w[j * n + i] = s;
    }
  }
  return scale;
}

/**
 * Makes the reflector H_k = I - tau_k v v^T (v_0 = 1) that maps x = w[k, k+1:] onto beta e_1, stores v over x
 * and beta in e[k], and returns tau_k (0 when x is already a multiple of e_1: H_k is then the identity).
 */
function reflector(w: Float64Array, n: number, k: number, e: Float64Array, tau: Float64Array): number {
  const rk = k * n;
  const alpha = w[rk + k + 1]!;
  let sigma = 0;
  for (let j = k + 2; j < n; j++) sigma += w[rk + j]! * w[rk + j]!;
  if (sigma <= NEGLIGIBLE) {
    tau[k] = 0;
    e[k] = alpha;
    return 0;
  }
  const norm = Math.sqrt(alpha * alpha + sigma);
  const beta = alpha >= 0 ? -norm : norm; // opposite sign to alpha: alpha - beta never cancels
  const t = (beta - alpha) / beta;
  tau[k] = t;
  e[k] = beta;
  const inv = 1 / (alpha - beta);
  w[rk + k + 1] = 1;
  for (let j = k + 2; j < n; j++) w[rk + j] = w[rk + j]! * inv;
  return t;
}

/**
 * Householder tridiagonalization of the symmetric matrix in w (only the upper triangle is read), in place.
 * Step k reflects row k beyond the diagonal, x = w[k, k+1:], onto beta e_1 with H_k = I - tau_k v v^T and
 * applies H_k on both sides of the trailing block B = w[k+1:, k+1:]: with p = tau B v and
 * q = p - (tau / 2)(p . v) v, H B H = B - v q^T - q v^T. v is kept in w[k, k+1:]. On return d holds the
 * diagonal and e[k] the coupling of k and k + 1 of T = Q^T a Q, Q = H_0 H_1 ... H_{n-3}.
 *
 * One pass over the trailing triangle per step: row k + 1 is updated first, which gives the next
 * reflector, and the update of every later row is fused with that row's share of the next product B v.
 */
function tridiagonalize(w: Float64Array, n: number, d: Float64Array, e: Float64Array, tau: Float64Array): void {
  e[n - 1] = 0;
  if (n === 1) d[0] = w[0]!;
  if (n <= 2) {
    if (n === 2) {
      d[0] = w[0]!;
      d[1] = w[3]!;
      e[0] = w[1]!;
    }
    return;
  }
  let p = new Float64Array(n); // B v for the current reflector, then q
  let pNext = new Float64Array(n);
  d[0] = w[0]!;
  let t = reflector(w, n, 0, e, tau);
  if (t !== 0) {
    // B v for step 0 from the upper triangle: each stored b_ij (j > i) contributes to p_i and p_j.
    for (let i = 1; i < n; i++) {
      const ri = i * n;
      const vi = w[i]!;
      let acc = w[ri + i]! * vi;
      for (let j = i + 1; j < n; j++) {
        const b = w[ri + j]!;
        acc += b * w[j]!;
        p[j] = p[j]! + b * vi;
      }
      p[i] = p[i]! + acc;
    }
  }
  for (let k = 0; k < n - 2; k++) {
    const rk = k * n;
    if (t !== 0) {
      let pv = 0;
      for (let i = k + 1; i < n; i++) {
        p[i] = p[i]! * t;
        pv += p[i]! * w[rk + i]!;
      }
      const half = 0.5 * t * pv;
      for (let i = k + 1; i < n; i++) p[i] = p[i]! - half * w[rk + i]!;
    } else {
      p.fill(0, k + 1); // H_k = I: nothing to update, only the next product to form
    }
    // Row k + 1 first: updated, it is the vector the next reflector acts on.
    const r1 = (k + 1) * n;
    {
      const vi = w[rk + k + 1]!;
      const qi = p[k + 1]!;
      for (let j = k + 1; j < n; j++) w[r1 + j] = w[r1 + j]! - vi * p[j]! - qi * w[rk + j]!;
    }
    d[k + 1] = w[r1 + k + 1]!;
    const tNext = k + 1 < n - 2 ? reflector(w, n, k + 1, e, tau) : 0;
    pNext.fill(0, k + 2);
    for (let i = k + 2; i < n; i++) {
      const ri = i * n;
      const vi = w[rk + i]!;
      const qi = p[i]!;
      const ui = w[r1 + i]!; // the next reflector's component i
      const bii = w[ri + i]! - 2 * vi * qi;
      w[ri + i] = bii;
      let acc = bii * ui;
      for (let j = i + 1; j < n; j++) {
        const b = w[ri + j]! - vi * p[j]! - qi * w[rk + j]!;
        w[ri + j] = b;
        acc += b * w[r1 + j]!;
        pNext[j] = pNext[j]! + b * ui;
      }
      pNext[i] = pNext[i]! + acc;
    }
    const swap = p;
    p = pNext;
    pNext = swap;
    t = tNext;
  }
  e[n - 2] = w[(n - 2) * n + n - 1]!;
  d[n - 1] = w[n * n - 1]!;
}

/** Reflectors applied per pass over the rows in `accumulateTransposedQ` (keeps a row block in cache). */
const REFLECTOR_BLOCK = 8;

/**
 * Overwrites w with Q^T = H_{n-3} ... H_1 H_0 from the reflectors left in it by `tridiagonalize`, built
 * as ((I H_{n-3}) H_{n-4}) ... H_0. Before the product with H_k only rows and columns k + 2.. differ from
 * the identity, and H_k touches rows and columns k + 1.., so the product grows in the trailing corner
 * while the reflectors still to come stay in the rows above it. A right product acts on each row on its
 * own (row <- row - tau (row . v) v^T), so the reflectors are taken REFLECTOR_BLOCK at a time, copied out,
 * and all applied to a block of four rows before the next rows are read.
 */
function accumulateTransposedQ(w: Float64Array, n: number, tau: Float64Array): void {
  const identityRow = (r: number): void => {
    w.fill(0, r * n, (r + 1) * n);
    w[r * n + r] = 1;
  };
  const vs = new Float64Array(REFLECTOR_BLOCK * n);
  const cross = new Float64Array(REFLECTOR_BLOCK); // v_k . v_{k-1} for each pair, at slot hi - k
  for (let r = n - 1; r >= Math.max(0, n - 2); r--) identityRow(r);
  for (let hi = n - 3; hi >= 0; hi -= REFLECTOR_BLOCK) {
    const lo = Math.max(0, hi - REFLECTOR_BLOCK + 1);
    // Reflector k goes to vs[(hi - k) * n + k + 1 ...]; then rows lo + 1 .. hi + 1 join the product.
    for (let k = hi; k >= lo; k--) vs.set(w.subarray(k * n + k + 1, (k + 1) * n), (hi - k) * n + k + 1);
    for (let r = hi + 1; r > lo; r--) identityRow(r);
    // Reflectors go in pairs (k, k - 1): x H_k H_{k-1} = x - a1 v1^T - a2 v2^T with a1 = tau_k (x . v1) and
    // a2 = tau_{k-1} (x . v2 - a1 (v1 . v2)), so both dot products come from one pass over x and both
    // updates from a second one. A lone last reflector pairs with itself at tau 0.
    for (let k = hi; k >= lo; k -= 2) {
      const k2 = k - 1 >= lo ? k - 1 : k;
      const o1 = (hi - k) * n;
      const o2 = (hi - k2) * n;
      let c12 = 0;
      for (let j = k + 1; j < n; j++) c12 += vs[o1 + j]! * vs[o2 + j]!;
      cross[hi - k] = c12;
    }
    let r = lo + 1;
    for (; r + 3 < n; r += 4) {
      const r0 = r * n;
      const r1 = r0 + n;
      const r2 = r1 + n;
      const r3 = r2 + n;
      for (let k = hi; k >= lo; k -= 2) {
        const k2 = k - 1 >= lo ? k - 1 : k;
        const t1 = tau[k]!;
        const t2 = k2 === k ? 0 : tau[k2]!;
        if (t1 === 0 && t2 === 0) continue;
        const o1 = (hi - k) * n;
        const o2 = (hi - k2) * n;
        const c12 = cross[hi - k]!;
        const from = k2 + 1; // both vectors vanish before it
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let e0 = 0;
        let e1 = 0;
        let e2 = 0;
        let e3 = 0;
        for (let j = from; j < n; j++) {
          const u = vs[o1 + j]!;
          const v = vs[o2 + j]!;
          const x0 = w[r0 + j]!;
          const x1 = w[r1 + j]!;
          const x2 = w[r2 + j]!;
          const x3 = w[r3 + j]!;
          d0 += x0 * u;
          d1 += x1 * u;
          d2 += x2 * u;
          d3 += x3 * u;
          e0 += x0 * v;
          e1 += x1 * v;
          e2 += x2 * v;
          e3 += x3 * v;
        }
        d0 *= t1;
        d1 *= t1;
        d2 *= t1;
        d3 *= t1;
        e0 = t2 * (e0 - d0 * c12);
        e1 = t2 * (e1 - d1 * c12);
        e2 = t2 * (e2 - d2 * c12);
        e3 = t2 * (e3 - d3 * c12);
        for (let j = from; j < n; j++) {
          const u = vs[o1 + j]!;
          const v = vs[o2 + j]!;
          w[r0 + j] = w[r0 + j]! - d0 * u - e0 * v;
          w[r1 + j] = w[r1 + j]! - d1 * u - e1 * v;
          w[r2 + j] = w[r2 + j]! - d2 * u - e2 * v;
          w[r3 + j] = w[r3 + j]! - d3 * u - e3 * v;
        }
      }
    }
    for (; r < n; r++) {
      const rr = r * n;
      for (let k = hi; k >= lo; k -= 2) {
        const k2 = k - 1 >= lo ? k - 1 : k;
        const t1 = tau[k]!;
        const t2 = k2 === k ? 0 : tau[k2]!;
        const o1 = (hi - k) * n;
        const o2 = (hi - k2) * n;
        const from = k2 + 1;
        let d0 = 0;
        let e0 = 0;
        for (let j = from; j < n; j++) {
          const x = w[rr + j]!;
          d0 += x * vs[o1 + j]!;
          e0 += x * vs[o2 + j]!;
        }
        d0 *= t1;
        e0 = t2 * (e0 - d0 * cross[hi - k]!);
        for (let j = from; j < n; j++) w[rr + j] = w[rr + j]! - d0 * vs[o1 + j]! - e0 * vs[o2 + j]!;
      }
    }
  }
  if (n >= 1) identityRow(0);
}

/**
 * Implicit QL with Wilkinson shifts on the symmetric tridiagonal matrix (d, e), e[i] coupling i and i + 1,
 * e[n - 1] = 0. Each rotation in the plane (i, i + 1) is applied to rows i and i + 1 of z, so z's rows
 * turn into the eigenvectors of the matrix whose (transposed) basis z held. d ends as the eigenvalues,
 * unsorted.
 */
function tridiagonalQL(d: Float64Array, e: Float64Array, z: Float64Array, n: number, where: string): void {
  let budget = MAX_ITERATIONS_PER_VALUE * Math.max(1, n);
  const cs = new Float64Array(n);
  const sn = new Float64Array(n);
  for (let l = 0; l < n; l++) {
    for (;;) {
      // The first negligible coupling at or after l splits off the unreduced block l..m.
      let m = l;
      while (m < n - 1) {
        const em = Math.abs(e[m]!);
        if (em <= EPS * (Math.abs(d[m]!) + Math.abs(d[m + 1]!)) || em < NEGLIGIBLE) break;
        m++;
      }
      if (m === l) break; // d[l] has converged
      if (budget-- === 0) throw new ArgumentError(`${where}: the QL iteration did not converge (eigenvalue ${l} of ${n})`);
      // Wilkinson shift: the eigenvalue of the leading 2x2 block [[d_l, e_l], [e_l, d_l+1]] nearer d_l.
      const el = e[l]!;
      const delta = (d[l + 1]! - d[l]!) / (2 * el);
      const root = Math.hypot(delta, 1);
      const shift = d[l]! - el / (delta + (delta >= 0 ? root : -root));
      // Chase the bulge from the bottom of the block to the top with rotations in the planes (i, i + 1).
      let g = d[m]! - shift;
      let c = 1;
      let s = 1;
      let p = 0;
      let split = false;
      let lowest = m; // the last rotation computed is in the plane (lowest, lowest + 1)
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        const r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // The bulge vanished (underflow): the block splits at i + 1; start over from the deflation test.
          d[i + 1] = d[i + 1]! - p;
          e[m] = 0;
          split = true;
          break;
        }
        s = f / r;
        c = g / r;
        const h = d[i + 1]! - p;
        const t = (d[i]! - h) * s + 2 * c * b;
        p = s * t;
        d[i + 1] = h + p;
        g = c * t - b;
        cs[i] = c;
        sn[i] = s;
        lowest = i;
      }
      // The rotations touch z only, so they are applied after the sweep, several at a time.
      applyRotations(z, n, cs, sn, m - 1, lowest);
      if (split) continue;
      d[l] = d[l]! - p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/**
 * Applies the rotations in the planes (i, i + 1) for i = hi, hi - 1, ..., lo, in that order, to the rows of
 * z: rotation i maps rows (x, y) = (z_i, z_i+1) to (c_i x - s_i y, s_i x + c_i y). Four consecutive
 * rotations share one pass over five contiguous rows, the new row i carried in a register from one to
 * the next, so each element is loaded and stored once per four rotations.
 */
function applyRotations(z: Float64Array, n: number, cs: Float64Array, sn: Float64Array, hi: number, lo: number): void {
  let i = hi;
  for (; i - 3 >= lo; i -= 4) {
    const c0 = cs[i]!;
    const s0 = sn[i]!;
    const c1 = cs[i - 1]!;
    const s1 = sn[i - 1]!;
    const c2 = cs[i - 2]!;
    const s2 = sn[i - 2]!;
    const c3 = cs[i - 3]!;
    const s3 = sn[i - 3]!;
    const r4 = (i + 1) * n;
    const r3 = i * n;
    const r2 = r3 - n;
    const r1 = r2 - n;
    const r0 = r1 - n;
    for (let k = 0; k < n; k++) {
      let y = z[r4 + k]!;
      let x = z[r3 + k]!;
      z[r4 + k] = s0 * x + c0 * y;
      y = c0 * x - s0 * y;
      x = z[r2 + k]!;
      z[r3 + k] = s1 * x + c1 * y;
      y = c1 * x - s1 * y;
      x = z[r1 + k]!;
      z[r2 + k] = s2 * x + c2 * y;
      y = c2 * x - s2 * y;
      x = z[r0 + k]!;
      z[r1 + k] = s3 * x + c3 * y;
      z[r0 + k] = c3 * x - s3 * y;
    }
  }
  for (; i >= lo; i--) {
    const c = cs[i]!;
    const s = sn[i]!;
    const xo = i * n;
    const yo = xo + n;
    for (let k = 0; k < n; k++) {
      const x = z[xo + k]!;
      const y = z[yo + k]!;
      z[xo + k] = c * x - s * y;
      z[yo + k] = s * x + c * y;
    }
  }
}

/**
 * Eigendecomposition of the symmetric n x n matrix held in w, which is overwritten (used as the work
 * space). Values come back non-increasing; column j of vectors belongs to values[j].
 */
function symmetricEigenInPlace(w: Float64Array, n: number, tol: number, where: string): SymmetricEigenMat {
  if (n === 0) return { values: new Float64Array(0), vectors: mat(0, 0) };
  const scale = symmetrizeAndScale(w, n, tol, where);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  tridiagonalize(w, n, d, e, tau);
  accumulateTransposedQ(w, n, tau);
  tridiagonalQL(d, e, w, n, where);
  // Row i of w is now the eigenvector of d[i]. Sort by value, largest first (ties keep their order).
  const order = [...Array(n).keys()].sort((x, y) => d[y]! - d[x]! || x - y);
  const values = new Float64Array(n);
  const vectors = mat(n, n);
  const v = vectors.data;
  for (let j = 0; j < n; j++) {
    const src = order[j]!;
    values[j] = d[src]! / scale;
    const row = src * n;
    for (let i = 0; i < n; i++) v[i * n + j] = w[row + i]!;
  }
  return { values, vectors };
}

function checkTolerance(tol: number, where: string): void {
  if (!(tol >= 0) || !Number.isFinite(tol)) throw new ArgumentError(`${where}: symmetryTolerance must be a finite non-negative number, got ${String(tol)}`);
}

function checkSquare(a: Mat, where: string): void {
  if (a.rows !== a.cols) throw new ArgumentError(`${where}: a must be square, got shape [${a.rows}, ${a.cols}]`);
}

/**
 * Eigendecomposition of a symmetric float64 matrix (a is not modified): values non-increasing, column j
 * of vectors the unit eigenvector of values[j]. Throws ArgumentError when a is not square, has a
 * non-finite entry, or is not symmetric within `symmetryTolerance` (default 1e-8) relative to max|a_ij|.
 */
export function symmetricEigenMat(a: Mat, opts: SymmetricEigenOptions = {}, where = 'symmetricEigen'): SymmetricEigenMat {
  checkSquare(a, where);
  const tol = opts.symmetryTolerance ?? defaultSymmetryTolerance('float64');
  checkTolerance(tol, where);
  const w = Float64Array.from(a.data);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) {
      throw new ArgumentError(`${where}: a[${Math.floor(i / a.cols)}, ${i % a.cols}] is ${w[i]}; entries must be finite`);
    }
  }
  return symmetricEigenInPlace(w, a.rows, tol, where);
}

/**
 * Full eigendecomposition a = V diag(values) V^T of a symmetric n x n matrix: Householder tridiagonalization
 * and implicit QL with Wilkinson shifts, float64 inside (about 8 n^3 flops; backward stable, so eigenvalue
 * errors are of order eps * ||a||). values are sorted non-increasing; column j of vectors is the unit
 * eigenvector of values[j], and the columns are orthonormal even for repeated eigenvalues.
 * The symmetric part (a + a^T) / 2 is decomposed; an input asymmetric beyond `symmetryTolerance` relative to
 * max|a_ij|, a non-square one or one with a NaN or infinite entry throws ArgumentError.
 * Returns float64 tensors for a float64 input and float32 tensors otherwise.
 */
export function symmetricEigen(a: Tensor, opts: SymmetricEigenOptions = {}): SymmetricEigenResult {
  const where = 'symmetricEigen';
  const dtype = outDType(a);
  const tol = opts.symmetryTolerance ?? defaultSymmetryTolerance(a.dtype);
  checkTolerance(tol, where);
  const m = matFromTensor(a, where, 'a'); // a fresh copy: decomposed in place
  checkSquare(m, where);
  const r = symmetricEigenInPlace(m.data, m.rows, tol, where);
  return { values: vecToTensor(r.values, dtype), vectors: matToTensor(r.vectors, dtype) };
}
