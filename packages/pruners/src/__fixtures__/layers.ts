// Test fixtures: random layers, correlated calibration inputs, and float64 references written independently
// of the package (plain loops, Gaussian elimination), so the tests compare against something else.

import { isKept, type Mask } from '@sparse/masks';
import { Random, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';

export function normalMatrix(rng: Random, rows: number, cols: number, std = 1): Float32Tensor {
  const data = new Float32Array(rows * cols);
  rng.fillNormal(data, 0, std);
  return tensor(data, [rows, cols]);
}

/**
 * Correlated calibration inputs X = Z L + mean: Z is standard normal [tokens, in], L mixes the columns
 * (so they correlate) and scales them by exp(spread · N(0, 1)) (so their norms differ by orders of magnitude).
 */
export function correlatedInputs(rng: Random, tokens: number, features: number, opts: { spread?: number; mean?: number } = {}): Float32Tensor {
  const spread = opts.spread ?? 1;
  const z = normalMatrix(rng, tokens, features).data;
  const l = normalMatrix(rng, features, features, 1 / Math.sqrt(features)).data;
  for (let j = 0; j < features; j++) {
    const s = Math.exp(spread * rng.normal());
    for (let k = 0; k < features; k++) l[k * features + j]! *= s;
  }
  const means = Float64Array.from({ length: features }, () => (opts.mean ?? 0) * rng.normal());
  const x = new Float32Array(tokens * features);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < features; j++) {
      let s = means[j]!;
      for (let k = 0; k < features; k++) s += z[t * features + k]! * l[k * features + j]!;
      x[t * features + j] = s;
    }
  }
  return tensor(x, [tokens, features]);
}

/** Plain float64 2/n X^T X. */
export function hessianOf(x: Tensor): Tensor<'float64'> {
  const [n, f] = x.shape as [number, number];
  const h = new Float64Array(f * f);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < f; i++) {
      const xi = x.data[t * f + i]!;
      for (let j = 0; j < f; j++) h[i * f + j]! += (2 / n) * xi * x.data[t * f + j]!;
    }
  }
  return tensor(h, [f, f]);
}

/** Plain float64 ||X_j||_2 per column. */
export function columnNormsOf(x: Tensor): Tensor<'float64'> {
  const [n, f] = x.shape as [number, number];
  const out = new Float64Array(f);
  for (let t = 0; t < n; t++) for (let j = 0; j < f; j++) out[j]! += x.data[t * f + j]! ** 2;
  return tensor(out.map(Math.sqrt), [f]);
}

/** Plain float64 mean and population variance per column. */
export function columnMomentsOf(x: Tensor): { means: Tensor<'float64'>; variances: Tensor<'float64'> } {
  const [n, f] = x.shape as [number, number];
  const mu = new Float64Array(f);
  for (let t = 0; t < n; t++) for (let j = 0; j < f; j++) mu[j]! += x.data[t * f + j]! / n;
  const v = new Float64Array(f);
  for (let t = 0; t < n; t++) for (let j = 0; j < f; j++) v[j]! += (x.data[t * f + j]! - mu[j]!) ** 2 / n;
  return { means: tensor(mu, [f]), variances: tensor(v, [f]) };
}

/** Plain float64 ||W X^T - W' X^T||_F. */
export function errorOf(w: Tensor, pruned: Tensor, x: Tensor): number {
  const [rows, cols] = w.shape as [number, number];
  const n = x.shape[0]!;
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < n; t++) {
      let y = 0;
      for (let j = 0; j < cols; j++) y += (w.data[r * cols + j]! - pruned.data[r * cols + j]!) * x.data[t * cols + j]!;
      s += y * y;
    }
  }
  return Math.sqrt(s);
}

/** Solves a x = b (a square, nonsingular) by Gaussian elimination with partial pivoting. */
export function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let j = c; j <= n; j++) m[r]![j] = m[r]![j]! - f * m[c]![j]!;
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let j = r + 1; j < n; j++) s -= m[r]![j]! * out[j]!;
    out[r] = s / m[r]![r]!;
  }
  return out;
}

/**
 * min over w' with w'_j = fixed[j] where fixed is given (and free elsewhere) of ||X w - X w'||^2, by the
 * normal equations of the free columns: X_F^T X_F w'_F = X_F^T (X w - X_fixed w'_fixed).
 */
export function leastSquaresRow(x: Tensor, w: ArrayLike<number>, fixed: Map<number, number>): number[] {
  const [n, f] = x.shape as [number, number];
  const free = [...Array(f).keys()].filter((j) => !fixed.has(j));
  const target = new Array<number>(n).fill(0);
  for (let t = 0; t < n; t++) {
    let y = 0;
    for (let j = 0; j < f; j++) y += x.data[t * f + j]! * (w[j]! - (fixed.get(j) ?? 0));
    target[t] = y;
  }
  // Only the free columns' part remains: target = X w - X_fixed fixed.
  const a = free.map((i) => free.map((j) => {
    let s = 0;
    for (let t = 0; t < n; t++) s += x.data[t * f + i]! * x.data[t * f + j]!;
    return s;
  }));
  const rhs = free.map((i) => {
    let s = 0;
    for (let t = 0; t < n; t++) s += x.data[t * f + i]! * target[t]!;
    return s;
  });
  const sol = solve(a, rhs);
  const out = new Array<number>(f).fill(0);
  fixed.forEach((v, j) => (out[j] = v));
  free.forEach((j, k) => (out[j] = sol[k]!));
  return out;
}

/** Row r of a mask as booleans. */
export function maskRow(m: Mask, r: number, cols: number): boolean[] {
  return Array.from({ length: cols }, (_, j) => isKept(m, r * cols + j));
}

/** Whether every group of m consecutive columns in every row keeps exactly n. */
export function isNM(mask: Mask, n: number, m: number): boolean {
  const [rows, cols] = mask.shape as [number, number];
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols; g += m) {
      let c = 0;
      for (let j = g; j < g + m; j++) if (isKept(mask, r * cols + j)) c++;
      if (c !== n) return false;
    }
  }
  return true;
}
