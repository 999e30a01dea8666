// SNELL (Shen et al., "Expanding Sparse Tuning for Low Memory Usage": sparse tuning with kernelized LoRA).
// The tunable matrix is merged from two low-dimensional factor sets by a nonlinear kernel instead of an
// inner product, which raises its rank: with u_h [out, dim] and v_h [in, dim] for two heads h = 0, 1,
//   K_ij = scale · (‖u_0i − v_0j‖_p − ‖u_1i − v_1j‖_p)
// (a signed sum of distance kernels, as in the authors' code). Competition-based sparsification then
// keeps only the (1 − sparsity) · out · in entries of largest |K| — no index is stored, the survivors are
// re-decided from the current factors at every use, and gradients reach the factors through them:
// ΔW = K ⊙ topk(|K|). Both heads start equal, so K = 0 exactly at init (the paper starts from random,
// non-zero K); training moves them apart. Trainable: 2 · dim · (out + in).
import { topKMask, isKept } from '@sparse/masks';
import type { Mask } from '@sparse/masks';
import { tensor, type Float32Tensor, type Random } from '@sparse/tensor';
import type { AdapterState } from '../types.js';
import { makeSparseVariant, matmulT } from '../helpers/sparse.js';
import { snellConfigSchema, type SNELLConfig } from './config.js';

/** The dense kernel matrix K [out, in] (float64 accumulation). */
export function snellKernel(state: AdapterState<SNELLConfig>): Float32Tensor {
  const [out, inp] = state.shape;
  const { dim, p, scale } = state.config;
  const u = state.params.snell_out!.data; // [2, out, dim]
  const v = state.params.snell_in!.data; // [2, in, dim]
  const k = new Float32Array(out * inp);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inp; j++) {
      let total = 0;
      for (let h = 0; h < 2; h++) {
        let d = 0;
        for (let t = 0; t < dim; t++) {
          const diff = u[(h * out + i) * dim + t]! - v[(h * inp + j) * dim + t]!;
          d += p === 1 ? Math.abs(diff) : diff * diff;
        }
        total += (h === 0 ? 1 : -1) * (p === 1 ? d : Math.sqrt(d));
      }
      k[i * inp + j] = scale * total;
    }
  }
  return tensor(k, [out, inp]);
}

/** The competition's survivors: the (1 − sparsity) · size entries of largest |K| (ties: lower index). */
export function snellMask(kernel: Float32Tensor, sparsity: number): Mask {
  const n = kernel.data.length;
  return topKMask(tensor(Float32Array.from(kernel.data, Math.abs), kernel.shape), Math.round((1 - sparsity) * n));
}

function sparseKernel(state: AdapterState<SNELLConfig>): Float32Tensor {
  const k = snellKernel(state);
  const m = snellMask(k, state.config.sparsity);
  for (let q = 0; q < k.data.length; q++) if (!isKept(m, q)) k.data[q] = 0;
  return k;
}

export const snellVariant = makeSparseVariant<SNELLConfig>({
  name: 'snell',
  describe: 'SNELL: a distance-kernel merge of low-dimensional factors, sparsified by competition (largest |K| survive, no stored index)',
  schema: snellConfigSchema,
  create(base, c, rng: Random) {
    const [out, inp] = base.shape as [number, number];
    const bound = 1 / Math.sqrt(c.dim);
    const one = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-bound, bound));
    // Head 1 is a copy of head 0, so the kernel difference starts at exactly 0.
    const u = one(out * c.dim);
    const v = one(inp * c.dim);
    const both = (x: Float32Array) => {
      const y = new Float32Array(2 * x.length);
      y.set(x, 0);
      y.set(x, x.length);
      return y;
    };
    return { params: { snell_out: tensor(both(u), [2, out, c.dim]), snell_in: tensor(both(v), [2, inp, c.dim]) }, indices: {} };
  },
  delta: (state) => sparseKernel(state),
  addForward(x, state, y) {
    // K has no low-rank factorization (the kernel is what lifts its rank), so the sparse K is formed.
    const part = matmulT(x, sparseKernel(state));
    for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + part.data[q]!;
  },
  count: ([out, inp], c) => 2 * c.dim * (out + inp),
});
