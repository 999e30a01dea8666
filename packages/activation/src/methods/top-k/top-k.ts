// Top-k activation sparsity per token (the "lazy neuron" observation of Li et al. 2023, "The Lazy Neuron
// Phenomenon": most MLP activations of a trained transformer are near zero, and keeping only each token's
// largest ones costs little). Nothing is calibrated: the kept count per token is fixed by the config.

import { ArgumentError } from '@sparse/tensor';
import type { ActivationMethod, Site, SiteSparsifier } from '../../types.js';
import { actsOnRole, checkSample, keepOf, makeSparsifier, readState, selectorParts, TopKSelector } from '../common.js';
import { topKConfigSchema, type TopKConfig } from './config.js';

/** The features a token keeps at a site of `features` under `config`. */
export function topKKeep(config: TopKConfig, features: number): number {
  return config.k !== undefined ? Math.min(config.k, features) : keepOf(features, config.sparsity ?? 0.5);
}

/** A sparsifier keeping the `keep` largest |x| of every token (ties to the lower feature index). */
export function topKSparsifier(site: Site, keep: number, method = 'top-k'): SiteSparsifier {
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method,
    ...selectorParts(new TopKSelector(site.features, keep)),
    state: () => ({ keep }),
  });
}

export const topKMethod: ActivationMethod<typeof topKConfigSchema> = {
  kind: 'activation',
  name: 'top-k',
  describe:
    'Keep the k largest |x| of every token (the top-k transformer of the lazy-neuron paper, Li et al. 2023); the paper trains with top-k in the MLP, here it is applied to a trained model at any site (or trained through with /tfjs).',
  paper: 'Li et al. 2023, The Lazy Neuron Phenomenon: On Emergence of Activation Sparsity in Transformers',
  differs: [
    'the paper trains with top-k in the MLP; here it is applied to a trained model at any site (or trained through with /tfjs)',
  ],
  schema: topKConfigSchema,
  needs: [],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    return samples.map((s) => {
      checkSample('top-k', s, false);
      return topKSparsifier(s.site, topKKeep(config, s.site.features));
    });
  },
  restore(_config, site, state) {
    const { keep } = readState('top-k', site, state, ['keep']);
    if (!Number.isInteger(keep) || keep! < 0 || keep! > site.features) {
      throw new ArgumentError(`top-k at ${site.name}: state.keep must be an integer in [0, ${site.features}], got ${keep}`);
    }
    return topKSparsifier(site, keep!);
  },
};
