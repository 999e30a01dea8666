// SaRA (Hu et al., "SaRA: High-Efficient Diffusion Model Fine-tuning with Progressive Sparse Low-Rank
// Adaptation"): re-use the pretrained weight's least important entries — the `density · out · in` smallest
// |W| — as a sparse trainable delta, ΔW = S on that support (indices + values). In training (the tfjs
// form's hooks, ./tfjs.ts): a nuclear-norm penalty λ · Σ_layers ‖ΔW‖_* added to the loss (config `lambda`),
// so the learned update stays low rank, and the paper's progressive parameter adjustment (config
// `reselectAt`): once, part-way through the run, the trained values go into the weight and the entries that
// are now the smallest |W + ΔW| train as a fresh zero update (`saraReselect`), with fresh optimizer moments.
// differs: the paper selects by a threshold on |W| (|W| < θ), we by a fraction (`density`), so the count
// stays fixed across the re-selection; the penalty is on ΔW (zero at init), where the authors' code
// penalizes the selected parameters' values themselves, on one randomly drawn layer per step (we sum all
// layers every step, which keeps a resumed run exact); on a pruned base only nonzeros are selected (a
// pruned entry would be dropped by the default merge); the memory-saving "unstructural backpropagation" is
// not reproduced (the tfjs form places the values into a dense ΔW).
import { magnitudeScores } from '@sparse/masks';
import { ArgumentError, svd, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import type { MergeOptions } from '../types.js';
import { addSparseForward, countOf, indexedState, makeSparseVariant, scatterAdd, topSupport, zerosMatrix, type IndexedAdapterState } from '../helpers/sparse.js';
import { saraConfigSchema, type SaRAConfig } from './config.js';

/** ‖M‖_* = Σ σ_i (one-sided Jacobi SVD, float64 inside). */
export function nuclearNorm(m: Tensor): number {
  return Array.from(svd(m).s.data as ArrayLike<number>).reduce((a, b) => a + b, 0);
}

export const saraVariant = makeSparseVariant<SaRAConfig>({
  name: 'sara',
  // data-free in the paper (the smallest |W|); data scores may choose the entries instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe: 'SaRA: the smallest-|W| entries train as a sparse delta, nuclear-norm penalty in the loss, one progressive re-selection (differs: a fixed density, not a |W| threshold)',
  paper: 'Hu et al. 2024, SaRA: High-Efficient Diffusion Model Fine-tuning with Progressive Sparse Low-Rank Adaptation',
  differs: [
    'a fixed density instead of the paper\'s threshold on |W|, so the count stays fixed across the re-selection',
    'the nuclear-norm penalty is on ΔW summed over every layer each step; the authors\' code penalizes the selected values on one random layer per step',
    'on a pruned base only nonzeros are selected',
    'no unstructural backpropagation: the tfjs form places the values into a dense ΔW',
  ],
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

/**
 * SaRA's progressive re-selection on one layer: the trained update goes into the weight (through `opts.mask`
 * unless densify, as `merge`), and a new state with zero values trains the `density · out · in` smallest
 * |W + ΔW| among the merged weight's nonzeros. The adapted function is unchanged: base + ΔW before equals
 * the returned base + 0 after.
 */
export function saraReselect(base: Tensor, state: IndexedAdapterState<SaRAConfig>, opts: MergeOptions = {}): { base: Float32Tensor; state: IndexedAdapterState<SaRAConfig> } {
  const st = indexedState(state, 'sara', 'saraReselect') as IndexedAdapterState<SaRAConfig>;
  if (st.indices.support === undefined) throw new ArgumentError(`saraReselect: the state has no 'support' indices`);
  const merged = saraVariant.merge(base, st, opts);
  const [out, inp] = st.shape;
  const support = topSupport(magnitudeScores(merged), merged, countOf(out * inp, st.config.density), 'saraReselect', 'density', false);
  return { base: merged, state: { ...st, params: { sara_values: tensor(new Float32Array(support.length), [support.length]) }, indices: { support } } };
}
