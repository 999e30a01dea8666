// Null-LoRA (Zhang et al., "Low-Rank Adaptation on Null Space"): part of the low-rank pair is frozen to a
// basis N [in, r] of a null space and the whole update is confined to it: ΔW = B Nᵀ, B [out, r] trained
// from zero, so ΔW x = 0 for every x orthogonal to N. The null space is either W's ('weight': the right
// singular directions with the r smallest singular values, exact null directions first when in > out,
// so the update leaves W's top singular subspace untouched) or the calibration inputs' ('inputs': the r
// least-used directions of their covariance, so outputs on that data stay as they were). Trainable: out · r.
import { ArgumentError, matmul, svd, tensor } from '@sparse/tensor';
import { calibrationCovariance, defineFamilyVariant, needsCovariance } from '../helpers/family.js';
import { nullLoRAConfigSchema, type NullLoRAConfig } from './config.js';

export const NULL_LORA_FROZEN = ['null_N'] as const;

export const nullLoRAVariant = defineFamilyVariant<NullLoRAConfig>({
  name: 'null-lora',
  describe: "Null-LoRA: ΔW = B Nᵀ with N a frozen basis of W's (or the calibration inputs') null space; only B trains",
  paper: 'Zhang et al. 2025, Null-LoRA: Low-Rank Adaptation on Null Space',
  differs: [
    'all of A is the frozen null-space basis N and only B trains; the paper\'s cross-frozen halves of both factors and its norm scaling are not reproduced',
  ],
  schema: nullLoRAConfigSchema,
  // the inputs' null space needs their covariance; W's own needs no data
  initStatistics: (c) => (c.space === 'inputs' ? needsCovariance(c) : []),
  init(base, c) {
    const [out, inp] = base.shape as [number, number];
    if (c.r > inp) throw new ArgumentError(`null-lora.init: r = ${c.r} exceeds in = ${inp}`);
    // Both spaces are the trailing eigenvectors of a PSD [in, in] matrix: WᵀW or the input covariance.
    let g: Float64Array;
    if (c.space === 'inputs') g = calibrationCovariance(c, inp, 'null-lora.init');
    else {
      if (c.covariance !== undefined || c.inputs !== undefined) throw new ArgumentError("null-lora.init: covariance/inputs are for space 'inputs'");
      g = new Float64Array(inp * inp);
      for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) {
        const wi = base.data[o * inp + i]!;
        if (wi === 0) continue;
        for (let j = 0; j < inp; j++) g[i * inp + j]! += wi * base.data[o * inp + j]!;
      }
    }
    const f = svd(tensor(g, [inp, inp]));
    const n = new Float32Array(c.r * inp);
    for (let t = 0; t < c.r; t++) for (let j = 0; j < inp; j++) n[t * inp + j] = f.v.data[j * inp + (inp - c.r + t)]!;
    return { null_N: tensor(n, [c.r, inp]), null_B: tensor(new Float32Array(out * c.r), [out, c.r]) };
  },
  stateConfig: ({ covariance: _c, inputs: _x, ...rest }) => rest,
  delta: (state) => matmul(state.params.null_B!, state.params.null_N!),
  forwardDelta: (x, state) => matmul(matmul(x, state.params.null_N!, { transB: true }), state.params.null_B!, { transB: true }),
  trainable: (shape, c) => shape[0] * c.r,
});
