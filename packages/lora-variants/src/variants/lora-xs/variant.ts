// LoRA-XS (Bałazy et al.): frozen truncated-SVD factors of W, B = U_r S_r [out, r] and A = V_rᵀ [r, in],
// and a trainable r x r core R between them: ΔW = B R A. R starts at zero, so the adapter starts as
// the identity; its gradient Bᵀ G Aᵀ is not zero, so it trains from the first step. Trainable: r².
import { matmul, tensor } from '@sparse/tensor';
import { checkRank, defineFamilyVariant, scaleColumns, topSVD, transposed } from '../helpers/family.js';
import { loraXSConfigSchema, type LoRAXSConfig } from './config.js';

export const LORA_XS_FROZEN = ['xs_A', 'xs_B'] as const;

export const loraXSVariant = defineFamilyVariant<LoRAXSConfig>({
  name: 'lora-xs',
  describe: 'LoRA-XS: ΔW = (U_r S_r) R V_rᵀ with frozen SVD factors of W and a trainable r x r R (zero init)',
  paper: 'Bałazy et al. 2024, LoRA-XS: Low-Rank Adaptation with Extremely Small Number of Parameters',
  differs: [],
  schema: loraXSConfigSchema,
  init(base, c, rng) {
    checkRank(c.r, base.shape, 'lora-xs.init');
    const { u, s, v } = topSVD(base, c.r, rng);
    return { xs_B: scaleColumns(u, s), xs_A: transposed(v), xs_R: tensor(new Float32Array(c.r * c.r), [c.r, c.r]) };
  },
  delta: (state) => matmul(matmul(state.params.xs_B!, state.params.xs_R!), state.params.xs_A!),
  forwardDelta(x, state) {
    const p = state.params;
    return matmul(matmul(matmul(x, p.xs_A!, { transB: true }), p.xs_R!, { transB: true }), p.xs_B!, { transB: true });
  },
  trainable: (_shape, c) => c.r * c.r,
});
