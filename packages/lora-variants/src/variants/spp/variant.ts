// SPP (Sparsity-Preserved PEFT, Lu et al. 2024): "lightweight learnable column and row matrices ... by
// element-wise multiplication and residual addition". A row vector u [out] (the paper's W_β, zero at
// start so ΔW = 0) and r column vectors V [r, in] (W_α); the output rows split into r equal contiguous
// groups, row i in group g(i) = ⌊i r / out⌋, and ΔW_ij = W_ij u_i V_{g(i) j}, i.e. W' = W ⊙ (1 + diag(u) E V)
// with E the [out, r] group indicator (the authors' code repeat-interleaves W_α out/r times), a scale
// matrix of rank ≤ r. rank 1 (the default) is W ⊙ (1 + u vᵀ) with spp_col stored as [in]; rank r > 1
// stores spp_col as [r, in]. V starts at colInit (1), so u gets a gradient at once. ΔW is zero wherever
// W is: the mask survives by construction, during training and after merging. Trainable: out + r·in.
import { ArgumentError, matmul, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { checkShape, checkState, floatMatrix, parseWith } from '../helpers/common.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import { sppConfigSchema, type SPPConfig } from './config.js';

const where = (op: string) => `spp.${op}`;

/** The rank of a state: its config's, 1 for states written before the field existed. */
const rankOf = (state: AdapterState<SPPConfig>): number => state.config.rank ?? 1;

/** Checks that `out` splits into `rank` equal row groups; returns the group size. */
function groupSize(out: number, rank: number, op: string): number {
  if (out % rank !== 0) throw new ArgumentError(`${where(op)}: rank ${rank} must divide the ${out} output rows (SPP splits them into rank equal groups)`);
  return out / rank;
}

/** Calls fn(k, u_i V_{g(i) j}) over the row-major entries of an [out, in] matrix. */
function eachScale(state: AdapterState<SPPConfig>, fn: (k: number, s: number) => void): void {
  const u = state.params.spp_row!.data;
  const v = state.params.spp_col!.data;
  const [out, inp] = state.shape;
  const size = groupSize(out, rankOf(state), 'scale');
  for (let i = 0; i < out; i++) {
    const off = Math.floor(i / size) * inp;
    for (let j = 0; j < inp; j++) fn(i * inp + j, u[i]! * v[off + j]!);
  }
}

export const sppVariant: AdapterVariant<SPPConfig> = {
  kind: 'adapter',
  name: 'spp',
  describe: 'SPP: W ⊙ (1 + diag(u) E V), learnable row scales u and rank grouped column scales V on the sparse weight',
  paper: 'Lu et al. 2024, SPP: Sparsity-Preserved Parameter-Efficient Fine-Tuning for Large Language Models',
  differs: [
    'the column weights W_α start at the constant colInit, not at a Kaiming-uniform draw',
    'no extra lora_alpha / r factor (a constant rescaling of u)',
  ],
  schema: sppConfigSchema,
  parseConfig: (config) => parseWith(sppConfigSchema, config, 'spp'),
  init(base: Tensor, config: unknown, _rng: Random) {
    const c = parseWith(sppConfigSchema, config, 'spp');
    const [out, inp] = floatMatrix(base, where('init'), 'base').shape as [number, number];
    groupSize(out, c.rank, 'init');
    const col = new Float32Array(c.rank * inp).fill(c.colInit);
    return {
      variant: 'spp',
      shape: [out, inp],
      config: c,
      params: { spp_row: tensor(new Float32Array(out), [out]), spp_col: c.rank === 1 ? tensor(col, [inp]) : tensor(col, [c.rank, inp]) },
    };
  },
  delta(state, base) {
    checkState(state, 'spp', where('delta'));
    checkShape(base, state, where('delta'), 'base');
    const d = floatMatrix(base, where('delta'), 'base');
    eachScale(state, (k, s) => (d.data[k] = d.data[k]! * s));
    return d;
  },
  forward(x, base, state) {
    checkState(state, 'spp', where('forward'));
    checkShape(base, state, where('forward'), 'base');
    // Per row group g: x (W_g ⊙ u_g V_gᵀ)ᵀ = ((x ⊙ V_g) W_gᵀ) ⊙ u_g, so the adapter path costs one more
    // product with W in all (each group's rows once), no dense ΔW.
    const xs = floatMatrix(x, where('forward'), 'x');
    const w = floatMatrix(base, where('forward'), 'base');
    const v = state.params.spp_col!.data;
    const u = state.params.spp_row!.data;
    const [out, inp] = state.shape;
    const rank = rankOf(state);
    const size = groupSize(out, rank, 'forward');
    const n = xs.shape[0]!;
    const y = matmul(xs, w, { transB: true });
    for (let g = 0; g < rank; g++) {
      const xv = tensor(Float32Array.from(xs.data, (a, k) => a * v[g * inp + (k % inp)]!), [n, inp]);
      const wg = tensor(w.data.slice(g * size * inp, (g + 1) * size * inp), [size, inp]);
      const extra = matmul(xv, wg, { transB: true });
      for (let a = 0; a < n; a++) for (let t = 0; t < size; t++) {
        const i = g * size + t;
        y.data[a * out + i] = y.data[a * out + i]! + extra.data[a * size + t]! * u[i]!;
      }
    }
    return y;
  },
  merge(base, state, opts) {
    checkState(state, 'spp', where('merge'));
    checkShape(base, state, where('merge'), 'base');
    const w = floatMatrix(base, where('merge'), 'base');
    // W ⊙ (1 + u vᵀ) is zero wherever W is, so neither `mask` nor `densify` can change the result.
    if (opts?.mask && opts.mask.shape.join() !== w.shape.join()) throw new ArgumentError(`${where('merge')}: mask shape differs from base`);
    // Zeros are skipped, not multiplied: 0 · (negative) would give -0 and change the stored bits.
    eachScale(state, (k, s) => {
      if (w.data[k] !== 0) w.data[k] = w.data[k]! * (1 + s);
    });
    return w;
  },
  unmerge(merged, state) {
    checkState(state, 'spp', where('unmerge'));
    checkShape(merged, state, where('unmerge'), 'merged');
    const w = floatMatrix(merged, where('unmerge'), 'merged');
    eachScale(state, (k, s) => {
      if (1 + s === 0) throw new ArgumentError(`${where('unmerge')}: scale 1 + u_i v_j is 0 at flat index ${k}; the merge cannot be undone`);
      if (w.data[k] !== 0) w.data[k] = w.data[k]! / (1 + s);
    });
    return w;
  },
  trainableCount(shape, config) {
    const c = parseWith(sppConfigSchema, config, 'spp');
    return shape[0] + c.rank * shape[1];
  },
};

