// LoRS (Hu et al., "Efficient Low-Rank Adaptation for Sparse LLMs"): a LoRA adapter on a pruned weight
// whose update goes through the base mask both in training and in the merge, W' = W + M ⊙ (scaling · B A),
// so the trained weight is exactly the merged one and keeps the base's sparsity. What sets it apart from
// SQFT is how it is trained: its tfjs form (./tfjs.ts) keeps neither B A nor M ⊙ B A for the backward
// pass but recomputes from A and B, and computes both factor gradients from one masked gradient
// M ⊙ ∂L/∂W' (weight recompute and a rearranged graph). Unlike SQFT, `densify: true` is allowed (it adds
// the unmasked B A).
// differs: the paper also reports "better adapter initialization", but the method is not given in its
// abstract or in any source we could read (no public code), so it is not reproduced: LoRS here starts from
// PEFT's LoRA init (A ~ U(±1/√in), B = 0), and its results should not be read as the paper's init.
import { isKept, maskFromTensor, type Mask } from '@sparse/masks';
import { ArgumentError, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { addMasked, checkShape, checkState, floatMatrix, mergeMask, parseWith } from '../helpers/common.js';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import { addLowRank, loraFactorsFor, matmulT, zerosMatrix } from '../helpers/sparse.js';
import { lorsConfigSchema, type LoRSConfig } from './config.js';

const where = (op: string) => `lors.${op}`;

/** scaling · B A, dense. */
function lowRankDelta(state: AdapterState<LoRSConfig>): Float32Tensor {
  const d = zerosMatrix(state.shape[0], state.shape[1]);
  addLowRank(d, state.params.lora_B!, state.params.lora_A!, loraScaling(state.config));
  return d;
}

function maskOut(d: Float32Tensor, mask: Mask): Float32Tensor {
  for (let k = 0; k < d.data.length; k++) if (!isKept(mask, k)) d.data[k] = 0;
  return d;
}

export const lorsVariant: AdapterVariant<LoRSConfig> = {
  kind: 'adapter',
  name: 'lors',
  describe: 'LoRS: LoRA through the base mask in training and merge, W + M ⊙ (scaling · B A), trained with recompute (differs: PEFT\'s LoRA init, not the paper\'s improved init)',
  paper: 'Hu et al. 2025, LoRS: Efficient Low-Rank Adaptation for Sparse Large Language Model',
  differs: [
    'the paper\'s better adapter initialization is not described in any source at hand and is not reproduced: LoRS starts from PEFT\'s LoRA init (A ~ U(±1/√in), B = 0)',
  ],
  schema: lorsConfigSchema,
  parseConfig: (config) => parseWith(lorsConfigSchema, config, 'lors'),
  init(base: Tensor, config: unknown, rng: Random) {
    const c = parseWith(lorsConfigSchema, config, 'lors');
    const w = floatMatrix(base, where('init'), 'base');
    return { variant: 'lors', shape: [w.shape[0]!, w.shape[1]!], config: c, params: loraFactorsFor(w, c.r, rng) };
  },
  /** M ⊙ (scaling · B A) with M the base's nonzeros: the update the adapted layer really applies. */
  delta(state, base) {
    checkState(state, 'lors', where('delta'));
    checkShape(base, state, where('delta'), 'base');
    return maskOut(lowRankDelta(state), maskFromTensor(base));
  },
  forward(x, base, state) {
    checkState(state, 'lors', where('forward'));
    checkShape(base, state, where('forward'), 'base');
    const xs = floatMatrix(x, where('forward'), 'x');
    if (xs.shape[1] !== state.shape[1]) throw new ArgumentError(`${where('forward')}: x has ${xs.shape[1]} columns, the weight takes ${state.shape[1]}`);
    // The masked product has no low-rank shortcut: the sparse weight W + M ⊙ ΔW is what the layer runs.
    const w = floatMatrix(base, where('forward'), 'base');
    return matmulT(xs, addMasked(w, lowRankDelta(state), maskFromTensor(w), 1));
  },
  merge(base, state, opts) {
    checkState(state, 'lors', where('merge'));
    checkShape(base, state, where('merge'), 'base');
    const w = floatMatrix(base, where('merge'), 'base');
    return addMasked(w, lowRankDelta(state), mergeMask(w, opts, where('merge')), 1);
  },
  unmerge(merged, state, opts) {
    checkState(state, 'lors', where('unmerge'));
    checkShape(merged, state, where('unmerge'), 'merged');
    const w = floatMatrix(merged, where('unmerge'), 'merged');
    return addMasked(w, lowRankDelta(state), mergeMask(w, opts, where('unmerge')), -1);
  },
  trainableCount(shape, config) {
    const c = parseWith(lorsConfigSchema, config, 'lors');
    return c.r * (shape[0] + shape[1]);
  },
};
