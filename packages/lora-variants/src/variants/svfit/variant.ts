// SVFit (Sun et al.): the top-r singular triplets of W, W ≈ U_r diag(σ) V_rᵀ, with the singular values as
// the only trainable parameters and the singular vectors frozen. Written as an additive update of the
// values, σ + δ: ΔW = U_r diag(δ) V_rᵀ with δ [r] starting at zero. Trainable: r.
import { matmul, tensor } from '@sparse/tensor';
import { checkRank, defineFamilyVariant, scaleColumns, topSVD, transposed } from '../helpers/family.js';
import { svfitConfigSchema, type SVFitConfig } from './config.js';

export const SVFIT_FROZEN = ['svfit_U', 'svfit_V'] as const;

export const svfitVariant = defineFamilyVariant<SVFitConfig>({
  name: 'svfit',
  describe: 'SVFit: ΔW = U_r diag(δ) V_rᵀ over the frozen top-r singular vectors of W; only the r values δ train',
  paper: 'Sun et al. 2024, SVFit: Parameter-Efficient Fine-Tuning of Large Pre-Trained Models Using Singular Values',
  differs: [],
  schema: svfitConfigSchema,
  init(base, c, rng) {
    checkRank(c.r, base.shape, 'svfit.init');
    const { u, v } = topSVD(base, c.r, rng);
    return { svfit_U: u, svfit_V: transposed(v), svfit_delta: tensor(new Float32Array(c.r), [c.r]) };
  },
  delta: (state) => matmul(scaleColumns(state.params.svfit_U!, state.params.svfit_delta!.data), state.params.svfit_V!),
  forwardDelta(x, state) {
    const p = state.params;
    return matmul(scaleColumns(matmul(x, p.svfit_V!, { transB: true }), p.svfit_delta!.data), p.svfit_U!, { transB: true });
  },
  trainable: (_shape, c) => c.r,
});
