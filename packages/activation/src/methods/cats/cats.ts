// CATS (Lee et al. 2024, "CATS: Contextually-Aware Thresholding for Sparsity in Large Language Models"):
// the activated gate of each gated MLP is thresholded at a per-layer cutoff, the `sparsity`-quantile of
// its magnitudes on calibration data, so small activations (and the matching rows of the down projection)
// are skipped.

import { ArgumentError } from '@sparse/tensor';
import { percentileThreshold } from '../../measure.js';
import type { ActivationMethod, Site, SiteSparsifier } from '../../types.js';
import { actsOnRole, checkSample, makeSparsifier, readState, thresholdApply, thresholdKeep } from '../common.js';
import { catsConfigSchema } from './config.js';

/** A sparsifier zeroing |x| < threshold (and keeping |x| >= threshold). */
export function thresholdSparsifier(site: Site, threshold: number, method: string, extra: Record<string, number> = {}): SiteSparsifier {
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method,
    keep: (x) => thresholdKeep(x, threshold),
    apply: (x) => thresholdApply(x, threshold),
    state: () => ({ ...extra, threshold }),
  });
}

/** The CATS threshold of one site's calibration activations: the `sparsity`-quantile of |x| (sorted, exact). */
export function catsThreshold(x: ArrayLike<number>, sparsity: number): number {
  return percentileThreshold(Float32Array.from(x, Math.abs), sparsity);
}

export const catsMethod: ActivationMethod<typeof catsConfigSchema> = {
  kind: 'activation',
  name: 'cats',
  describe:
    'Zero |a| below a per-layer threshold, the calibration quantile of |a| at the target sparsity (CATS, Lee et al. 2024); the quantile is exact by sorting, and no fused kernel: the activations are masked.',
  paper: 'Lee et al. 2024, CATS: Contextually-Aware Thresholding for Sparsity in Large Language Models',
  differs: [
    'no fused sparse kernel: the activations are masked',
  ],
  schema: catsConfigSchema,
  needs: [],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    return samples.map((s) => {
      checkSample('cats', s, false);
      if (s.tokens === 0) throw new ArgumentError(`cats at ${s.site.name}: no calibration tokens`);
      return thresholdSparsifier(s.site, catsThreshold(s.x, config.sparsity), 'cats');
    });
  },
  restore(_config, site, state) {
    const { threshold } = readState('cats', site, state, ['threshold']);
    if (!(threshold! >= 0)) throw new ArgumentError(`cats at ${site.name}: state.threshold must be >= 0, got ${threshold}`);
    return thresholdSparsifier(site, threshold!, 'cats');
  },
};
