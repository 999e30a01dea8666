// SparseAdapter (He et al., "SparseAdapter: An Easy Approach for Improving the Parameter-Efficiency of
// Adapters"): prune the adapter itself at initialization and train only the survivors. The adapter is
// either the paper's bottleneck (`form: 'bottleneck'`, ./bottleneck.ts: down projection D = A [r, in],
// nonlinearity, up projection U = B [out, r], biases, added to the layer's output; not mergeable) or the
// linear LoRA form ΔW = scaling · B A (`form: 'lora'`, the default, mergeable through the base mask).
// `sparsity` of the entries of A and of B are removed at init and never come back (the biases stay
// dense), so the "Large-Sparse" setting (a larger r at the same budget) is `r` up, `sparsity` up.
// Selection: A by |A| at init (magnitude) or at random; B starts at zero, so by default at random, or —
// with `initWithScores(…, G)` for a weight gradient G — by |G Aᵀ|, which is |∂L/∂B| of the linear form at
// init (the gradient-based pruning-at-init criterion; SNIP's |θ · g| is 0 for a zero B). Only survivors
// are stored: values plus flat positions (params sa_A, sa_B; indices posA in [r, in], posB in [out, r];
// bottleneck biases sa_bd [r], sa_bu [out]).
// differs: the paper prunes Houlsby/Pfeiffer adapters placed after a sublayer; here the bottleneck sits
// in parallel with one linear layer (its output the residual), scaled by alpha / r; the |G Aᵀ| criterion
// is the linear form's gradient, used for both forms.
import { magnitudeScores, maskIndices, randomScores, topKMask } from '@sparse/masks';
import { ArgumentError, tensor, type Float32Tensor } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { parseWith } from '../helpers/common.js';
import { addLowRank, addLowRankForward, makeSparseVariant, matmulT, zerosMatrix, type ScoredAdapterVariant } from '../helpers/sparse.js';
import { BOTTLENECK_UNMERGEABLE, bottleneckTerm } from './bottleneck.js';
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

const linearOrBottleneck = makeSparseVariant<SparseAdapterConfig>({
  name: 'sparse-adapter',
  // a gradient pruning-at-init criterion (SNIP-like): B is ranked by |E[g] Aᵀ|, so it needs the signed E[g]; the other scores do not apply to B
  supportScores: { criteria: ['gradient', 'magnitude'], signed: true },
  describe:
    "SparseAdapter: an adapter pruned at init (sparsity of its down and up projections), only survivors stored and trained; form 'bottleneck' (the paper's down, nonlinearity, up, residual; not mergeable) or 'lora' (linear, mergeable). differs: in parallel with one linear layer",
  paper: 'He et al. 2022, SparseAdapter: An Easy Approach for Improving the Parameter-Efficiency of Adapters',
  differs: [
    'the paper prunes adapters placed after a sublayer; here the bottleneck sits in parallel with one linear layer (its output the residual), scaled by alpha / r',
    'the |G Aᵀ| criterion is the linear form\'s gradient, used for both forms',
    'form: \'lora\' (the default) is this library\'s linear, mergeable form; form: \'bottleneck\' is the paper\'s adapter',
  ],
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
    const params: Record<string, Float32Tensor> = { sa_A: tensor(Float32Array.from(posA, (p) => aFull.data[p]!), [posA.length]), sa_B: tensor(new Float32Array(posB.length), [posB.length]) };
    if (c.form === 'bottleneck') {
      params.sa_bd = tensor(new Float32Array(c.r), [c.r]);
      params.sa_bu = tensor(new Float32Array(out), [out]);
    }
    return { params, indices: { posA, posB } };
  },
  delta(state) {
    if (state.config.form === 'bottleneck') throw new ArgumentError(`sparse-adapter: no ΔW: ${BOTTLENECK_UNMERGEABLE}`);
    const d = zerosMatrix(state.shape[0], state.shape[1]);
    const { a, b } = sparseAdapterFactors(state);
    addLowRank(d, b, a, loraScaling(state.config));
    return d;
  },
  addForward(x, state, y) {
    const { a, b } = sparseAdapterFactors(state);
    if (state.config.form === 'bottleneck') {
      const t = bottleneckTerm(x, a, b, state.params.sa_bd!, state.params.sa_bu!, loraScaling(state.config), state.config.activation);
      for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + t.data[q]!;
    } else addLowRankForward(x, b, a, loraScaling(state.config), y);
  },
  count: ([out, inp], c) => kept(c.r * inp, c.sparsity) + kept(out * c.r, c.sparsity) + (c.form === 'bottleneck' ? c.r + out : 0),
});

export const sparseAdapterVariant: ScoredAdapterVariant<SparseAdapterConfig> = {
  ...linearOrBottleneck,
  unmergeable: (config) => ((parseWith(sparseAdapterConfigSchema, config, 'sparse-adapter') as SparseAdapterConfig).form === 'bottleneck' ? BOTTLENECK_UNMERGEABLE : undefined),
};
