// Spectral adapter, additive form (Zhang & Pilanci, "Spectral Adapter: Fine-Tuning in Spectral Space"):
// W = U S Vᵀ; the top-r singular vectors are tuned additively, U_r → U_r + P and V_r → V_r + Q, with S
// and the remaining spectrum fixed. So W' = W + (U_r + P) S_r (V_r + Q)ᵀ − U_r S_r V_rᵀ, i.e.
// ΔW = P S_r (V_r + Q)ᵀ + U_r S_r Qᵀ, exactly zero while P [out, r] and Q [in, r] are zero. Both get a
// gradient at zero (G V_r S_r and Gᵀ U_r S_r). Trainable: r (out + in).
import { matmul, tensor } from '@sparse/tensor';
import { checkRank, defineFamilyVariant, plus, scaleColumns, topSVD } from '../helpers/family.js';
import { spectralAdapterConfigSchema, type SpectralAdapterConfig } from './config.js';

export const SPECTRAL_ADAPTER_FROZEN = ['spectral_U', 'spectral_S', 'spectral_V'] as const;

export const spectralAdapterVariant = defineFamilyVariant<SpectralAdapterConfig>({
  name: 'spectral-adapter',
  describe: 'Spectral adapter (additive): top-r singular vectors tuned as U_r + P, V_r + Q; trains r (out + in)',
  paper: 'Zhang & Pilanci 2024, Spectral Adapter: Fine-Tuning in Spectral Space',
  differs: [
    'the additive form only (U_r + P, V_r + Q); the paper\'s rotational form is not here',
  ],
  schema: spectralAdapterConfigSchema,
  init(base, c, rng) {
    checkRank(c.r, base.shape, 'spectral-adapter.init');
    const [out, inp] = base.shape as [number, number];
    const { u, s, v } = topSVD(base, c.r, rng);
    return {
      spectral_U: u,
      spectral_S: tensor(s, [c.r]),
      spectral_V: v,
      spectral_P: tensor(new Float32Array(out * c.r), [out, c.r]),
      spectral_Q: tensor(new Float32Array(inp * c.r), [inp, c.r]),
    };
  },
  delta(state) {
    const p = state.params;
    const s = p.spectral_S!.data;
    const a = matmul(scaleColumns(p.spectral_P!, s), plus(p.spectral_V!, p.spectral_Q!), { transB: true });
    return plus(a, matmul(scaleColumns(p.spectral_U!, s), p.spectral_Q!, { transB: true }));
  },
  forwardDelta(x, state) {
    const p = state.params;
    const s = p.spectral_S!.data;
    const a = matmul(scaleColumns(matmul(x, plus(p.spectral_V!, p.spectral_Q!)), s), p.spectral_P!, { transB: true });
    return plus(a, matmul(scaleColumns(matmul(x, p.spectral_Q!), s), p.spectral_U!, { transB: true }));
  },
  trainable: (shape, c) => c.r * (shape[0] + shape[1]),
});
