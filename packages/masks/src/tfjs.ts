// @sparse/masks/tfjs: gradients from a tfjs model to feed the scores of the core, Mask <-> tf.Tensor, and
// the masked-weight straight-through estimator (STE, SR-STE, decayed gradient flow) that training through
// a mask uses. The only entry that imports @tensorflow/tfjs-core (an optional peer dependency).

import { ArgumentError, BackendError, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { fromTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { SquaredGradientAccumulator } from './scores/accumulators.js';
import { maskFromTensor, maskToTensor, validateMask, type Mask } from './mask.js';

function checkVariables(where: string, variables: readonly tf.Variable[]): void {
  if (!Array.isArray(variables) || variables.length === 0) throw new ArgumentError(`${where}: variables must be a non-empty array of tf.Variable`);
  variables.forEach((v, i) => {
    if (!(v instanceof tf.Variable)) throw new ArgumentError(`${where}: variables[${i}] is not a tf.Variable`);
    if (!v.trainable) throw new ArgumentError(`${where}: variables[${i}] (${v.name}) is not trainable, so tfjs computes no gradient for it`);
  });
}

function toFloat32(x: tf.Tensor): Float32Tensor {
  const t = fromTf(x.dtype === 'float32' ? x : tf.cast(x, 'float32'));
  return t as Float32Tensor;
}

/**
 * tf.variableGrads, with tfjs-core's bare "gradient function not found" turned into an explanation: tfjs-core
 * alone registers no gradients; the @tensorflow/tfjs umbrella package (or tfjs-node) does, and so does
 * importing '@tensorflow/tfjs-core/dist/register_all_gradients' through a bundler. A library must not
 * register them itself (it would bundle a second copy of tfjs-core's ops), so the application does.
 */
function variableGrads(lossFn: () => tf.Scalar, variables: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  try {
    return tf.variableGrads(lossFn, [...variables]);
  } catch (e) {
    const m = /gradient function not found for (\w+)/.exec((e as Error)?.message ?? '');
    if (!m) throw e;
    throw new BackendError(
      `tfjs has no gradient registered for ${m[1]}: import '@tensorflow/tfjs' (or @tensorflow/tfjs-node), or '@tensorflow/tfjs-core/dist/register_all_gradients' through a bundler, before computing gradients`,
      { cause: e },
    );
  }
}

export interface Gradients {
  /** The loss value at which the gradients were taken. */
  loss: number;
  /** d loss / d variable, one float32 Tensor per variable, in the order given (zeros where the loss does not depend on it). */
  gradients: Float32Tensor[];
}

/**
 * Gradients of a scalar loss with respect to the given (trainable) variables, as plain Tensors for the
 * scores of @sparse/masks (gradientScores, snipScores, fisher, movement, ...). Every tf.Tensor made on the
 * way is disposed.
 */
export function gradientsFor(lossFn: () => tf.Scalar, variables: readonly tf.Variable[]): Gradients {
  if (typeof lossFn !== 'function') throw new ArgumentError('gradientsFor: lossFn must be a function returning a scalar');
  checkVariables('gradientsFor', variables);
  const { value, grads } = variableGrads(lossFn, variables);
  try {
    const gradients = variables.map((v) => {
      const g = grads[v.name];
      if (g == null) return toFloat32(tf.tidy(() => tf.zerosLike(v)));
      return toFloat32(g);
    });
    return { loss: value.dataSync()[0]!, gradients };
  } finally {
    value.dispose();
    for (const k of Object.keys(grads)) grads[k]?.dispose();
  }
}

/**
 * Accumulates squared gradients over several losses (one per batch or sample: the empirical Fisher), one
 * accumulator per variable. Pass accumulators from an earlier call to continue them. `mean()` of each is
 * the Fisher diagonal, `sum()` the sensitivity score.
 */
export function accumulateFisher(
  lossFns: Iterable<() => tf.Scalar>,
  variables: readonly tf.Variable[],
  accumulators?: SquaredGradientAccumulator[],
): SquaredGradientAccumulator[] {
  checkVariables('accumulateFisher', variables);
  const accs = accumulators ?? variables.map((v) => new SquaredGradientAccumulator(v.shape));
  if (accs.length !== variables.length) {
    throw new ArgumentError(`accumulateFisher: got ${accs.length} accumulators for ${variables.length} variables`);
  }
  accs.forEach((a, i) => {
    const s = variables[i]!.shape;
    if (a.shape.length !== s.length || a.shape.some((d, j) => d !== s[j])) {
      throw new ShapeError(`accumulateFisher: accumulators[${i}] has shape [${a.shape.join(', ')}] but variables[${i}] has [${s.join(', ')}]`);
    }
  });
  for (const lossFn of lossFns) {
    const { gradients } = gradientsFor(lossFn, variables);
    gradients.forEach((g, i) => accs[i]!.add(g));
  }
  return accs;
}

/**
 * Gradients of the SynFlow objective (Tanaka et al. 2020) with respect to the variables: every variable is
 * temporarily replaced by its absolute value, `forward` is run on an all-ones input of `inputShape`
 * (include the batch dimension, usually 1), and R = sum(output) is differentiated. The variables get their
 * original values back afterwards, even when forward throws. Feed the result to `synflowScores(W, dR)`.
 * As in the paper, run the model without data-dependent layers in training mode (e.g. batch norm in eval).
 */
export function synflowGradients(forward: (x: tf.Tensor) => tf.Tensor, variables: readonly tf.Variable[], inputShape: readonly number[]): Float32Tensor[] {
  if (typeof forward !== 'function') throw new ArgumentError('synflowGradients: forward must be a function');
  checkVariables('synflowGradients', variables);
  if (!Array.isArray(inputShape) || inputShape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new ShapeError(`synflowGradients: inputShape must be an array of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  const saved = variables.map((v) => v.clone());
  try {
    for (const v of variables) v.assign(tf.tidy(() => tf.abs(v)));
    const ones = tf.ones(inputShape);
    try {
      return gradientsFor(() => tf.sum(forward(ones)) as tf.Scalar, variables).gradients;
    } finally {
      ones.dispose();
    }
  } finally {
    variables.forEach((v, i) => v.assign(saved[i]!));
    for (const s of saved) s.dispose();
  }
}

/** A tf.Tensor of 1 (kept) and 0 (pruned), float32 by default or bool. */
export function maskToTf(mask: Mask, dtype: 'float32' | 'bool' = 'float32'): tf.Tensor {
  validateMask(mask, 'maskToTf');
  if (dtype !== 'float32' && dtype !== 'bool') throw new ArgumentError(`maskToTf: dtype must be 'float32' or 'bool', got ${JSON.stringify(dtype)}`);
  const t = maskToTensor(mask, dtype === 'bool' ? 'bool' : 'float32');
  return tf.tensor(t.data as Float32Array | Uint8Array, t.shape, dtype);
}

/** The mask of a tf.Tensor's non-zero elements (read with dataSync; the tensor is not disposed). */
export function maskFromTf(x: tf.Tensor): Mask {
  if (!(x instanceof tf.Tensor)) throw new ArgumentError('maskFromTf: x must be a tf.Tensor');
  return maskFromTensor(fromTf(x) as Tensor);
}

export interface MaskedWeightOptions {
  /** SR-STE's decay: lambda · (1 − M) ⊙ W is added to the gradient of W (default 0). */
  lambda?: number;
  /** Factor on the gradient reaching pruned entries (default 1, straight through; 0 is the plain masked gradient). */
  decay?: number;
}

/**
 * Training through a mask: forward W ⊙ M; backward dL/dW = dy ⊙ (M + decay · (1 − M)) + lambda · (1 − M) ⊙ W
 * with dy = dL/d(W ⊙ M). The defaults are the straight-through estimator (the gradient reaches every entry
 * of W as if it were dense, so pruned weights keep learning and can re-enter a recomputed mask); `lambda`
 * is SR-STE (Zhou et al. 2021), which pulls pruned weights toward zero; `decay` < 1 is progressive
 * gradient flow. The mask is a tf.Tensor of W's shape (1 = kept, 0 = pruned; maskToTf(mask) once and reuse
 * it), an operand of the op like W.
 */
export function maskedWeight(w: tf.Tensor, mask: tf.Tensor, opts: MaskedWeightOptions = {}): tf.Tensor {
  const where = 'maskedWeight';
  if (!(w instanceof tf.Tensor) || !(mask instanceof tf.Tensor)) throw new ArgumentError(`${where}: weight and mask must be tf.Tensors`);
  if (!tf.util.arraysEqual(w.shape, mask.shape)) throw new ArgumentError(`${where}: mask shape [${mask.shape.join(', ')}] differs from weight shape [${w.shape.join(', ')}]`);
  const lambda = opts.lambda ?? 0;
  const decay = opts.decay ?? 1;
  for (const [name, x] of [['lambda', lambda], ['decay', decay]] as const) {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new ArgumentError(`${where}: ${name} must be a finite number, got ${String(x)}`);
  }
  const op = tf.customGrad((x, save) => {
    // Save the mask too: tensors the backward pass needs must be kept past the forward scope.
    (save as tf.GradSaveFunc)([x as tf.Tensor, mask]);
    return {
      value: tf.mul(x as tf.Tensor, mask),
      gradFunc: (dy, saved) => {
        const [weight, m] = saved as [tf.Tensor, tf.Tensor];
        const flow = decay === 1 ? tf.clone(dy) : tf.mul(dy, tf.add(m, tf.mul(tf.sub(1, m), decay)));
        return lambda === 0 ? flow : tf.add(flow, tf.mul(tf.mul(tf.sub(1, m), weight), lambda));
      },
    };
  });
  return op(w);
}
