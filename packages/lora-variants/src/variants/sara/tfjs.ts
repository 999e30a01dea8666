// The tfjs form of 'sara': W + ΔW as a differentiable tensor, the ΔW of ./variant.ts's `delta`.
// Listed in ../builtins-tfjs.ts; the core entry never imports this file.
import { ShapeError, svd, tensor as coreTensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { indexed, placeFlat } from '../helpers/tfjs.js';

export const saraForm: TfAdapterForm = {
  variant: 'sara',
  effectiveWeight: ({ base, vars, state }) => tf.add(base, placeFlat(vars.sara_values!, indexed(state).indices.support!, state.shape)),
};

/**
 * SaRA's penalty ‖M‖_* = Σ σ_i(M) as a differentiable scalar, for M = ΔW (e.g.
 * `tf.sub(model.effectiveWeight(name), model.weights[name])`). The SVD runs on the CPU (tfjs has no SVD
 * op); the gradient is U Vᵀ over the singular values above 1e-6 · σ_max (a subgradient at rank deficiency).
 */
export function nuclearNormPenalty(m: tf.Tensor): tf.Scalar {
  if (m.rank !== 2) throw new ShapeError(`nuclearNormPenalty: expected a matrix, got shape [${m.shape.join(', ')}]`);
  return tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor2D, (saved: tf.Tensor[]) => void];
    const [rows, cols] = x.shape;
    const { u, s, v } = svd(coreTensor(Float32Array.from(x.dataSync()), [rows, cols]));
    const k = s.data.length;
    const sv = Array.from(s.data as ArrayLike<number>);
    const cut = 1e-6 * (sv[0] ?? 0);
    const uv = new Float32Array(rows * cols);
    for (let t = 0; t < k; t++) {
      if (!(sv[t]! > cut)) continue;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) uv[i * cols + j] = uv[i * cols + j]! + u.data[i * k + t]! * v.data[j * k + t]!;
    }
    save([tf.tensor(uv, [rows, cols])]);
    return { value: tf.scalar(sv.reduce((a, b) => a + b, 0)), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[0]!)] };
  })(m) as tf.Scalar;
}
