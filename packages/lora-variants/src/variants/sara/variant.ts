// SaRA (Hu et al., "Progressive Sparse Low-Rank Adaptation"): re-use the pretrained weight's least
// important entries — the `density · out · in` smallest |W| — as a sparse trainable delta, ΔW = S on that
// fixed support (indices + values), with a nuclear-norm penalty ‖ΔW‖_* added to the loss so the learned
// update stays low rank. `nuclearNorm` (core) and `nuclearNormPenalty` (tfjs, from ./tfjs.ts, gradient
// U Vᵀ) provide the penalty; weigh it in your loss. On a pruned base the smallest *nonzero* entries are
// used: a pruned entry would be dropped by the default merge. Left to the caller: the paper's progressive
// re-selection of still-small entries later in training (merge, then init again from the merged weight).
// Its memory-saving "unstructured backpropagation" is not reproduced.
import { magnitudeScores } from '@sparse/masks';
import { svd, tensor, type Tensor } from '@sparse/tensor';
import { addSparseForward, countOf, makeSparseVariant, scatterAdd, topSupport, zerosMatrix } from '../helpers/sparse.js';
import { saraConfigSchema, type SaRAConfig } from './config.js';

/** ‖M‖_* = Σ σ_i (one-sided Jacobi SVD, float64 inside). */
export function nuclearNorm(m: Tensor): number {
  return Array.from(svd(m).s.data as ArrayLike<number>).reduce((a, b) => a + b, 0);
}

export const saraVariant = makeSparseVariant<SaRAConfig>({
  name: 'sara',
  // data-free in the paper (the smallest |W|); data scores may choose the entries instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe: 'SaRA: train the smallest-|W| entries as a sparse delta (indices + values), with a nuclear-norm penalty',
  schema: saraConfigSchema,
  create(base, c, _rng, scores) {
    const [out, inp] = base.shape as [number, number];
    // Smallest |W| (or smallest given score): the "temporarily ineffective" parameters.
    const support = topSupport(scores ?? magnitudeScores(base), base, countOf(out * inp, c.density), 'sara.init', 'density', false);
    return { params: { sara_values: tensor(new Float32Array(support.length), [support.length]) }, indices: { support } };
  },
  delta(state) {
    const d = zerosMatrix(state.shape[0], state.shape[1]);
    scatterAdd(d, state.indices.support!, state.params.sara_values!);
    return d;
  },
  addForward(x, state, y) {
    addSparseForward(x, state.indices.support!, state.params.sara_values!, state.shape[1], y);
  },
  count: ([out, inp], c) => countOf(out * inp, c.density),
});
