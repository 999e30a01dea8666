// DSEE (Chen et al., "DSEE: Dually Sparsity-embedded Efficient Tuning of Pre-trained Language Models"): a
// low-rank update plus a sparse residual, ΔW = scaling · B A + S. S's support Ω comes from a robust
// decomposition of the pretrained weight, W ≈ L + R with L of rank `decompositionRank`: Ω is the
// `density · out · in` entries with the largest |R| = |W − L|. S is stored as sorted flat indices plus
// values. The paper's second half, a sparse final weight, is config `prune`: after fine-tuning, the merge
// prunes W + ΔW to `prune.sparsity` (unstructured: one-shot magnitude pruning, as the paper's unstructured
// DSEE; rows: the output rows of smallest ℓ1 norm) inside the base mask, and `maskAfterMerge` hands the
// kept entries on as the layer's mask (a later stage, e.g. a second tuning pass, keeps them). Without
// `prune` the merge goes through the base mask, so a pruned base stays sparse (`densify: true` opts out);
// Ω never lands on a pruned entry.
// differs: L is the truncated SVD of W (one step of the paper's GreBsmo-style decomposition); the paper's
// structured DSEE removes attention heads chosen by ℓ1-regularized head coefficients learned in training,
// where `rows` removes output rows by the ℓ1 norm of the merged weight (one weight matrix knows no heads);
// the re-tuning after pruning is a further stage of the recipe, not part of the variant.
import { count, isKept, keepCount, maskFromTensor, topKMask, type Mask } from '@sparse/masks';
import { ArgumentError, lowRankApproximation, ShapeError, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { floatMatrix, mergeMask } from '../helpers/common.js';
import type { AdapterState, AdapterVariant, MergeOptions } from '../types.js';
import { loraScaling } from '../lora/variant.js';
import { addLowRank, addLowRankForward, addSparseForward, countOf, loraFactorsFor, makeSparseVariant, scatterAdd, topIndices, topSupport, zerosMatrix, type ScoredAdapterVariant } from '../helpers/sparse.js';
import { dseeConfigSchema, type DSEEConfig } from './config.js';

/** |W − L|, L the rank-k truncated SVD of W (exact up to the randomized SVD's error, which is tiny at this size). */
export function dseeResidualScores(w: Float32Tensor, rank: number, rng: Random): Float32Tensor {
  const [out, inp] = w.shape as [number, number];
  if (rank > Math.min(out, inp)) throw new ArgumentError(`dsee.init: decompositionRank ${rank} exceeds min(out, in) = ${Math.min(out, inp)}`);
  const l = lowRankApproximation(w, rank, { rng, iters: 6 });
  return tensor(Float32Array.from(w.data, (v, k) => Math.abs(v - l.data[k]!)), w.shape);
}

const dseeCore = makeSparseVariant<DSEEConfig>({
  name: 'dsee',
  // data-free in the paper (the low-rank residual); data scores may choose the support instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe: 'DSEE: scaling · B A + S, S on the largest |W − L| (L a truncated SVD); prune: merges W + ΔW pruned by magnitude or by rows (differs: rows, not learned heads)',
  paper: 'Chen et al. 2023, DSEE: Dually Sparsity-embedded Efficient Tuning of Pre-trained Language Models',
  differs: [
    'L is one truncated SVD of W, not the paper\'s GreBsmo-style iterations',
    'the paper\'s structured DSEE removes attention heads chosen by learned ℓ1-regularized head coefficients; prune structure \'rows\' removes output rows by the ℓ1 norm of the merged weight',
    'the re-tuning after pruning is a further stage of the recipe, not part of the variant',
  ],
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

/**
 * The entries DSEE's final-weight pruning keeps of `merged` (= W + ΔW): inside `candidates` (all entries
 * when null), unstructured: the min(count(candidates), round((1 − sparsity) · n)) largest |merged| (ties: the
 * lower flat index); rows: every candidate entry outside the round(sparsity · out) rows of smallest
 * Σ_j |merged_ij| over the candidates (ties: the higher row goes first).
 */
export function dseePruneMask(merged: Tensor, candidates: Mask | null, prune: NonNullable<DSEEConfig['prune']>): Mask {
  const w = floatMatrix(merged, 'dseePruneMask', 'merged');
  const [out, inp] = w.shape as [number, number];
  const n = out * inp;
  if (candidates !== null && (candidates.shape[0] !== out || candidates.shape[1] !== inp)) {
    throw new ShapeError(`dseePruneMask: mask [${candidates.shape.join(', ')}] differs from the weight [${out}, ${inp}]`);
  }
  const kept = (q: number) => candidates === null || isKept(candidates, q);
  if (prune.structure === 'unstructured') {
    const s = new Float64Array(n);
    for (let q = 0; q < n; q++) s[q] = kept(q) ? Math.abs(w.data[q]!) : -Infinity;
    return topKMask(tensor(s, [out, inp]), Math.min(candidates === null ? n : count(candidates), keepCount(n, prune.sparsity, 'dsee.prune')));
  }
  const rowNorm = new Float64Array(out);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) if (kept(i * inp + j)) rowNorm[i]! += Math.abs(w.data[i * inp + j]!);
  const rows = new Set(topIndices(rowNorm, keepCount(out, prune.sparsity, 'dsee.prune')));
  const bits = new Uint32Array(Math.ceil(n / 32));
  for (let q = 0; q < n; q++) if (rows.has(Math.floor(q / inp)) && kept(q)) bits[q >>> 5]! |= 1 << (q & 31);
  return { shape: [out, inp], bits };
}

function prunedMerge(base: Tensor, state: AdapterState<DSEEConfig>, opts: MergeOptions | undefined): { merged: Float32Tensor; mask: Mask | null } {
  const merged = dseeCore.merge(base, state, opts);
  const prune = state.config.prune;
  const through = mergeMask(floatMatrix(base, 'dsee.merge', 'base'), opts, 'dsee.merge');
  if (prune === undefined) return { merged, mask: through };
  const mask = dseePruneMask(merged, through, prune);
  for (let q = 0; q < merged.data.length; q++) if (!isKept(mask, q)) merged.data[q] = 0;
  return { merged, mask };
}

export const dseeVariant: ScoredAdapterVariant<DSEEConfig> & Required<Pick<AdapterVariant<DSEEConfig>, 'maskAfterMerge'>> = {
  ...dseeCore,
  /** W + ΔW through the base mask (unless densify), then, with `prune`, pruned to `dseePruneMask`. */
  merge: (base, state, opts) => prunedMerge(base, state, opts).merged,
  /** The merged weight's mask: the base mask, or with `prune` the entries the pruning kept (all kept when densifying without `prune`). */
  maskAfterMerge(base, state, opts) {
    const m = prunedMerge(base, state, opts).mask;
    if (m !== null) return m;
    const [out, inp] = state.shape;
    return maskFromTensor(tensor(new Float32Array(out * inp).fill(1), [out, inp]));
  },
  unmerge(merged, state, opts) {
    if ((state.config as Partial<DSEEConfig> | undefined)?.prune !== undefined) {
      throw new ArgumentError('dsee.unmerge: config.prune removed weights in the merge, so the base cannot be recovered from the merged weight; keep a copy of the base instead');
    }
    return dseeCore.unmerge(merged, state, opts);
  },
};
