// SSF (Lian et al., "Scaling & Shifting Your Features"): y = γ ⊙ (x Wᵀ) + β, re-parameterized into the
// layer at merge time: W' = diag(γ) W and b' = γ ⊙ b + β. γ [out] starts at 1 and β [out] at 0 (identity);
// ΔW = diag(γ − 1) W is the weight part, mergeBias the bias part (b = 0 for a layer without one). A row
// scale is zero wherever W is, so the mask survives by construction. Trainable: 2 · out.
import { ArgumentError, matmul, tensor } from '@sparse/tensor';
import { mergeMask } from '../helpers/common.js';
import { defineFamilyVariant } from '../helpers/family.js';
import { ssfConfigSchema, type SSFConfig } from './config.js';

export const ssfVariant = defineFamilyVariant<SSFConfig>({
  name: 'ssf',
  describe: 'SSF (scale): W′ = diag(γ) W with a learnable per-output scale γ starting at 1; mergeable, keeps the mask',
  paper: 'Lian et al. 2022, Scaling & Shifting Your Features: A New Baseline for Efficient Model Tuning (SSF)',
  differs: [
    'the scale and shift act on a linear layer\'s output and are merged into its weight and bias; the paper inserts them after every operation of the backbone',
  ],
  schema: ssfConfigSchema,
  init(base) {
    const out = base.shape[0]!;
    return { ssf_scale: tensor(new Float32Array(out).fill(1), [out]), ssf_shift: tensor(new Float32Array(out), [out]) };
  },
  delta(state, base) {
    const g = state.params.ssf_scale!.data;
    const inp = state.shape[1];
    return tensor(Float32Array.from(base.data, (w, k) => (g[Math.floor(k / inp)]! - 1) * w), base.shape);
  },
  forwardDelta(x, state, base) {
    const y = matmul(x, base, { transB: true });
    const g = state.params.ssf_scale!.data;
    const out = state.shape[0];
    for (let k = 0; k < y.data.length; k++) y.data[k] = y.data[k]! * (g[k % out]! - 1);
    return y;
  },
  merge(w, state, opts) {
    mergeMask(w, opts, 'ssf.merge'); // validates a given mask's shape
    const g = state.params.ssf_scale!.data;
    const inp = state.shape[1];
    // Zeros are skipped: 0 · (negative γ) would be -0 and change the stored bits.
    for (let k = 0; k < w.data.length; k++) if (w.data[k] !== 0) w.data[k] = w.data[k]! * g[Math.floor(k / inp)]!;
    return w;
  },
  unmerge(w, state) {
    const g = state.params.ssf_scale!.data;
    const inp = state.shape[1];
    g.forEach((v, i) => {
      if (v === 0) throw new ArgumentError(`ssf.unmerge: scale γ is 0 at row ${i}; the merge cannot be undone`);
    });
    for (let k = 0; k < w.data.length; k++) if (w.data[k] !== 0) w.data[k] = w.data[k]! / g[Math.floor(k / inp)]!;
    return w;
  },
  mergeBias(b, state) {
    const g = state.params.ssf_scale!.data;
    const beta = state.params.ssf_shift!.data;
    return tensor(Float32Array.from(b, (v, i) => g[i]! * v + beta[i]!), [b.length]);
  },
  unmergeBias(m, state) {
    const g = state.params.ssf_scale!.data;
    const beta = state.params.ssf_shift!.data;
    g.forEach((v, i) => {
      if (v === 0) throw new ArgumentError(`ssf.unmergeBias: scale γ is 0 at row ${i}; the merge cannot be undone`);
    });
    return tensor(Float32Array.from(m, (v, i) => (v - beta[i]!) / g[i]!), [m.length]);
  },
  trainable: (shape) => 2 * shape[0],
});
