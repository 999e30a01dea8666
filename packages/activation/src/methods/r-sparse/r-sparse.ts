// R-Sparse (Zhang et al. 2025, "R-Sparse: Rank-Aware Activation Sparsity for Efficient LLM Inference"): a
// linear layer's product is split by input channel. The channels a token keeps (largest |x|) multiply the
// full weight; the dropped ones are not discarded but multiply a rank-r approximation W_r = U_r S_r V_rᵀ
// of the weight, so y ≈ x_s Wᵀ + (x - x_s) W_rᵀ, and the second term costs two thin products:
// ((x - x_s) V_r S_r) U_rᵀ. The factors come from the weight alone (@sparse/tensor's truncatedSVD with its
// fixed default seed), so `state` stores only the kept count and the rank and `restore` recomputes them.

import { ArgumentError, tensor, truncatedSVD } from '@sparse/tensor';
import type { ActivationMethod, CorrectionFactors, Site, SiteSparsifier, SiteWeight } from '../../types.js';
import { actsOnRole, checkSample, checkWeight, keepOf, makeSparsifier, readState, topKPerToken } from '../common.js';
import { rSparseConfigSchema, type RSparseConfig } from './config.js';

/** The correction rank of a layer of W [out, in] under `config`. */
export function rSparseRank(config: RSparseConfig, w: { in: number; out: number }): number {
  const full = Math.min(w.in, w.out);
  return config.rank !== undefined ? Math.min(config.rank, full) : Math.round((config.lowRankFraction ?? 0.1) * full);
}

/** a = V_r S_r [in, r] and b = U_rᵀ [r, out] of the rank-r truncated SVD of W [out, in]. */
export function rSparseFactors(w: SiteWeight, rank: number): CorrectionFactors {
  const a = new Float32Array(w.in * rank);
  const b = new Float32Array(rank * w.out);
  if (rank > 0) {
    const { u, s, v } = truncatedSVD(tensor(Float64Array.from(w.data), [w.out, w.in]), rank);
    for (let j = 0; j < w.in; j++) for (let k = 0; k < rank; k++) a[j * rank + k] = Number(v.data[j * rank + k]!) * Number(s.data[k]!);
    for (let k = 0; k < rank; k++) for (let o = 0; o < w.out; o++) b[k * w.out + o] = Number(u.data[o * rank + k]!);
  }
  return { in: w.in, out: w.out, rank, a, b };
}

/** ((original - sparse) a) b: [tokens, out], touching only the dropped (non-zero difference) entries. */
export function rSparseCorrection(f: CorrectionFactors, original: Float32Array, sparse: Float32Array, tokens: number): Float32Array {
  const { rank, out } = f;
  const y = new Float32Array(tokens * out);
  if (rank === 0) return y;
  const t = new Float64Array(rank);
  for (let row = 0; row < tokens; row++) {
    t.fill(0);
    let any = false;
    for (let j = 0; j < f.in; j++) {
      const d = original[row * f.in + j]! - sparse[row * f.in + j]!;
      if (d === 0) continue;
      any = true;
      for (let k = 0; k < rank; k++) t[k]! += d * f.a[j * rank + k]!;
    }
    if (!any) continue;
    for (let k = 0; k < rank; k++) {
      const tk = t[k]!;
      for (let o = 0; o < out; o++) y[row * out + o]! += tk * f.b[k * out + o]!;
    }
  }
  return y;
}

/** A sparsifier keeping each token's `keep` largest |x|, with the rank-`rank` correction of the weight. */
export function rSparseSparsifier(site: Site, keep: number, rank: number, weight: SiteWeight): SiteSparsifier {
  const factors = rSparseFactors(weight, rank);
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method: 'r-sparse',
    keep: (x, tokens) => topKPerToken(x, tokens, site.features, keep),
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
