// Linear probes fitted by ridge least squares: the routers of Polar Sparsity, predicting per-head
// importance (the norm of each head's output) and per-neuron activation magnitude from a block's input.

import { ArgumentError, ShapeError, cholesky, choleskyInverse, tensor } from '@sparse/tensor';

/** y ≈ [x, 1] W for W [(d + 1), m] (row-major; the last row is the intercept). */
export interface LinearProbe {
  d: number;
  m: number;
  weights: Float64Array;
}

/**
 * The ridge least-squares probe minimizing Σ‖y_t - [x_t, 1] W‖² + l2 ‖W_{0..d-1}‖² over x [tokens, d],
 * y [tokens, m]: W = (XᵀX + l2 I')⁻¹ XᵀY with X = [x, 1] and I' leaving the intercept unpenalized (a
 * 1e-9 · tokens ridge on it keeps the system definite). One factorization serves every output column.
 */
export function fitLinearProbe(x: ArrayLike<number>, y: ArrayLike<number>, tokens: number, d: number, m: number, l2 = 1e-3): LinearProbe {
  if (!Number.isInteger(tokens) || tokens < 1) throw new ArgumentError(`fitLinearProbe: need at least one token, got ${tokens}`);
  if (x.length !== tokens * d) throw new ShapeError(`fitLinearProbe: x has ${x.length} values, expected ${tokens} x ${d}`);
  if (y.length !== tokens * m) throw new ShapeError(`fitLinearProbe: y has ${y.length} values, expected ${tokens} x ${m}`);
  if (!(l2 >= 0)) throw new ArgumentError(`fitLinearProbe: l2 must be >= 0, got ${l2}`);
  const p = d + 1;
  const g = new Float64Array(p * p);
  const b = new Float64Array(p * m);
  const row = new Float64Array(p);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < d; i++) row[i] = x[t * d + i]!;
    row[d] = 1;
    for (let i = 0; i < p; i++) {
      const ri = row[i]!;
      if (ri === 0) continue;
      for (let j = 0; j <= i; j++) g[i * p + j] += ri * row[j]!;
      for (let j = 0; j < m; j++) b[i * m + j] += ri * y[t * m + j]!;
    }
  }
  const scale = Math.max(1, tokens);
  for (let i = 0; i < d; i++) g[i * p + i] += l2 * scale;
  g[d * p + d] += 1e-9 * scale;
  for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) g[j * p + i] = g[i * p + j]!;
  const inv = choleskyInverse(cholesky(tensor(g, [p, p]), {})).data as Float64Array;
  const weights = new Float64Array(p * m);
  for (let i = 0; i < p; i++) {
    for (let k = 0; k < p; k++) {
      const a = inv[i * p + k]!;
      if (a === 0) continue;
      for (let j = 0; j < m; j++) weights[i * m + j] += a * b[k * m + j]!;
    }
  }
  return { d, m, weights };
}

/** The probe's outputs [tokens, m] for x [tokens, d]. */
export function probeOutputs(probe: LinearProbe, x: ArrayLike<number>, tokens: number): Float64Array {
  const { d, m, weights } = probe;
  if (x.length !== tokens * d) throw new ShapeError(`probeOutputs: x has ${x.length} values, expected ${tokens} x ${d}`);
  const out = new Float64Array(tokens * m);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < m; j++) out[t * m + j] = weights[d * m + j]!;
    for (let i = 0; i < d; i++) {
      const xi = x[t * d + i]!;
      if (xi === 0) continue;
      for (let j = 0; j < m; j++) out[t * m + j] += xi * weights[i * m + j]!;
    }
  }
  return out;
}

/** Per-head output norms [tokens, heads] of attention outputs [tokens, heads * headDim] (heads side by side). */
export function headNorms(x: ArrayLike<number>, tokens: number, heads: number): Float64Array {
  if (!Number.isInteger(heads) || heads < 1) throw new ArgumentError(`headNorms: heads must be a positive integer, got ${heads}`);
  const width = x.length / Math.max(1, tokens);
  if (tokens * width !== x.length || width % heads !== 0) throw new ShapeError(`headNorms: ${x.length} values do not make ${tokens} rows of ${heads} equal head slices`);
  const hd = width / heads;
  const out = new Float64Array(tokens * heads);
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      let s = 0;
      for (let i = 0; i < hd; i++) {
        const v = x[t * width + h * hd + i]!;
        s += v * v;
      }
      out[t * heads + h] = Math.sqrt(s);
    }
  }
  return out;
}

/** |x| entrywise, in float64. */
export function magnitudes(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]!);
  return out;
}
