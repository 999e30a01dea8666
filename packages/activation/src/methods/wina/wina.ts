// WINA (Chen et al. 2025, "WINA: Weight Informed Neuron Activation for Accelerating Large Language Model
// Inference"): the score of input channel j of a token is |x_j| * ||W_{:,j}||_2, the norm of the column of
// the consuming weight that x_j multiplies, so a small activation feeding a large column can outrank a
// larger activation feeding a small one. Each token keeps its top channels by score (per-token top-k, as the
// paper selects; not a calibrated threshold).

import { ArgumentError } from '@sparse/tensor';
import type { ActivationMethod, Site, SiteSample, SiteSparsifier, SiteWeight } from '../../types.js';
import { actsOnRole, checkSample, checkWeight, keepOf, makeSparsifier, readState, selectorParts, TopKSelector, transposed } from '../common.js';
import { greedyLevels, outputEnergy, type AllocationSite } from '../teal/teal.js';
import { winaConfigSchema } from './config.js';

/** ||W_{:,j}||_2 for every input channel j of W [out, in] row-major. */
export function columnNorms(w: SiteWeight): Float64Array {
  const norms = new Float64Array(w.in);
  for (let o = 0; o < w.out; o++) {
    const row = o * w.in;
    for (let j = 0; j < w.in; j++) norms[j]! += w.data[row + j]! * w.data[row + j]!;
  }
  for (let j = 0; j < w.in; j++) norms[j] = Math.sqrt(norms[j]!);
  return norms;
}

/** A sparsifier keeping, per token, the `keep` channels of largest |x_j| * norms_j. */
export function winaSparsifier(site: Site, keep: number, weight: SiteWeight): SiteSparsifier {
  const norms = columnNorms(weight);
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method: 'wina',
    ...selectorParts(new TopKSelector(site.features, keep, norms)),
    state: () => ({ keep }),
  });
}

/**
 * One site of the greedy allocation under WINA's selection: its output error ||(x - x_s) Wᵀ||² / ||x Wᵀ||²
 * when each token drops its features - keepOf(features, k * step) lowest-scoring channels. Updated
 * incrementally as k grows (each token's channels ordered once by score), like TEAL's.
 */
export function winaErrorSite(sample: SiteSample, step: number): AllocationSite {
  const { x, tokens } = sample;
  const w = sample.weight!;
  const f = w.in;
  const params = w.in * w.out;
  const wt = transposed(w);
  const den = outputEnergy(x, tokens, w, wt);
  if (den === 0) return { params, errorAt: () => 0 };
  const norms = columnNorms(w);
  // Per token, channels in the order they are dropped: lowest score first, and among equal scores the
  // higher index first (the per-token top-k keeps the lower index).
  const order = new Uint32Array(tokens * f);
  const idx = Array.from({ length: f }, (_, j) => j);
  const score = new Float64Array(f);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < f; j++) score[j] = Math.abs(x[t * f + j]!) * norms[j]!;
    idx.sort((a, b) => score[a]! - score[b]! || b - a);
    order.set(idx, t * f);
  }
  const residual = new Float64Array(tokens * w.out);
  let dropped = 0;
  let level = 0;
  return {
    params,
    errorAt(k) {
      if (k === 0) return 0;
      if (k < level) {
        residual.fill(0);
        dropped = 0;
      }
      const target = f - keepOf(f, k * step);
      for (let t = 0; t < tokens; t++) {
        for (let p = dropped; p < target; p++) {
          const j = order[t * f + p]!;
          const v = x[t * f + j]!;
          if (v === 0) continue;
          for (let o = 0; o < w.out; o++) residual[t * w.out + o]! += v * wt[j * w.out + o]!;
        }
      }
      dropped = Math.max(dropped, target);
      level = k;
      let e = 0;
      for (let i = 0; i < residual.length; i++) e += residual[i]! * residual[i]!;
      return e / den;
    },
  };
}

export const winaMethod: ActivationMethod<typeof winaConfigSchema> = {
  kind: 'activation',
  name: 'wina',
  describe:
    'Keep per token the input channels of largest |x_j| * ||W_:,j||_2 (WINA, Chen et al. 2025); one sparsity for every layer unless greedy (then TEAL-style levels by each layer\'s own output error). The paper\'s orthogonalizing transform is not part of the selection: it is a change of the model, done by the trainer (its activation stage\'s rotate) or by the caller.',
  paper: 'Chen et al. 2025, WINA: Weight Informed Neuron Activation for Accelerating Large Language Model Inference',
  differs: [
    'the orthogonalizing transform is not part of the selection: the trainer\'s rotate puts an orthogonal [d, d] product after each block norm instead of rotating the residual stream with products on the shortcuts; without it, columns are not orthogonal and the optimality argument does not hold',
    'one sparsity for every layer, or with greedy: true TEAL-style per-layer levels scored by each layer\'s own output error',
  ],
  schema: winaConfigSchema,
  needs: ['weight'],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    for (const s of samples) checkSample('wina', s, true);
    const levels = config.greedy
      ? greedyLevels(samples.map((s) => winaErrorSite(s, config.step)), config.sparsity, config.step, 'wina').map((k) => k * config.step)
      : samples.map(() => config.sparsity);
    return samples.map((s, i) => winaSparsifier(s.site, keepOf(s.site.features, levels[i]!), s.weight!));
  },
  restore(_config, site, state, weight) {
    const { keep } = readState('wina', site, state, ['keep']);
    if (!Number.isInteger(keep) || keep! < 0 || keep! > site.features) {
      throw new ArgumentError(`wina at ${site.name}: state.keep must be an integer in [0, ${site.features}], got ${keep}`);
    }
    checkWeight('wina', site, weight);
    return winaSparsifier(site, keep!, weight);
  },
};
