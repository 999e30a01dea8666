// WINA (Chen et al. 2025, "WINA: Weight Informed Neuron Activation for Accelerating Large Language Model
// Inference"): the score of input channel j of a token is |x_j| * ||W_{:,j}||_2, the norm of the column of
// the consuming weight that x_j multiplies, so a small activation feeding a large column can outrank a
// larger activation feeding a small one. Each token keeps its top channels by score (per-token top-k, as the
// paper selects; not a calibrated threshold).

import { ArgumentError } from '@sparse/tensor';
import type { ActivationMethod, Site, SiteSparsifier, SiteWeight } from '../../types.js';
import { actsOnRole, checkSample, checkWeight, keepOf, makeSparsifier, readState, topKPerToken } from '../common.js';
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
    keep: (x, tokens) => topKPerToken(x, tokens, site.features, keep, norms),
    state: () => ({ keep }),
  });
}

export const winaMethod: ActivationMethod<typeof winaConfigSchema> = {
  kind: 'activation',
  name: 'wina',
  describe:
    'Keep per token the input channels of largest |x_j| * ||W_:,j||_2 (WINA, Chen et al. 2025); one sparsity for every layer (no per-layer allocation) and no orthogonalizing transform of the weights.',
  schema: winaConfigSchema,
  needs: ['weight'],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    return samples.map((s) => {
      checkSample('wina', s, true);
      return winaSparsifier(s.site, keepOf(s.site.features, config.sparsity), s.weight!);
    });
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
