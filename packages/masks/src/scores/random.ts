// Random scores: the baseline every pruning criterion is compared against.

import { ArgumentError, Random, sizeOf, tensor, type Float32Tensor } from '@sparse/tensor';
import { checkShapeArg } from '../internal.js';

/**
 * Uniform scores in [0, 1) from the seeded generator (one rng output per element, row-major), so a random
 * mask is reproducible from the seed. Top-k of these scores is a uniformly random k-subset up to the
 * 2^-24 grid of float32 values, where ties fall to the lower index.
 */
export function randomScores(shape: readonly number[], rng: Random): Float32Tensor {
  const s = checkShapeArg('randomScores', 'shape', shape);
  if (!rng || typeof (rng as Random).fillUniform !== 'function') throw new ArgumentError('randomScores: rng must be a Random');
  return tensor(rng.fillUniform(new Float32Array(sizeOf(s))), s);
}
