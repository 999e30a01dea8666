// RoSA (Nikdan et al., "Robust Adaptation"): a LoRA term plus a highly sparse term S, trained jointly,
// ΔW = scaling · B A + S, in the spirit of robust PCA (low rank + sparse). S's support is fixed at init:
// the `density · out · in` entries with the largest score — by default |W| (data-free), or any score
// matrix through `initWithScores` (the paper uses accumulated squared gradients, e.g. `fisherScores`).
// S is stored as sorted flat indices (state.indices.support) plus values (params.rosa_values), never
// as a dense matrix. Entries the base has pruned are never selected, so S alone keeps the mask.
import { magnitudeScores, randomScores } from '@sparse/masks';
import { tensor } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import { addLowRank, addLowRankForward, addSparseForward, countOf, loraFactorsFor, makeSparseVariant, scatterAdd, topSupport, zerosMatrix } from '../helpers/sparse.js';
import { rosaConfigSchema, type RoSAConfig } from './config.js';

export const rosaVariant = makeSparseVariant<RoSAConfig>({
  name: 'rosa',
  // RoSA: accumulated squared gradients (a Fisher estimate)
  supportScores: { criteria: ['fisher', 'gradient', 'sensitivity', 'magnitude'] },
  describe: 'RoSA: scaling · B A + S, a LoRA term and a fixed-support sparse term (indices + values) trained jointly',
  paper: 'Nikdan et al. 2024, RoSA: Accurate Parameter-Efficient Fine-Tuning via Robust Adaptation',
  differs: [
    'the data-free default support is the largest |W|; the paper\'s accumulated squared gradients come through initWithScores',
  ],
  schema: rosaConfigSchema,
  create(base, c, rng, scores) {
    const [out, inp] = base.shape as [number, number];
    const factors = loraFactorsFor(base, c.r, rng.fork('lora'));
    const s = scores ?? (c.score === 'magnitude' ? magnitudeScores(base) : randomScores(base.shape, rng.fork('support')));
    const support = topSupport(s, base, countOf(out * inp, c.density), 'rosa.init', 'density');
    return { params: { ...factors, rosa_values: tensor(new Float32Array(support.length), [support.length]) }, indices: { support } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    addLowRank(d, state.params.lora_B!, state.params.lora_A!, loraScaling(state.config));
    scatterAdd(d, state.indices.support!, state.params.rosa_values!);
    return d;
  },
  addForward(x, state, y) {
    addLowRankForward(x, state.params.lora_B!, state.params.lora_A!, loraScaling(state.config), y);
    addSparseForward(x, state.indices.support!, state.params.rosa_values!, state.shape[1], y);
  },
  count: ([out, inp], c) => c.r * (out + inp) + countOf(out * inp, c.density),
});
