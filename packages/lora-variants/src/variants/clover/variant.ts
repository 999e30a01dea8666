// CLOVER (Meng et al., "Constrained Learning with Orthonormal Vectors"): learning is kept inside the
// weight's own latent space by orthonormalizing it and tuning only the singular values. On one weight
// [out, in] split into `heads` row blocks W_h [d, in] (d = out / heads, as Q/K/V/O rows are split per
// head), each block is decomposed W_h = U_h diag(σ_h) V_hᵀ over its full spectrum (k = min(d, in)) and
// only σ_h moves, additively: ΔW_h = U_h diag(δ_h) V_hᵀ, δ zero at init. Trainable: heads · k.
// The paper's cross-matrix Absorb-Decompose (orthonormalizing Q with K and V with O jointly) spans two
// weights and is not expressible as a single-weight variant; this is the per-weight part.
import { ArgumentError, svd, tensor, type Float32Tensor } from '@sparse/tensor';
import { defineFamilyVariant } from '../helpers/family.js';
import { cloverConfigSchema, type CLOVERConfig } from './config.js';

export const CLOVER_FROZEN = ['clover_U', 'clover_V'] as const;

function headDims(shape: readonly [number, number] | readonly number[], heads: number, where: string): { d: number; k: number } {
  const [out, inp] = [shape[0]!, shape[1]!];
  if (out % heads !== 0) throw new ArgumentError(`${where}: heads = ${heads} does not divide out = ${out}`);
  const d = out / heads;
  return { d, k: Math.min(d, inp) };
}

export const cloverVariant = defineFamilyVariant<CLOVERConfig>({
  name: 'clover',
  describe: 'CLOVER: per-head SVD W_h = U_h diag(σ_h) V_hᵀ; only the singular values train (ΔW_h = U_h diag(δ_h) V_hᵀ)',
  schema: cloverConfigSchema,
  init(base, c) {
    const [, inp] = base.shape as [number, number];
    const { d, k } = headDims(base.shape, c.heads, 'clover.init');
    const u = new Float32Array(c.heads * d * k);
    const v = new Float32Array(c.heads * k * inp);
    for (let h = 0; h < c.heads; h++) {
      const block = tensor(base.data.subarray(h * d * inp, (h + 1) * d * inp), [d, inp]);
      const f = svd(block);
      // u block [d, k] as is; v stored transposed, [k, in].
      u.set(f.u.data as Float32Array, h * d * k);
      for (let t = 0; t < k; t++) for (let j = 0; j < inp; j++) v[h * k * inp + t * inp + j] = f.v.data[j * k + t]!;
    }
    return {
      clover_U: tensor(u, [c.heads, d, k]),
      clover_V: tensor(v, [c.heads, k, inp]),
      clover_delta: tensor(new Float32Array(c.heads * k), [c.heads, k]),
    };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const { heads } = state.config;
    const { d, k } = headDims(state.shape, heads, 'clover.delta');
    const u = state.params.clover_U!.data;
    const v = state.params.clover_V!.data;
    const s = state.params.clover_delta!.data;
    const dw = new Float32Array(out * inp);
    for (let h = 0; h < heads; h++) for (let i = 0; i < d; i++) {
      const row = (h * d + i) * inp;
      for (let t = 0; t < k; t++) {
        const a = u[(h * d + i) * k + t]! * s[h * k + t]!;
        if (a === 0) continue;
        const vr = (h * k + t) * inp;
        for (let j = 0; j < inp; j++) dw[row + j]! += a * v[vr + j]!;
      }
    }
    return tensor(dw, [out, inp]) as Float32Tensor;
  },
  trainable: (shape, c) => c.heads * headDims(shape, c.heads, 'clover.trainableCount').k,
});
