// CorDA (Yang et al., "Context-Oriented Decomposition Adaptation"): decompose W oriented by the input
// covariance C of calibration data, W C = U S Vᵀ, so W = U S (Vᵀ C⁻¹). The adapter is built from r of
// these components, B₀ = U_r S_r^½ [out, r] and A₀ = S_r^½ V_rᵀ C⁻¹ [r, in], and trained like LoRA (both
// B and A) while the rest of W stays frozen. Both of the paper's modes are here: 'instruction-previewed'
// (IPA, default; C from the fine-tuning task's data, the r largest components train) and
// 'knowledge-preserved' (KPA; C from data whose knowledge is to be kept, the r smallest train).
// The paper freezes W − B₀A₀ and trains B A from B₀, A₀; with our base frozen as it is, that is
// ΔW = B A − B₀ A₀ = (B − B₀) A + B₀ (A − A₀), zero at init, with frozen copies B₀, A₀.
// C is damped, C + damping · mean(diag C) · I, so it is invertible; W = (W C)C⁻¹ holds for the damped C.
// Trainable: r (out + in).
import { ArgumentError, cholesky, choleskyInverse, matmul, svd, tensor, type Float32Tensor } from '@sparse/tensor';
import { calibrationCovariance, checkRank, defineFamilyVariant, minus, needsCovariance } from '../helpers/family.js';
import { cordaConfigSchema, type CorDAConfig } from './config.js';

export const CORDA_FROZEN = ['corda_A0', 'corda_B0'] as const;

/** B₀ [out, r] and A₀ [r, in] of CorDA's chosen components (float64 inside). */
export function cordaComponents(base: Float32Tensor, cov: Float64Array, c: Pick<CorDAConfig, 'r' | 'mode' | 'damping'>, where = 'corda'): { b: Float32Tensor; a: Float32Tensor; damped: Float64Array } {
  const [out, inp] = base.shape as [number, number];
  checkRank(c.r, base.shape, where);
  const cd = Float64Array.from(cov);
  let tr = 0;
  for (let i = 0; i < inp; i++) tr += cd[i * inp + i]!;
  if (!(tr > 0)) throw new ArgumentError(`${where}: the input covariance has a zero (or non-finite) trace; the calibration inputs are all zero`);
  const ridge = (c.damping * tr) / inp;
  for (let i = 0; i < inp; i++) cd[i * inp + i]! += ridge;
  const wc = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let p = 0; p < inp; p++) {
    const w = base.data[i * inp + p]!;
    if (w === 0) continue;
    for (let j = 0; j < inp; j++) wc[i * inp + j]! += w * cd[p * inp + j]!;
  }
  const f = svd(tensor(wc, [out, inp]));
  const k = f.s.shape[0]!;
  const cInv = choleskyInverse(cholesky(tensor(cd, [inp, inp]))).data;
  const first = c.mode === 'instruction-previewed' ? 0 : k - c.r;
  const b = new Float32Array(out * c.r);
  const a = new Float32Array(c.r * inp);
  for (let t = 0; t < c.r; t++) {
    const col = first + t;
    const root = Math.sqrt(f.s.data[col]!);
    for (let i = 0; i < out; i++) b[i * c.r + t] = f.u.data[i * k + col]! * root;
    // row t of A₀ = √σ · v_colᵀ C⁻¹ (C⁻¹ is symmetric)
    for (let j = 0; j < inp; j++) {
      let acc = 0;
      for (let p = 0; p < inp; p++) acc += f.v.data[p * k + col]! * cInv[p * inp + j]!;
      a[t * inp + j] = root * acc;
    }
  }
  return { b: tensor(b, [out, c.r]), a: tensor(a, [c.r, inp]), damped: cd };
}

export const cordaVariant = defineFamilyVariant<CorDAConfig>({
  name: 'corda',
  describe: 'CorDA: LoRA built from r components of the SVD of W C (C: input covariance); instruction-previewed or knowledge-preserved',
  paper: 'Yang et al. 2024, CorDA: Context-Oriented Decomposition Adaptation of Large Language Models for Task-Aware Parameter-Efficient Fine-tuning',
  differs: [
    'the base stays frozen as it is and ΔW = B A − B₀A₀ is added, where the paper freezes W − B₀A₀ (the same function)',
  ],
  schema: cordaConfigSchema,
  // the SVD is of W C, C the input covariance of the data the adapter is trained on
  initStatistics: needsCovariance,
  init(base, c) {
    const cov = calibrationCovariance(c, base.shape[1]!, 'corda.init');
    const { b, a } = cordaComponents(base, cov, c, 'corda.init');
    return { corda_B: tensor(b.data.slice(), b.shape), corda_A: tensor(a.data.slice(), a.shape), corda_B0: b, corda_A0: a };
  },
  stateConfig: ({ covariance: _c, inputs: _x, ...rest }) => rest,
  delta(state) {
    const p = state.params;
    const d = matmul(minus(p.corda_B!, p.corda_B0!), p.corda_A!);
    const e = matmul(p.corda_B0!, minus(p.corda_A!, p.corda_A0!));
    for (let k = 0; k < d.data.length; k++) d.data[k] = d.data[k]! + e.data[k]!;
    return d;
  },
  trainable: (shape, c) => c.r * (shape[0] + shape[1]),
});
