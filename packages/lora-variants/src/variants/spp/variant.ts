// SPP (Sparsity-Preserved PEFT). The abstract: "lightweight learnable column and row matrices ... by
// element-wise multiplication and residual addition". We take the rank-1 form: a row vector u [out]
// and a column vector v [in], ΔW = W ⊙ (u vᵀ), so W' = W + W ⊙ (u vᵀ) = W ⊙ (1 + u vᵀ). u starts at 0
// (ΔW = 0) and v at 1 (so u gets a gradient at once). ΔW is zero wherever W is: the mask survives by
// construction, during training and after merging. Trainable count: out + in.
import { ArgumentError, matmul, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { checkShape, checkState, floatMatrix, parseWith } from '../helpers/common.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import { sppConfigSchema, type SPPConfig } from './config.js';

const where = (op: string) => `spp.${op}`;

/** Calls fn(k, u_i v_j) over the row-major entries of an [out, in] matrix. */
function eachScale(state: AdapterState<SPPConfig>, fn: (k: number, s: number) => void): void {
  const u = state.params.spp_row!.data;
  const v = state.params.spp_col!.data;
  const [out, inp] = state.shape;
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) fn(i * inp + j, u[i]! * v[j]!);
}

export const sppVariant: AdapterVariant<SPPConfig> = {
  kind: 'adapter',
  name: 'spp',
  describe: 'SPP: W ⊙ (1 + u vᵀ), learnable row scales u and column scales v on the sparse weight',
  schema: sppConfigSchema,
  parseConfig: (config) => parseWith(sppConfigSchema, config, 'spp'),
  init(base: Tensor, config: unknown, _rng: Random) {
    const c = parseWith(sppConfigSchema, config, 'spp');
    const [out, inp] = floatMatrix(base, where('init'), 'base').shape as [number, number];
    return {
      variant: 'spp',
      shape: [out, inp],
      config: c,
      params: { spp_row: tensor(new Float32Array(out), [out]), spp_col: tensor(new Float32Array(inp).fill(c.colInit), [inp]) },
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
    // x (W ⊙ u vᵀ)ᵀ = ((x ⊙ v) Wᵀ) ⊙ u: the adapter path costs one more product with W, no dense ΔW.
    const xv = floatMatrix(x, where('forward'), 'x');
    const v = state.params.spp_col!.data;
    const u = state.params.spp_row!.data;
    const inp = state.shape[1];
    for (let k = 0; k < xv.data.length; k++) xv.data[k] = xv.data[k]! * v[k % inp]!;
    const y = matmul(x, base, { transB: true });
    const extra = matmul(xv, base, { transB: true });
    const out = state.shape[0];
    for (let k = 0; k < y.data.length; k++) y.data[k] = y.data[k]! + extra.data[k]! * u[k % out]!;
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
    parseWith(sppConfigSchema, config, 'spp');
    return shape[0] + shape[1];
  },
};

