// LoRA-SB (Ponkshe et al., "Initialization using update approximation is a silver bullet"): LoRA-XS's
// structure, frozen B [out, r] and A [r, in] around a trainable r x r R, initialized so that B R A is the
// best rank-r approximation of the first full fine-tuning step. As in the paper, B and A come from the
// SVD of that step: with a gradient G of the loss w.r.t. W and SGD step size η, the step is −η G = U S Vᵀ,
// B = U_r, A = V_rᵀ, R_init = S_r (Eckart–Young: optimal in Frobenius norm). The gradient is given as
// config.gradient (same shape as W; average it over a few batches first); it is used at init only and
// not kept in the state's config.
//
// ΔW = B (R − R₀) A with a frozen R₀. By default R₀ = R_init: the paper's residual form W − B R_init A +
// B R A, so the forward starts unchanged while R starts at R_init. With firstStep: true, R₀ = 0 and the
// adapted weight starts at W − η·(rank-r part of G), the first step itself. Trainable: r².
import { ArgumentError, matmul, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { floatMatrix } from '../helpers/common.js';
import { checkRank, defineFamilyVariant, minus, topSVD, transposed } from '../helpers/family.js';
import { loraSBConfigSchema, type LoRASBConfig } from './config.js';

export const LORA_SB_FROZEN = ['sb_A', 'sb_B', 'sb_R0'] as const;

export const loraSBVariant = defineFamilyVariant<LoRASBConfig>({
  name: 'lora-sb',
  describe: 'LoRA-SB: B (R − R₀) A with frozen B, A and R initialized from the SVD of the first step −η G (config.gradient)',
  paper: 'Ponkshe et al. 2024, Initialization using Update Approximation is a Silver Bullet for Extreme Efficient Low-Rank Fine-Tuning (LoRA-SB)',
  differs: [],
  schema: loraSBConfigSchema,
  // R's init is the SVD of the first step −η G: G from a few batches of the training data
  initStatistics: (c) => (c.gradient === undefined ? ['gradient'] : []),
  init(base, c, rng) {
    const where = 'lora-sb.init';
    if (c.gradient === undefined) throw new ArgumentError(`${where}: config.gradient (∂L/∂W, [${base.shape.join(', ')}]) is required to initialize R`);
    const g = floatMatrix(c.gradient as Tensor, where, 'config.gradient');
    if (g.shape[0] !== base.shape[0] || g.shape[1] !== base.shape[1]) {
      throw new ShapeError(`${where}: config.gradient is [${g.shape.join(', ')}] but the weight is [${base.shape.join(', ')}]`);
    }
    checkRank(c.r, base.shape, where);
    for (let k = 0; k < g.data.length; k++) g.data[k] = -c.stepSize * g.data[k]!;
    const { u, s, v } = topSVD(g, c.r, rng);
    const r0 = new Float32Array(c.r * c.r);
    for (let i = 0; i < c.r; i++) r0[i * c.r + i] = s[i]!;
    return {
      sb_B: u,
      sb_A: transposed(v),
      sb_R: tensor(r0.slice(), [c.r, c.r]),
      sb_R0: tensor(c.firstStep ? new Float32Array(c.r * c.r) : r0, [c.r, c.r]),
    };
  },
  stateConfig: ({ gradient: _g, ...rest }) => rest,
  delta: (state) => matmul(matmul(state.params.sb_B!, core(state.params)), state.params.sb_A!),
  forwardDelta(x, state) {
    const p = state.params;
    return matmul(matmul(matmul(x, p.sb_A!, { transB: true }), core(p), { transB: true }), p.sb_B!, { transB: true });
  },
  trainable: (_shape, c) => c.r * c.r,
});

function core(p: Record<string, Float32Tensor>): Float32Tensor {
  return minus(p.sb_R!, p.sb_R0!);
}
