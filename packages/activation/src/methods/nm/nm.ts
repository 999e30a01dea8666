// N:M activation sparsity (semi-structured activation sparsity, as in Grimaldi et al. 2023, "Accelerating
// Deep Neural Networks via Semi-Structured Activation Sparsity"): per token, N of every M consecutive
// features are kept. The selection is @sparse/nm's nmActivations (largest |x|, ties to the lower index).

import { nmActivations } from '@sparse/nm';
import { ArgumentError, ShapeError, tensor } from '@sparse/tensor';
import type { ActivationMethod, Site, SiteSparsifier } from '../../types.js';
import { actsOnRole, checkSample, makeSparsifier, readState } from '../common.js';
import { nmActivationConfigSchema } from './config.js';

/** Which entries of x [tokens, features] N:M keeps: the non-zero entries of nmActivations' mask. */
function nmKeep(x: Float32Array, tokens: number, features: number, n: number, m: number): Uint8Array {
  const keep = new Uint8Array(tokens * features);
  if (tokens === 0) return keep;
  const { mask } = nmActivations(tensor(x, [tokens, features]), { n, m });
  // A mask is a bitset over the flat index (bit i of word i >> 5).
  for (let i = 0; i < keep.length; i++) keep[i] = (mask.bits[i >>> 5]! >>> (i & 31)) & 1;
  return keep;
}

/** A sparsifier keeping N of every M consecutive features of each token. */
export function nmSparsifier(site: Site, n: number, m: number): SiteSparsifier {
  if (site.features % m !== 0) throw new ShapeError(`nm at ${site.name}: ${site.features} features is not a multiple of m = ${m}`);
  return makeSparsifier({
    site: site.name,
    features: site.features,
    method: 'nm',
    keep: (x, tokens) => nmKeep(x, tokens, site.features, n, m),
    state: () => ({ n, m }),
  });
}

export const nmActivationMethod: ActivationMethod<typeof nmActivationConfigSchema> = {
  kind: 'activation',
  name: 'nm',
  describe:
    'Keep the N largest |x| of every M consecutive features of each token (N:M activation sparsity, Grimaldi et al. 2023); the selection only: no sparse-GEMM kernel and no fine-tuning for the pattern.',
  paper: 'Grimaldi et al. 2023, Accelerating Deep Neural Networks via Semi-Structured Activation Sparsity',
  differs: [
    'the selection only: no sparse-GEMM kernel and no fine-tuning for the pattern',
  ],
  schema: nmActivationConfigSchema,
  needs: [],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    return samples.map((s) => {
      checkSample('nm', s, false);
      return nmSparsifier(s.site, config.n, config.m);
    });
  },
  restore(config, site, state) {
    const { n, m } = readState('nm', site, state, ['n', 'm']);
    if (n !== config.n || m !== config.m) throw new ArgumentError(`nm at ${site.name}: state is ${n}:${m}, the config ${config.n}:${config.m}`);
    return nmSparsifier(site, n, m);
  },
};
