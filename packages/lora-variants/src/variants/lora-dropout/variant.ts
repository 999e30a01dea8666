// LoRA Dropout (Lin et al., "LoRA Dropout as a Sparsity Regularizer for Overfitting Control"): while
// training, Bernoulli masks drop input columns of A and output rows of B, A·diag(m_A) and diag(m_B)·B with
// m ~ Bern(1 − p), a sparsity regularizer on the adapter. We rescale each mask by 1/(1 − p) (inverted
// dropout), so the expected ΔW is the plain scaling · B A that `delta` returns and that a merge writes.
// At test time the paper averages the outputs of several sampled adapters (test-time ensemble):
// `loraDropoutEnsembleForward` does it for one layer, `loraDropoutEnsemble` (tfjs) for a whole model.
// The field is `p`, not `dropout`: LoRA's `dropout` is input dropout, which attachAdapters refuses.
// Trainable: r (out + in).
import { ArgumentError, matmul, ShapeError, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { checkShape, checkState, floatMatrix } from '../helpers/common.js';
import type { AdapterState } from '../types.js';
import { loraFactors } from '../lora/variant.js';
import { defineFamilyVariant } from '../helpers/family.js';
import { loraDropoutConfigSchema, type LoRADropoutConfig } from './config.js';

export function loraDropoutScaling(c: LoRADropoutConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

export const loraDropoutVariant = defineFamilyVariant<LoRADropoutConfig>({
  name: 'lora-dropout',
  describe: 'LoRA Dropout: Bernoulli masks on A’s input columns and B’s output rows while training; test-time ensemble',
  paper: 'Lin et al. 2024, LoRA Dropout as a Sparsity Regularizer for Overfitting Control',
  differs: [
    'each mask is rescaled by 1/(1 − p) (inverted dropout), so the merged ΔW is the expected one',
  ],
  schema: loraDropoutConfigSchema,
  init(base, c, rng) {
    const [out, inp] = base.shape as [number, number];
    return {
      ...loraFactors(out, inp, c.r, rng),
    };
  },
  delta(state) {
    const d = matmul(state.params.lora_B!, state.params.lora_A!);
    const s = loraDropoutScaling(state.config);
    for (let k = 0; k < d.data.length; k++) d.data[k] = d.data[k]! * s;
    return d;
  },
  trainable: (shape, c) => c.r * (shape[0] + shape[1]),
});

/** One training-time ΔW: scaling/(1 − p)² · diag(m_B) B A diag(m_A), masks drawn from rng (B's rows first). */
export function sampleLoRADropoutDelta(state: AdapterState, rng: Random): Float32Tensor {
  checkState(state, 'lora-dropout', 'sampleLoRADropoutDelta');
  const s = state as AdapterState<LoRADropoutConfig>;
  const [out, inp] = s.shape;
  const keep = 1 - s.config.p;
  const mb = Float32Array.from({ length: out }, () => (rng.uniform() < keep ? 1 / keep : 0));
  const ma = Float32Array.from({ length: inp }, () => (rng.uniform() < keep ? 1 / keep : 0));
  const d = loraDropoutVariant.delta(s, tensor(new Float32Array(out * inp), [out, inp]));
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) d.data[i * inp + j] = d.data[i * inp + j]! * mb[i]! * ma[j]!;
  return d;
}

/** Test-time ensemble for one layer: the mean of x (W + ΔW_n)ᵀ over `samples` sampled adapters. */
export function loraDropoutEnsembleForward(x: Tensor, base: Tensor, state: AdapterState, opts: { samples: number; rng: Random }): Float32Tensor {
  checkState(state, 'lora-dropout', 'loraDropoutEnsembleForward');
  checkShape(base, state, 'loraDropoutEnsembleForward', 'base');
  if (!Number.isInteger(opts.samples) || opts.samples < 1) throw new ArgumentError(`loraDropoutEnsembleForward: samples must be a positive integer, got ${String(opts.samples)}`);
  const xs = floatMatrix(x, 'loraDropoutEnsembleForward', 'x');
  if (xs.shape[1] !== state.shape[1]) throw new ShapeError(`loraDropoutEnsembleForward: x has ${xs.shape[1]} features but the weight takes ${state.shape[1]}`);
  const y = matmul(xs, base, { transB: true });
  const acc = new Float64Array(y.data.length);
  for (let n = 0; n < opts.samples; n++) {
    const extra = matmul(xs, sampleLoRADropoutDelta(state, opts.rng), { transB: true });
    for (let k = 0; k < acc.length; k++) acc[k]! += extra.data[k]!;
  }
  for (let k = 0; k < y.data.length; k++) y.data[k] = y.data[k]! + acc[k]! / opts.samples;
  return y;
}
