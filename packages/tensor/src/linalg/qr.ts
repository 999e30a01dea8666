// Thin QR decomposition by Householder reflections, computed in float64.

import type { Tensor } from '../tensor.js';
import { mat, matFromTensor, matToTensor, outDType, type LinalgDType, type Mat } from './matrix.js';

export interface QRResult<D extends LinalgDType = LinalgDType> {
  /** [m, k] with orthonormal columns, k = min(m, n). */
  q: Tensor<D>;
  /** [k, n] upper triangular with a non-negative diagonal. */
  r: Tensor<D>;
}

/**
 * Householder QR of the float64 matrix a (rows m, cols n): q is m x k with orthonormal columns, r is k x n
 * upper triangular, k = min(m, n), and a = q r. Signs are fixed so that diag(r) >= 0, which makes the
 * factorization unique when a has full column rank.
 */
export function qrMat(a: Mat): { q: Mat; r: Mat } {
  const m = a.rows;
  const n = a.cols;
  const k = Math.min(m, n);
  const w = Float64Array.from(a.data); // reduced in place to R (upper part) as reflectors are applied
  const vs: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const len = m - j;
    const v = new Float64Array(len);
    let norm2 = 0;
    for (let i = 0; i < len; i++) {
      v[i] = w[(j + i) * n + j]!;
      norm2 += v[i]! * v[i]!;
    }
    const norm = Math.sqrt(norm2);
    if (norm === 0) {
      vs.push(v.fill(0)); // zero column: no reflection needed (the identity)
      continue;
    }
    // alpha has the sign opposite to x0 so v0 = x0 - alpha never cancels.
    const alpha = v[0]! >= 0 ? -norm : norm;
    v[0] = v[0]! - alpha;
    let vnorm2 = 0;
    for (let i = 0; i < len; i++) vnorm2 += v[i]! * v[i]!;
    const scale = 1 / Math.sqrt(vnorm2);
    for (let i = 0; i < len; i++) v[i] = v[i]! * scale;
    vs.push(v);
    // w[j:, j:] -= 2 v (v^T w[j:, j:])
    for (let c = j; c < n; c++) {
      let dot = 0;
      for (let i = 0; i < len; i++) dot += v[i]! * w[(j + i) * n + c]!;
      dot *= 2;
      for (let i = 0; i < len; i++) w[(j + i) * n + c] = w[(j + i) * n + c]! - dot * v[i]!;
    }
  }
  const r = mat(k, n);
  for (let i = 0; i < k; i++) {
    for (let c = i; c < n; c++) r.data[i * n + c] = w[i * n + c]!;
  }
  // Q = H_0 H_1 ... H_{k-1} applied to the first k columns of the identity, last reflector first.
  const q = mat(m, k);
  for (let i = 0; i < k; i++) q.data[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j]!;
    const len = m - j;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let i = 0; i < len; i++) dot += v[i]! * q.data[(j + i) * k + c]!;
      if (dot === 0) continue;
      dot *= 2;
      for (let i = 0; i < len; i++) q.data[(j + i) * k + c] = q.data[(j + i) * k + c]! - dot * v[i]!;
    }
  }
  for (let i = 0; i < k; i++) {
    if (r.data[i * n + i]! < 0) {
      for (let c = i; c < n; c++) r.data[i * n + c] = -r.data[i * n + c]!;
      for (let row = 0; row < m; row++) q.data[row * k + i] = -q.data[row * k + i]!;
    }
  }
  return { q, r };
}

/**
 * Thin QR decomposition a = q r of a matrix of any real dtype and strides (Householder, float64 inside).
 * Returns float64 tensors for a float64 input and float32 tensors otherwise.
 */
export function qr(a: Tensor): QRResult {
  const dtype = outDType(a);
  const { q, r } = qrMat(matFromTensor(a, 'qr', 'a'));
  return { q: matToTensor(q, dtype), r: matToTensor(r, dtype) };
}
