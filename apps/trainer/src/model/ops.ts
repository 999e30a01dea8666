// Building blocks written with tfjs-core ops, arranged to stay on the fast paths of the plain
// tfjs CPU backend:
// - that backend runs an elementwise op quickly when the operands have the same shape or the
//   smaller one repeats along leading axes; any size-1 axis (x [R,C] - m [R,1]) falls to a
//   generic per-element index path about 20x slower;
// - it sums over a leading axis (the gradient of a bias) by a generic transpose first.
// So per-row broadcasts are outer products with a ones vector, per-row sums are products with a
// ones column, and bias/gain gradients are ones-row products. All of it is ordinary tfjs autodiff,
// except layer norm, GELU and the loss (and RMS norm and the SwiGLU gate in layers.ts / llama.ts):
// fused ops of @sparse/kernels-cpu/tfjs, one tape node each, native on sparse-cpu.

import * as tf from '@tensorflow/tfjs-core';
import { fusedCrossEntropy, fusedGeluTanh, fusedLayerNorm, fusedSoftmax } from '@sparse/kernels-cpu/tfjs';

/** [R,1] -> [R,C] by an outer product with ones (a matmul stays fast forward and backward). */
export function expandCols(col: tf.Tensor2D, cols: number): tf.Tensor2D {
  return tf.matMul(col, tf.ones([1, cols]) as tf.Tensor2D);
}

/** Column sums of a [R,C] gradient as a ones-row product, shaped like `like`. */
function sumLeading(dy: tf.Tensor, like: tf.Tensor): tf.Tensor {
  const cols = like.size;
  const rows = dy.size / cols;
  const summed = tf.matMul(tf.ones([1, rows]), tf.reshape(dy, [rows, cols]));
  return tf.reshape(summed, like.shape);
}

/** x + v where v's shape is a suffix of x's shape (a bias): fast forward, ones-row gradient. */
export const addTrailing = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, v, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([v]);
  return {
    value: tf.add(x, v),
    gradFunc: (dy: tf.Tensor) => [dy, sumLeading(dy, v)],
  };
}) as (x: tf.Tensor, v: tf.Tensor) => tf.Tensor;

/**
 * Softmax over the last axis of x [R,C]; with `causal` = T > 0, row r is the query at position r % T
 * of a sequence of T tokens and sees only columns <= r % T. One fused tfjs op (@sparse/kernels-cpu's
 * fusedSoftmax: native forward and backward on sparse-cpu, plain tfjs ops elsewhere).
 */
export function softmaxRows(x: tf.Tensor2D, causal = 0): tf.Tensor2D {
  return fusedSoftmax(x, causal);
}

/**
 * Layer normalization over the last axis of x [N,D], with gain and bias [D]: one fused tfjs op
 * (@sparse/kernels-cpu's fusedLayerNorm: native forward and backward on sparse-cpu, the same
 * formulas in plain tfjs on other backends).
 */
export function layerNorm(x: tf.Tensor2D, gain: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  return fusedLayerNorm(x, gain, bias, eps);
}

/**
 * GELU, tanh approximation (GPT-2's "gelu_new"), so GPT-2 weights mean the same thing here:
 * x * sigmoid(x*(A + B*x^2)) = 0.5*x*(1 + tanh(k*(x + 0.044715*x^3))). One fused tfjs op
 * (fusedGeluTanh) with the closed-form gradient s + x*s*(1-s)*(A + 3B*x^2), s the sigmoid.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusedGeluTanh(x);
}

/** The MLP nonlinearities a model can use: GPT-2's tanh GELU, Llama's SiLU, and the ReLU / squared-ReLU substitutes of activation sparsity. */
export type MlpActivation = 'gelu' | 'silu' | 'relu' | 'relu2';

/** The nonlinearity `kind` applied elementwise to x. */
export function mlpNonlinearity(kind: MlpActivation, x: tf.Tensor2D): tf.Tensor2D {
  switch (kind) {
    case 'gelu':
      return gelu(x) as tf.Tensor2D;
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'relu':
      return tf.relu(x);
    case 'relu2':
      return tf.square(tf.relu(x));
  }
}

/** x [N,in] @ w [in,out] + b [out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return addTrailing(tf.matMul(x, w as tf.Tensor2D), b) as tf.Tensor2D;
}

/**
 * Mean cross-entropy (nats) of logits [N,V] against integer targets [N] (int32, each in [0, V)):
 * one fused tfjs op (fusedCrossEntropy) whose gradient (softmax - onehot) / N is computed from the
 * saved row log-sum-exp, without storing the [N,V] log-probabilities.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return fusedCrossEntropy(logits, targets);
}
