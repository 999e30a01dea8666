// R-Sparse (Zhang et al. 2025, "R-Sparse: Rank-Aware Activation Sparsity for Efficient LLM Inference"): a
// linear layer's product is split by input channel. The channels a token keeps (largest |x|) multiply the
// full weight; the dropped ones are not discarded but multiply a rank-r approximation W_r = U_r S_r V_rᵀ
// of the weight, so y ≈ x_s Wᵀ + (x - x_s) W_rᵀ, and the second term costs two thin products:
// ((x - x_s) V_r S_r) U_rᵀ. The factors come from the weight alone (@sparse/tensor's truncatedSVD with its
// fixed default seed), so `state` stores only the kept count and the rank and `restore` recomputes them
// (once per weight and rank: they are cached by the weight's array).

import { ArgumentError, getKernel, tensor, truncatedSVD } from '@sparse/tensor';
import type { ActivationMethod, CorrectionFactors, Site, SiteSparsifier, SiteWeight } from '../../types.js';
import { actsOnRole, checkSample, checkWeight, keepOf, makeSparsifier, readState, selectorParts, TopKSelector } from '../common.js';
import { rSparseConfigSchema, type RSparseConfig } from './config.js';

/** The correction rank of a layer of W [out, in] under `config`. */
export function rSparseRank(config: RSparseConfig, w: { in: number; out: number }): number {
  const full = Math.min(w.in, w.out);
  return config.rank !== undefined ? Math.min(config.rank, full) : Math.round((config.lowRankFraction ?? 0.1) * full);
}

// The factors of a weight at a rank, computed once per weight array: calibrating several sparsity levels
// of one model, or restoring every site, does not repeat the SVD. Keyed by the weight's array (a changed
// weight is a new array, or the caller's own mutation of the same one, which the cache cannot see).
const factorCache = new WeakMap<Float32Array, Map<number, CorrectionFactors>>();

/** a = V_r S_r [in, r] and b = U_rᵀ [r, out] of the rank-r truncated SVD of W [out, in]. */
export function rSparseFactors(w: SiteWeight, rank: number): CorrectionFactors {
  const cached = factorCache.get(w.data)?.get(rank);
  if (cached !== undefined && cached.in === w.in && cached.out === w.out) return cached;
  const a = new Float32Array(w.in * rank);
  const b = new Float32Array(rank * w.out);
  if (rank > 0) {
    const { u, s, v } = truncatedSVD(tensor(Float64Array.from(w.data), [w.out, w.in]), rank);
    for (let j = 0; j < w.in; j++) for (let k = 0; k < rank; k++) a[j * rank + k] = Number(v.data[j * rank + k]!) * Number(s.data[k]!);
    for (let k = 0; k < rank; k++) for (let o = 0; o < w.out; o++) b[k * w.out + o] = Number(u.data[o * rank + k]!);
  }
  const f = { in: w.in, out: w.out, rank, a, b };
  let byRank = factorCache.get(w.data);
  if (byRank === undefined) factorCache.set(w.data, (byRank = new Map()));
  byRank.set(rank, f);
  return f;
}

/**
 * ((original - sparse) a) b: [tokens, out]. Both thin products go through the kernel registry's
 * gemvSparseInput with the factor as the [in, out] operand, so the first reads only the rows of a whose
 * channel was dropped (the difference is zero elsewhere) and native kernels run them when registered.
 */
export function rSparseCorrection(f: CorrectionFactors, original: Float32Array, sparse: Float32Array, tokens: number): Float32Array {
  const { rank, out } = f;
  const y = new Float32Array(tokens * out);
  if (rank === 0 || tokens === 0) return y;
  const gemv = getKernel('gemvSparseInput');
  // the kernel takes X [cols, n]: the tokens' differences as columns
  const d = new Float32Array(f.in * tokens);
  for (let t = 0; t < tokens; t++) for (let j = 0; j < f.in; j++) d[j * tokens + t] = original[t * f.in + j]! - sparse[t * f.in + j]!;
  const mid = new Float32Array(rank * tokens);
  gemv({ transW: true, rows: rank, cols: f.in, n: tokens, alpha: 1, w: f.a, wOffset: 0, ldw: rank, x: d, xOffset: 0, ldx: tokens, beta: 0, y: mid, yOffset: 0, ldy: tokens });
  if (tokens === 1) {
    gemv({ transW: true, rows: out, cols: rank, n: 1, alpha: 1, w: f.b, wOffset: 0, ldw: out, x: mid, xOffset: 0, ldx: 1, beta: 0, y, yOffset: 0, ldy: 1 });
    return y;
  }
  const yt = new Float32Array(out * tokens);
  gemv({ transW: true, rows: out, cols: rank, n: tokens, alpha: 1, w: f.b, wOffset: 0, ldw: out, x: mid, xOffset: 0, ldx: tokens, beta: 0, y: yt, yOffset: 0, ldy: tokens });
  for (let o = 0; o < out; o++) for (let t = 0; t < tokens; t++) y[t * out + o] = yt[o * tokens + t]!;
  return y;
}

/** A sparsifier keeping each token's `keep` largest |x|, with the rank-`rank` correction of the weight. */
export function rSparseSparsifier(site: Site, keep: number, rank: number, weight: SiteWeight): SiteSparsifier {
  const factors = rSparseFactors(weight, rank);
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method: 'r-sparse',
    ...selectorParts(new TopKSelector(site.features, keep)),
    state: () => ({ keep, rank }),
    correction: (original, sparse, tokens) => rSparseCorrection(factors, original, sparse, tokens),
    correctionFactors: factors,
  });
}

export const rSparseMethod: ActivationMethod<typeof rSparseConfigSchema> = {
  kind: 'activation',
  name: 'r-sparse',
  describe:
    'Keep per token the largest |x| through the full weight and send the dropped channels through a rank-r SVD approximation of it (R-Sparse, Zhang et al. 2025); one sparsity and rank for every layer instead of the paper\'s searched per-layer ratios.',
  paper: 'Zhang et al. 2025, R-Sparse: Rank-Aware Activation Sparsity for Efficient LLM Inference',
  differs: [
    'one sparsity and one rank for every layer instead of the paper\'s searched per-layer ratios',
  ],
  schema: rSparseConfigSchema,
  needs: ['weight'],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    return samples.map((s) => {
      checkSample('r-sparse', s, true);
      return rSparseSparsifier(s.site, keepOf(s.site.features, config.sparsity), rSparseRank(config, s.weight!), s.weight!);
    });
  },
  restore(_config, site, state, weight) {
    const { keep, rank } = readState('r-sparse', site, state, ['keep', 'rank']);
    checkWeight('r-sparse', site, weight);
    if (!Number.isInteger(keep) || keep! < 0 || keep! > site.features) {
      throw new ArgumentError(`r-sparse at ${site.name}: state.keep must be an integer in [0, ${site.features}], got ${keep}`);
    }
    if (!Number.isInteger(rank) || rank! < 0 || rank! > Math.min(weight.in, weight.out)) {
      throw new ArgumentError(`r-sparse at ${site.name}: state.rank must be an integer in [0, ${Math.min(weight.in, weight.out)}], got ${rank}`);
    }
    return rSparseSparsifier(site, keep!, rank!, weight);
  },
};
