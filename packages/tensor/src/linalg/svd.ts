// Singular value decompositions: a full thin SVD by one-sided Jacobi (accurate, O(mn^2) per sweep, meant
// for small matrices and as the reference), and a rank-r truncated SVD by randomized subspace iteration.

import { ArgumentError } from '../errors.js';
import { Random } from '../random.js';
import type { Tensor } from '../tensor.js';
import { mat, matFromTensor, matToTensor, mulMat, mulMatTA, outDType, transposeMat, vecToTensor, type LinalgDType, type Mat } from './matrix.js';
import { qrMat } from './qr.js';

export interface SVDResult<D extends LinalgDType = LinalgDType> {
  /** [m, k] left singular vectors (orthonormal columns). */
  u: Tensor<D>;
  /** [k] singular values, non-negative and in non-increasing order. */
  s: Tensor<D>;
  /** [n, k] right singular vectors (orthonormal columns): a ≈ u diag(s) v^T. */
  v: Tensor<D>;
}

export interface SVDOptions {
  /** Maximum number of Jacobi sweeps before giving up (default 60; quadratic convergence needs far fewer). */
  maxSweeps?: number;
}

interface SVDMat {
  u: Mat;
  s: Float64Array;
  v: Mat;
}

const EPS = 2.220446049250313e-16;
/**
 * Squared column norm (in units where the largest entry is about 1) below which a column counts as zero:
 * a norm under 1e-145 of the largest entry. Keeps every product in the normal floating-point range; the
 * singular values flushed to 0 this way are far below the eps * s_max accuracy of the decomposition.
 */
const NEGLIGIBLE = 1e-290;

/**
 * One-sided Jacobi (Hestenes) on a with rows >= cols: rotates pairs of columns until every pair is
 * orthogonal to working precision; the column norms are then the singular values.
 */
function jacobiTall(a: Mat, maxSweeps: number): SVDMat {
  const m = a.rows;
  const n = a.cols;
  // Columns stored contiguously (column-major) because every rotation works on two whole columns.
  // Scaled by a power of two (exact) so the largest entry is near 1: squared norms then neither overflow
  // nor underflow for any entry that matters at working precision.
  let maxAbs = 0;
  for (let i = 0; i < a.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(a.data[i]!));
  const scale = maxAbs > 0 ? 2 ** Math.max(-1000, Math.min(1000, -Math.round(Math.log2(maxAbs)))) : 1; // clamped: 2^1074 overflows
  const u = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) u[j * m + i] = a.data[i * n + j]! * scale;
  const v = new Float64Array(n * n);
  for (let j = 0; j < n; j++) v[j * n + j] = 1;
  const tol = EPS * Math.max(1, m);
  let converged = n <= 1;
  for (let sweep = 0; sweep < maxSweeps && !converged; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        const up = p * m;
        const uq = q * m;
        for (let i = 0; i < m; i++) {
          const x = u[up + i]!;
          const y = u[uq + i]!;
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        // A negligible column is left alone (it becomes a zero singular value below); otherwise rotate unless
        // the pair is already orthogonal to working precision.
        if (alpha < NEGLIGIBLE || beta < NEGLIGIBLE || Math.abs(gamma) <= tol * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
        // The rotation that zeroes the (p, q) entry of the 2x2 Gram matrix [[alpha, gamma], [gamma, beta]];
        // hypot keeps zeta^2 from overflowing when the columns differ hugely in norm.
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.hypot(1, zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        if (s === 0) continue; // the rotation rounds to the identity: nothing left to do for this pair
        rotated = true;
        for (let i = 0; i < m; i++) {
          const x = u[up + i]!;
          const y = u[uq + i]!;
          u[up + i] = c * x - s * y;
          u[uq + i] = s * x + c * y;
        }
        const vp = p * n;
        const vq = q * n;
        for (let i = 0; i < n; i++) {
          const x = v[vp + i]!;
          const y = v[vq + i]!;
          v[vp + i] = c * x - s * y;
          v[vq + i] = s * x + c * y;
        }
      }
    }
    converged = !rotated;
  }
  if (!converged) throw new ArgumentError(`svd: one-sided Jacobi did not converge in ${maxSweeps} sweeps`);
  const sigma = new Float64Array(n);
  const norms = new Float64Array(n); // column norms in scaled units, used to normalize (sigma may be subnormal)
  for (let j = 0; j < n; j++) {
    let s2 = 0;
    for (let i = 0; i < m; i++) s2 += u[j * m + i]! ** 2;
    norms[j] = s2 < NEGLIGIBLE ? 0 : Math.sqrt(s2);
    sigma[j] = norms[j]! / scale;
  }
  const order = [...Array(n).keys()].sort((x, y) => norms[y]! - norms[x]! || x - y);
  const U = mat(m, n);
  const V = mat(n, n);
  const S = new Float64Array(n);
  const zeroCols: number[] = [];
  order.forEach((src, dst) => {
    const sg = sigma[src]!;
    S[dst] = sg;
    for (let i = 0; i < n; i++) V.data[i * n + dst] = v[src * n + i]!;
    if (norms[src] === 0) {
      zeroCols.push(dst);
      return;
    }
    const inv = 1 / norms[src]!;
    for (let i = 0; i < m; i++) U.data[i * n + dst] = u[src * m + i]! * inv;
  });
  completeBasis(U, zeroCols);
  return { u: U, s: S, v: V };
}

/**
 * Fills the listed (all-zero) columns of u with unit vectors orthogonal to every other column, so u keeps
 * orthonormal columns when a has exact zero singular values. The candidate is the standard basis vector e_k
 * least covered by the columns already there (smallest sum over them of u[k, c]^2, i.e. the largest
 * remainder 1 - sum), orthogonalized twice (Gram–Schmidt) and normalized: O(m n) per column.
 */
function completeBasis(u: Mat, cols: number[]): void {
  const m = u.rows;
  const n = u.cols;
  const zero = new Set(cols);
  const filled = [...Array(n).keys()].filter((c) => !zero.has(c));
  for (const col of cols) {
    let k = 0;
    let best = Infinity;
    for (let i = 0; i < m; i++) {
      let covered = 0;
      for (const c of filled) covered += u.data[i * n + c]! ** 2;
      if (covered < best) {
        best = covered;
        k = i;
      }
    }
    const x = new Float64Array(m);
    x[k] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (const c of filled) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += u.data[i * n + c]! * x[i]!;
        for (let i = 0; i < m; i++) x[i] = x[i]! - dot * u.data[i * n + c]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += x[i]! * x[i]!;
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < m; i++) u.data[i * n + col] = x[i]! * scale;
    filled.push(col);
  }
}

/** Thin SVD of a float64 matrix: k = min(rows, cols) singular triplets, sorted. */
export function svdMat(a: Mat, opts: SVDOptions = {}): SVDMat {
  const maxSweeps = opts.maxSweeps ?? 60;
  if (!Number.isInteger(maxSweeps) || maxSweeps < 1) throw new ArgumentError(`svd: maxSweeps must be a positive integer, got ${String(maxSweeps)}`);
  if (a.rows >= a.cols) return jacobiTall(a, maxSweeps);
  // A^T = V S U^T, so the factors of a wide matrix come from its (tall) transpose with roles swapped.
  const t = jacobiTall(transposeMat(a), maxSweeps);
  return { u: t.v, s: t.s, v: t.u };
}

/**
 * Thin singular value decomposition a = u diag(s) v^T by one-sided Jacobi rotations, float64 inside.
 * k = min(m, n); s is sorted non-increasing; columns for exact zero singular values are completed so u and v
 * always have orthonormal columns. Accurate to working precision (errors of order eps * s_max; singular values
 * below about 1e-145 * max|a_ij| are returned as 0), but O(m n^2) per sweep: use it for small matrices and
 * as the reference for `truncatedSVD`.
 * Returns float64 tensors for a float64 input and float32 tensors otherwise.
 */
export function svd(a: Tensor, opts: SVDOptions = {}): SVDResult {
  const dtype = outDType(a);
  const r = svdMat(matFromTensor(a, 'svd', 'a'), opts);
  return { u: matToTensor(r.u, dtype), s: vecToTensor(r.s, dtype), v: matToTensor(r.v, dtype) };
}

export interface TruncatedSVDOptions {
  /** Source of the random test matrix (default `new Random(0)`, so results are reproducible either way). */
  rng?: Random;
  /** Subspace (power) iterations, each one A^T then A with re-orthonormalization (default 4). */
  iters?: number;
  /** Extra columns in the sketch beyond the rank (default 10), capped by min(m, n). */
  oversample?: number;
}

/**
 * Rank-r truncated SVD by randomized subspace iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4):
 * Y = A Ω with Gaussian Ω (n x l, l = min(r + oversample, m, n)), Q = orth(Y); `iters` times
 * Q = orth(A orth(A^T Q)); then the exact SVD of the small l x n matrix B = Q^T A (Jacobi) gives
 * u = Q u_B, s, v; the first r triplets are returned. QR keeps every step orthonormal, so the result is
 * stable even with many iterations. Cost O(m n l (2 iters + 2)).
 */
export function truncatedSVD(a: Tensor, rank: number, opts: TruncatedSVDOptions = {}): SVDResult {
  const dtype = outDType(a);
  const r = truncatedSVDMat(matFromTensor(a, 'truncatedSVD', 'a'), rank, opts);
  return { u: matToTensor(r.u, dtype), s: vecToTensor(r.s, dtype), v: matToTensor(r.v, dtype) };
}

function truncatedSVDMat(A: Mat, rank: number, opts: TruncatedSVDOptions): SVDMat {
  const m = A.rows;
  const n = A.cols;
  const kmax = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 0 || rank > kmax) {
    throw new ArgumentError(`truncatedSVD: rank must be an integer in [0, ${kmax}] for a [${m}, ${n}] matrix, got ${String(rank)}`);
  }
  const iters = opts.iters ?? 4;
  if (!Number.isInteger(iters) || iters < 0) throw new ArgumentError(`truncatedSVD: iters must be a non-negative integer, got ${String(iters)}`);
  const oversample = opts.oversample ?? 10;
  if (!Number.isInteger(oversample) || oversample < 0) {
    throw new ArgumentError(`truncatedSVD: oversample must be a non-negative integer, got ${String(oversample)}`);
  }
  const rng = opts.rng ?? new Random(0);
  if (rank === 0) return { u: mat(m, 0), s: new Float64Array(0), v: mat(n, 0) };
  const l = Math.min(rank + oversample, kmax);
  const omega = mat(n, l);
  rng.fillNormal(omega.data);
  let q = qrMat(mulMat(A, omega)).q;
  for (let it = 0; it < iters; it++) {
    const z = qrMat(mulMatTA(A, q)).q; // n x l
    q = qrMat(mulMat(A, z)).q; // m x l
  }
  const small = svdMat(mulMatTA(q, A)); // B = Q^T A is l x n with l <= n, so k_B = l
  const uFull = mulMat(q, small.u); // m x l
  const u = mat(m, rank);
  const v = mat(n, rank);
  for (let i = 0; i < m; i++) for (let j = 0; j < rank; j++) u.data[i * rank + j] = uFull.data[i * l + j]!;
  for (let i = 0; i < n; i++) for (let j = 0; j < rank; j++) v.data[i * rank + j] = small.v.data[i * l + j]!;
  return { u, s: small.s.slice(0, rank), v };
}

/**
 * The rank-r approximation u_r diag(s_r) v_r^T of a, from `truncatedSVD` (same options), as a tensor of a's
 * shape. By Eckart–Young it is the best rank-r approximation in Frobenius norm, up to the randomized error.
 */
export function lowRankApproximation(a: Tensor, rank: number, opts: TruncatedSVDOptions = {}): Tensor<LinalgDType> {
  const A = matFromTensor(a, 'lowRankApproximation', 'a');
  const { u, s, v } = truncatedSVDMat(A, rank, opts);
  const m = A.rows;
  const n = A.cols;
  const out = mat(m, n);
  for (let r = 0; r < rank; r++) {
    const sr = s[r]!;
    for (let i = 0; i < m; i++) {
      const ui = u.data[i * rank + r]! * sr;
      if (ui === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) out.data[row + j]! += ui * v.data[j * rank + r]!;
    }
  }
  return matToTensor(out, outDType(a));
}
