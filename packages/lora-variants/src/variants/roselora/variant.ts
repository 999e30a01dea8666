// RoseLoRA (Wang et al., "Row and Column-wise Sparse Low-rank Adaptation"): ΔW = scaling · B' A' where
// every row of A' [r, in] keeps only its top-kA entries and every column of B' [out, r] its top-kB, so
// rank-1 component t touches only a kB × kA block of W and ΔW has at most r · kA · kB nonzeros (the
// paper's row-wise sparse A and column-wise sparse B). The paper ranks entries by a smoothed sensitivity
// |θ · ∂L/∂θ| and prunes toward the target on a schedule; we rank by |θ| and re-select at every use from
// the current values, so the support moves during training (the tfjs form trains A and B straight through
// the selection: the forward uses A', B', the gradient reaches all of A and B). The selection is a pure
// function of the params, so merge, forward and the tfjs form agree. A and B are stored dense (PEFT's
// lora_A/lora_B shapes); all r · (in + out) of their scalars train.
import { isKept, magnitudeScores, perColumnTopKMask, perRowTopKMask, type Mask } from '@sparse/masks';
import { tensor, type Float32Tensor } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { addLowRank, addLowRankForward, countOf, loraFactorsFor, makeSparseVariant, zerosMatrix } from '../helpers/sparse.js';
import { roseloraConfigSchema, type RoseLoRAConfig } from './config.js';

/** The current supports: top-kA |A| per row of A, top-kB |B| per column of B (ties: lower index). */
export function roseloraMasks(state: AdapterState<RoseLoRAConfig>, a = state.params.lora_A!, b = state.params.lora_B!): { maskA: Mask; maskB: Mask } {
  const [out, inp] = state.shape;
  return {
    maskA: perRowTopKMask(magnitudeScores(a), countOf(inp, state.config.densityA)),
    maskB: perColumnTopKMask(magnitudeScores(b), countOf(out, state.config.densityB)),
  };
}

function masked(t: Float32Tensor, m: Mask): Float32Tensor {
  return tensor(Float32Array.from(t.data, (v, k) => (isKept(m, k) ? v : 0)), t.shape);
}

function sparseFactors(state: AdapterState<RoseLoRAConfig>): { a: Float32Tensor; b: Float32Tensor } {
  const { maskA, maskB } = roseloraMasks(state);
  return { a: masked(state.params.lora_A!, maskA), b: masked(state.params.lora_B!, maskB) };
}

export const roseloraVariant = makeSparseVariant<RoseLoRAConfig>({
  name: 'roselora',
  describe: 'RoseLoRA: scaling · B A with top-k rows of A and top-k columns of B (by |value|, re-selected as they train)',
  schema: roseloraConfigSchema,
  create(base, c, rng) {
    return { params: loraFactorsFor(base, c.r, rng), indices: {} };
  },
  delta(state) {
    const d = zerosMatrix(state.shape[0], state.shape[1]);
    const { a, b } = sparseFactors(state);
    addLowRank(d, b, a, loraScaling(state.config));
    return d;
  },
  addForward(x, state, y) {
    const { a, b } = sparseFactors(state);
    addLowRankForward(x, b, a, loraScaling(state.config), y);
  },
  count: ([out, inp], c) => c.r * (out + inp),
});
