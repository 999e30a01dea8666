// SNELL (Shen et al., "Expanding Sparse Tuning for Low Memory Usage": sparse tuning with kernelized LoRA).
// The tunable matrix is merged from two low-dimensional factor sets by a nonlinear kernel instead of an
// inner product, which raises its rank: with u_h [out, dim] and v_h [in, dim] for two heads h = 0, 1,
//   K_ij = scale · (‖u_0i − v_0j‖_p − ‖u_1i − v_1j‖_p)
// (a signed sum of distance kernels, as in the authors' code). Competition-based sparsification then
// keeps only the (1 − sparsity) · out · in entries of largest |K| — no index is stored, the survivors are
// re-decided from the current factors at every use, and gradients reach the factors through them:
// ΔW = K ⊙ topk(|K|). Trainable: 2 · dim · (out + in). Config `init: random` is the paper's init (every
// head's factors drawn independently, U(±1/√(n · dim)), the bound of the authors' kaiming-uniform, so K ≠ 0
// from the start); config `allocate` is the bi-level competition of the authors' follow-up (SNELLA): the
// layers compete for one budget of kept entries by the importance of their factors (`snellAllocate`,
// driven by the tfjs form's training hooks), the entries of a layer by |K|.
// differs: the default `init: zero` starts both heads equal (K = 0, so a fresh adapter is the identity, as
// every variant here starts) where the paper starts from random K; the authors' code scales the survivors
// by |K| (K ⊙ |K| ⊙ topk), we keep K ⊙ topk; the follow-up's kernel adds a softmax term, ours is SNELL's;
// its budget shrinks on a cubic schedule only when `allocate.initialSparsity` is set (else it is the target
// from the first step), it re-allocates at every step once the budget is final where we keep `every`, and
// it rounds by repeated truncation, we by largest remainders.
import { topKMask, isKept } from '@sparse/masks';
import type { Mask } from '@sparse/masks';
import { ArgumentError, tensor, type Float32Tensor, type Random } from '@sparse/tensor';
import type { AdapterState } from '../types.js';
import { makeSparseVariant, matmulT, type IndexedAdapterState } from '../helpers/sparse.js';
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
  return snellKeepMask(kernel, Math.round((1 - sparsity) * kernel.data.length));
}

/** The `keep` entries of largest |K| (ties: lower index). */
export function snellKeepMask(kernel: Float32Tensor, keep: number): Mask {
  return topKMask(tensor(Float32Array.from(kernel.data, Math.abs), kernel.shape), keep);
}

/**
 * How many entries of K a layer's competition keeps: `indices.kept` (set at init to round((1 − sparsity) ·
 * out · in), changed by the bi-level allocation), else, for a state without it, from the config's sparsity.
 */
export function snellKept(state: AdapterState<SNELLConfig>): number {
  const kept = (state as Partial<IndexedAdapterState>).indices?.kept;
  const [out, inp] = state.shape;
  if (kept === undefined) return Math.round((1 - state.config.sparsity) * out * inp);
  const k = kept[0];
  if (kept.length !== 1 || k === undefined || !(k >= 0 && k <= out * inp)) throw new ArgumentError(`snell: indices.kept must hold one count in [0, ${out * inp}], got [${Array.from(kept).join(', ')}]`);
  return k;
}

function sparseKernel(state: AdapterState<SNELLConfig>): Float32Tensor {
  const k = snellKernel(state);
  const m = snellKeepMask(k, snellKept(state));
  for (let q = 0; q < k.data.length; q++) if (!isKept(m, q)) k.data[q] = 0;
  return k;
}

export const snellVariant = makeSparseVariant<SNELLConfig>({
  name: 'snell',
  describe: 'SNELL: a distance-kernel merge of low-dimensional factors, sparsified by competition (largest |K| survive); init random as the paper, allocate: layers compete for one budget (differs: default init zero, no softmax kernel term)',
  paper: 'Shen et al. 2024, Expanding Sparse Tuning for Low Memory Usage (SNELL)',
  differs: [
    'the default init: \'zero\' starts both heads equal (K = 0, the identity start); the paper starts from random K (init: \'random\')',
    'the authors\' code scales the survivors by |K|; here K ⊙ topk',
    'allocate follows the authors\' follow-up (SNELLA) without its softmax kernel term; its budget shrinks only when allocate.initialSparsity is set, the allocation stays every `every` steps once the budget is final (the authors re-allocate every step), and counts round by largest remainders',
  ],
  schema: snellConfigSchema,
  create(base, c, rng: Random) {
    const [out, inp] = base.shape as [number, number];
    const kept = Int32Array.of(Math.round((1 - c.sparsity) * out * inp));
    const draw = (n: number, bound: number) => Float32Array.from({ length: n }, () => rng.uniform(-bound, bound));
    if (c.init === 'random') {
      // The paper: each head's factors independent, kaiming-uniform (a = √5) on [heads, n, dim], bound 1/√(n · dim).
      const u = draw(2 * out * c.dim, 1 / Math.sqrt(out * c.dim));
      const v = draw(2 * inp * c.dim, 1 / Math.sqrt(inp * c.dim));
      return { params: { snell_out: tensor(u, [2, out, c.dim]), snell_in: tensor(v, [2, inp, c.dim]) }, indices: { kept } };
    }
    const bound = 1 / Math.sqrt(c.dim);
    // Head 1 is a copy of head 0, so the kernel difference starts at exactly 0.
    const u = draw(out * c.dim, bound);
    const v = draw(inp * c.dim, bound);
    const both = (x: Float32Array) => {
      const y = new Float32Array(2 * x.length);
      y.set(x, 0);
      y.set(x, x.length);
      return y;
    };
    return { params: { snell_out: tensor(both(u), [2, out, c.dim]), snell_in: tensor(both(v), [2, inp, c.dim]) }, indices: { kept } };
  },
  delta: (state) => sparseKernel(state),
  addForward(x, state, y) {
    // K has no low-rank factorization (the kernel is what lifts its rank), so the sparse K is formed.
    const part = matmulT(x, sparseKernel(state));
    for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + part.data[q]!;
  },
  count: ([out, inp], c) => 2 * c.dim * (out + inp),
});

/**
 * The bi-level competition's upper level: splits `total` kept entries over layers in proportion to
 * `scores` (≥ 0), each layer getting at least 1 and at most `sizes[l]`. Water-filling: layers whose
 * proportional share of what remains exceeds their room are filled and leave; the rest get the floor of
 * their share, and the leftover units go to the largest fractional remainders (ties: the lower layer).
 * Returns undefined when every score is 0 (no information to allocate by).
 */
export function snellAllocate(total: number, scores: readonly number[], sizes: readonly number[]): number[] | undefined {
  const n = scores.length;
  if (sizes.length !== n) throw new ArgumentError(`snellAllocate: ${n} scores but ${sizes.length} sizes`);
  const room = sizes.reduce((a, b) => a + b, 0);
  if (!Number.isInteger(total) || total < n || total > room) throw new ArgumentError(`snellAllocate: total must be an integer in [${n}, ${room}] (one entry per layer at least, all at most), got ${total}`);
  scores.forEach((x, l) => {
    if (!(x >= 0) || !Number.isFinite(x)) throw new ArgumentError(`snellAllocate: scores[${l}] must be finite and ≥ 0, got ${x}`);
  });
  if (scores.every((x) => x === 0)) return undefined;
  const out = new Array<number>(n).fill(1);
  let remaining = total - n;
  const free = new Set(Array.from({ length: n }, (_, l) => l));
  for (;;) {
    const mass = [...free].reduce((a, l) => a + scores[l]!, 0);
    if (mass === 0 || remaining === 0) break;
    const full = [...free].filter((l) => (remaining * scores[l]!) / mass >= sizes[l]! - out[l]!);
    if (full.length === 0) {
      const share = [...free].map((l) => [l, (remaining * scores[l]!) / mass] as const);
      let left = remaining;
      for (const [l, x] of share) {
        out[l]! += Math.floor(x);
        left -= Math.floor(x);
      }
      share.sort((a, b) => b[1] - Math.floor(b[1]) - (a[1] - Math.floor(a[1])) || a[0] - b[0]);
      for (let t = 0; t < left; t++) out[share[t]![0]]! += 1;
      remaining = 0;
      break;
    }
    for (const l of full) {
      remaining -= sizes[l]! - out[l]!;
      out[l] = sizes[l]!;
      free.delete(l);
    }
  }
  // zero-score layers left with room while entries remain (every scored layer full): fill them in order
  for (let l = 0; l < n && remaining > 0; l++) {
    const add = Math.min(remaining, sizes[l]! - out[l]!);
    out[l]! += add;
    remaining -= add;
  }
  return out;
}
