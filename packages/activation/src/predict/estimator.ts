// SparseLoRA's training-free SVD sparsity estimator: rank-r factors of an MLP's gate and up projections
// give approximate pre-activations from the MLP input, and the channels with the largest approximate
// output magnitude are predicted to matter for this token.

import { ArgumentError, ShapeError, svd, tensor, truncatedSVD } from '@sparse/tensor';

/** The MLP nonlinearities the estimator can apply to the approximate gate (as in the trainer's models). */
export type MlpActivationKind = 'silu' | 'gelu' | 'relu' | 'relu2';

/** The nonlinearity as a number function (GELU in its tanh form, as GPT-2 uses it). */
export function activationFunction(kind: MlpActivationKind): (v: number) => number {
  switch (kind) {
    case 'silu':
      return (v) => v / (1 + Math.exp(-v));
    case 'gelu':
      return (v) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    case 'relu':
      return (v) => (v > 0 ? v : 0);
    case 'relu2':
      return (v) => (v > 0 ? v * v : 0);
  }
}

/** W [out, in] ≈ left rightᵀ with left = U_r diag(s_r) [out, r] and right = V_r [in, r], row-major, float64. */
export interface LowRankFactors {
  out: number;
  in: number;
  rank: number;
  left: Float64Array;
  right: Float64Array;
}

/** Matrices with min(out, in) up to this size get the exact Jacobi SVD; larger ones the randomized one. */
const EXACT_SVD_MAX = 256;

/**
 * Rank-r factors of W [out, in] (row-major). The exact SVD is used when r is the full rank or the matrix is
 * small, so full-rank factors reproduce W to float64 precision; otherwise the randomized truncated SVD.
 */
export function lowRankFactors(w: ArrayLike<number>, out: number, inDim: number, rank: number): LowRankFactors {
  if (w.length !== out * inDim) throw new ShapeError(`lowRankFactors: weight has ${w.length} values, expected ${out} x ${inDim}`);
  const kmax = Math.min(out, inDim);
  if (!Number.isInteger(rank) || rank < 1 || rank > kmax) throw new ArgumentError(`lowRankFactors: rank must be an integer in [1, ${kmax}], got ${rank}`);
  const a = tensor(Float64Array.from(w), [out, inDim]);
  const r = rank === kmax || kmax <= EXACT_SVD_MAX ? svd(a) : truncatedSVD(a, rank);
  const k = r.s.shape[0]!;
  const u = r.u.data as Float64Array;
  const s = r.s.data as Float64Array;
  const v = r.v.data as Float64Array;
  const left = new Float64Array(out * rank);
  const right = new Float64Array(inDim * rank);
  for (let i = 0; i < out; i++) for (let j = 0; j < rank; j++) left[i * rank + j] = u[i * k + j]! * s[j]!;
  for (let i = 0; i < inDim; i++) for (let j = 0; j < rank; j++) right[i * rank + j] = v[i * k + j]!;
  return { out, in: inDim, rank, left, right };
}

/** left (rightᵀ h) for each row h of x [tokens, in]: the approximate product x Wᵀ, [tokens, out]. */
export function lowRankProduct(f: LowRankFactors, x: ArrayLike<number>, tokens: number): Float64Array {
  if (x.length !== tokens * f.in) throw new ShapeError(`lowRankProduct: x has ${x.length} values, expected ${tokens} x ${f.in}`);
  const { rank, left, right } = f;
  const y = new Float64Array(tokens * f.out);
  const p = new Float64Array(rank);
  for (let t = 0; t < tokens; t++) {
    p.fill(0);
    for (let i = 0; i < f.in; i++) {
      const xi = x[t * f.in + i]!;
      if (xi === 0) continue;
      for (let j = 0; j < rank; j++) p[j] += xi * right[i * rank + j]!;
    }
    for (let o = 0; o < f.out; o++) {
      let acc = 0;
      for (let j = 0; j < rank; j++) acc += left[o * rank + j]! * p[j]!;
      y[t * f.out + o] = acc;
    }
  }
  return y;
}

/** The exact product x Wᵀ [tokens, out] for W [out, in], in float64. */
export function denseProduct(w: ArrayLike<number>, out: number, inDim: number, x: ArrayLike<number>, tokens: number): Float64Array {
  if (w.length !== out * inDim) throw new ShapeError(`denseProduct: weight has ${w.length} values, expected ${out} x ${inDim}`);
  if (x.length !== tokens * inDim) throw new ShapeError(`denseProduct: x has ${x.length} values, expected ${tokens} x ${inDim}`);
  const y = new Float64Array(tokens * out);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < out; o++) {
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += w[o * inDim + i]! * x[t * inDim + i]!;
      y[t * out + o] = acc;
    }
  }
  return y;
}

/**
 * Channel importance of an MLP from its pre-activations: |act(g) · u| for a gated MLP (gate g, up u), |act(u)|
 * for a plain one (u the pre-activation, no gate). [tokens, hidden].
 */
export function mlpChannelScores(act: MlpActivationKind, up: Float64Array, gate?: Float64Array): Float64Array {
  const f = activationFunction(act);
  const out = new Float64Array(up.length);
  if (gate === undefined) {
    for (let i = 0; i < up.length; i++) out[i] = Math.abs(f(up[i]!));
  } else {
    if (gate.length !== up.length) throw new ShapeError(`mlpChannelScores: gate has ${gate.length} values but up has ${up.length}`);
    for (let i = 0; i < up.length; i++) out[i] = Math.abs(f(gate[i]!) * up[i]!);
  }
  return out;
}

/** The estimator of one MLP: rank-r factors of its up projection and, for a gated MLP, of its gate. */
export interface SVDEstimator {
  activation: MlpActivationKind;
  up: LowRankFactors;
  gate?: LowRankFactors;
}

/** Builds the estimator from the MLP's weights ([hidden, d] each, row-major). */
export function svdEstimator(opts: { activation: MlpActivationKind; rank: number; up: ArrayLike<number>; gate?: ArrayLike<number>; hidden: number; d: number }): SVDEstimator {
  const up = lowRankFactors(opts.up, opts.hidden, opts.d, opts.rank);
  return opts.gate === undefined ? { activation: opts.activation, up } : { activation: opts.activation, up, gate: lowRankFactors(opts.gate, opts.hidden, opts.d, opts.rank) };
}

/** Estimated channel scores [tokens, hidden] from the MLP input h [tokens, d]. */
export function estimateScores(e: SVDEstimator, h: ArrayLike<number>, tokens: number): Float64Array {
  return mlpChannelScores(e.activation, lowRankProduct(e.up, h, tokens), e.gate && lowRankProduct(e.gate, h, tokens));
}

/** The exact channel scores [tokens, hidden] from the full weights: the reference the estimate is measured against. */
export function exactScores(opts: { activation: MlpActivationKind; up: ArrayLike<number>; gate?: ArrayLike<number>; hidden: number; d: number }, h: ArrayLike<number>, tokens: number): Float64Array {
  const up = denseProduct(opts.up, opts.hidden, opts.d, h, tokens);
  return mlpChannelScores(opts.activation, up, opts.gate === undefined ? undefined : denseProduct(opts.gate, opts.hidden, opts.d, h, tokens));
}
