// The bottleneck adapter of SparseAdapter and MoSA (as Houlsby et al. / Pfeiffer et al. / AdaptFormer
// place it in parallel with a layer): for the layer's input x [n, in],
//   y = x Wᵀ (+ b) + scaling · (act(x Dᵀ + b_down) Uᵀ + b_up),
// D [r, in] the down projection, U [out, r] the up projection (zero at init, so a fresh adapter changes
// nothing), the layer's own output the residual. The nonlinearity makes it a function of x, not a ΔW,
// so it cannot be merged into W: the variants' `unmergeable` says so and their merges refuse.
import { z } from 'zod';
import { tensor, type Float32Tensor } from '@sparse/tensor';

export const bottleneckFields = {
  /**
   * 'lora': the linear (mergeable) form ΔW = scaling · B A. 'bottleneck': the papers' adapter,
   * down-project, nonlinearity, up-project, added to the layer's output; it cannot be merged.
   */
  form: z.enum(['lora', 'bottleneck']).default('lora'),
  /** The bottleneck's nonlinearity (the papers use ReLU or GELU). */
  activation: z.enum(['relu', 'gelu', 'silu']).default('relu'),
};

export type BottleneckActivation = 'relu' | 'gelu' | 'silu';

export const BOTTLENECK_UNMERGEABLE = "form 'bottleneck' puts a nonlinearity between the down and up projections, so the adapter is a function of the layer's input, not a weight update; train it with merge: false (or use form 'lora')";

const C = Math.sqrt(2 / Math.PI);

/** The nonlinearity on one value (GELU in its tanh form, as in the tfjs form). */
export function activate(v: number, act: BottleneckActivation): number {
  if (act === 'relu') return v > 0 ? v : 0;
  if (act === 'silu') return v / (1 + Math.exp(-v));
  return 0.5 * v * (1 + Math.tanh(C * (v + 0.044715 * v * v * v)));
}

/** scaling · (act(x Dᵀ + bDown) Uᵀ + bUp) for x [n, in], D [r, in], U [out, r]: [n, out], float64 inside. */
export function bottleneckTerm(x: Float32Tensor, d: Float32Tensor, u: Float32Tensor, bDown: Float32Tensor, bUp: Float32Tensor, scaling: number, act: BottleneckActivation): Float32Tensor {
  const [n, inp] = x.shape as [number, number];
  const r = d.shape[0]!;
  const out = u.shape[0]!;
  const y = new Float32Array(n * out);
  const h = new Float64Array(r);
  for (let a = 0; a < n; a++) {
    for (let t = 0; t < r; t++) {
      let s = bDown.data[t]!;
      for (let j = 0; j < inp; j++) s += x.data[a * inp + j]! * d.data[t * inp + j]!;
      h[t] = activate(s, act);
    }
    for (let i = 0; i < out; i++) {
      let s = bUp.data[i]!;
      for (let t = 0; t < r; t++) s += h[t]! * u.data[i * r + t]!;
      y[a * out + i] = scaling * s;
    }
  }
  return tensor(y, [n, out]);
}
