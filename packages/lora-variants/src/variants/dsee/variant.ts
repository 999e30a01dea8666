// DSEE (Chen et al., "Dually Sparsity-embedded Efficient Tuning"): a low-rank update plus a sparse
// residual, ΔW = scaling · B A + S. S's support Ω comes from a robust decomposition of the pretrained
// weight, W ≈ L + R with L of rank `decompositionRank`: Ω is the `density · out · in` entries with the
// largest |R| = |W − L| (we take L as the truncated SVD of W, one step of the paper's GreBsmo-style
// decomposition). S is stored as sorted flat indices plus values. The "sparse final weight" half of DSEE
// is the merge: into a pruned base it goes through the base mask by default, so the tuned weight keeps
// the base's sparsity (`densify: true` opts out); Ω never lands on a pruned entry.
import { ArgumentError, lowRankApproximation, tensor, type Float32Tensor, type Random } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import { addLowRank, addLowRankForward, addSparseForward, countOf, loraFactorsFor, makeSparseVariant, scatterAdd, topSupport, zerosMatrix } from '../helpers/sparse.js';
import { dseeConfigSchema, type DSEEConfig } from './config.js';

/** |W − L|, L the rank-k truncated SVD of W (exact up to the randomized SVD's error, which is tiny at this size). */
export function dseeResidualScores(w: Float32Tensor, rank: number, rng: Random): Float32Tensor {
  const [out, inp] = w.shape as [number, number];
  if (rank > Math.min(out, inp)) throw new ArgumentError(`dsee.init: decompositionRank ${rank} exceeds min(out, in) = ${Math.min(out, inp)}`);
  const l = lowRankApproximation(w, rank, { rng, iters: 6 });
  return tensor(Float32Array.from(w.data, (v, k) => Math.abs(v - l.data[k]!)), w.shape);
}

export const dseeVariant = makeSparseVariant<DSEEConfig>({
  name: 'dsee',
  // data-free in the paper (the low-rank residual); data scores may choose the support instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe: 'DSEE: scaling · B A + S, S on the largest entries of W minus its low-rank part; merges keep a sparse base sparse',
  schema: dseeConfigSchema,
  create(base, c, rng, scores) {
    const [out, inp] = base.shape as [number, number];
    const factors = loraFactorsFor(base, c.r, rng.fork('lora'));
    const s = scores ?? dseeResidualScores(base, c.decompositionRank, rng.fork('decomposition'));
    const support = topSupport(s, base, countOf(out * inp, c.density), 'dsee.init', 'density');
    return { params: { ...factors, dsee_values: tensor(new Float32Array(support.length), [support.length]) }, indices: { support } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    addLowRank(d, state.params.lora_B!, state.params.lora_A!, loraScaling(state.config));
    scatterAdd(d, state.indices.support!, state.params.dsee_values!);
    return d;
  },
  addForward(x, state, y) {
    addLowRankForward(x, state.params.lora_B!, state.params.lora_A!, loraScaling(state.config), y);
    addSparseForward(x, state.indices.support!, state.params.dsee_values!, state.shape[1], y);
  },
  count: ([out, inp], c) => c.r * (out + inp) + countOf(out * inp, c.density),
});
