// SparseAdapter (He et al., "An Easy Approach for Improving the Parameter-Efficiency of Adapters"): prune
// the adapter itself at initialization and train only the survivors. Here the adapter is the linear
// (mergeable) LoRA form ΔW = scaling · B A; `sparsity` of the entries of A and of B are removed at init
// and never come back, so the "Large-Sparse" setting (a larger r at the same budget) is `r` up, `sparsity`
// up. Selection: A by |A| at init (magnitude) or at random; B starts at zero, so by default at random, or —
// with `initWithScores(…, G)` for a weight gradient G — by |G Aᵀ|, which is |∂L/∂B| at init (the
// gradient-based pruning-at-init criterion; SNIP's |θ · g| is 0 for a zero B). Only survivors are stored:
// values plus flat positions (params sa_A, sa_B; indices posA in [r, in], posB in [out, r]).
import { magnitudeScores, maskIndices, randomScores, topKMask } from '@sparse/masks';
import { tensor, type Float32Tensor } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { addLowRank, addLowRankForward, makeSparseVariant, matmulT, zerosMatrix } from '../helpers/sparse.js';
import { sparseAdapterConfigSchema, type SparseAdapterConfig } from './config.js';

const kept = (n: number, sparsity: number) => Math.max(1, Math.round((1 - sparsity) * n));

/** Dense A [r, in] and B [out, r] with the pruned entries at 0. */
export function sparseAdapterFactors(state: AdapterState<SparseAdapterConfig>): { a: Float32Tensor; b: Float32Tensor } {
  const st = state as AdapterState<SparseAdapterConfig> & { indices: Record<string, Int32Array> };
  const [out, inp] = st.shape;
  const r = st.config.r;
  const a = zerosMatrix(r, inp);
  const b = zerosMatrix(out, r);
  st.indices.posA!.forEach((p, t) => (a.data[p] = st.params.sa_A!.data[t]!));
  st.indices.posB!.forEach((p, t) => (b.data[p] = st.params.sa_B!.data[t]!));
  return { a, b };
}

export const sparseAdapterVariant = makeSparseVariant<SparseAdapterConfig>({
  name: 'sparse-adapter',
  // a gradient pruning-at-init criterion (SNIP-like): B is ranked by |E[g] Aᵀ|, so it needs the signed E[g]; the other scores do not apply to B
  supportScores: { criteria: ['gradient', 'magnitude'], signed: true },
  describe: 'SparseAdapter: a LoRA-form adapter pruned at init (sparsity of A and B), only survivors stored and trained',
  schema: sparseAdapterConfigSchema,
  create(base, c, rng, scores) {
    const [out, inp] = base.shape as [number, number];
    const bound = 1 / Math.sqrt(inp);
    const aFull: Float32Tensor = tensor(Float32Array.from({ length: c.r * inp }, () => rng.uniform(-bound, bound)), [c.r, inp]);
    const aScore: Float32Tensor = c.selection === 'magnitude' ? magnitudeScores(aFull) : randomScores(aFull.shape, rng.fork('A'));
    const posA = maskIndices(topKMask(aScore, kept(c.r * inp, c.sparsity)));
    // |∂L/∂B| at init is |G Aᵀ| (scaling aside) when scores = G.
    const bScore: Float32Tensor = scores ? tensor(Float32Array.from(matmulT(scores, aFull).data, Math.abs), [out, c.r]) : randomScores([out, c.r], rng.fork('B'));
    const posB = maskIndices(topKMask(bScore, kept(out * c.r, c.sparsity)));
    return {
      params: { sa_A: tensor(Float32Array.from(posA, (p) => aFull.data[p]!), [posA.length]), sa_B: tensor(new Float32Array(posB.length), [posB.length]) },
      indices: { posA, posB },
    };
  },
  delta(state) {
    const d = zerosMatrix(state.shape[0], state.shape[1]);
    const { a, b } = sparseAdapterFactors(state);
    addLowRank(d, b, a, loraScaling(state.config));
    return d;
  },
  addForward(x, state, y) {
    const { a, b } = sparseAdapterFactors(state);
    addLowRankForward(x, b, a, loraScaling(state.config), y);
  },
  count: ([out, inp], c) => kept(c.r * inp, c.sparsity) + kept(out * c.r, c.sparsity),
});
