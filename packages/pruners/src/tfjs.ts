// @sparse/pruners/tfjs: calibration capture for tfjs models. Wraps the function of a linear layer so every
// input it sees also streams into the accumulators of the core (ColumnNormAccumulator, HessianAccumulator).
// The only entry that imports @tensorflow/tfjs-core (an optional peer dependency).

import { ArgumentError, DTypeError, type Tensor } from '@sparse/tensor';
import { fromTf } from '@sparse/tensor/tfjs';
import type * as tf from '@tensorflow/tfjs-core';

/** Anything that takes activation batches [..., in]: the accumulators of @sparse/pruners. */
export interface InputSink {
  add(x: Tensor): unknown;
}

/**
 * Returns `fn` wrapped so that each call, once `fn` has returned, copies its input x (float32, [..., in]) to the
 * CPU and adds it to every sink. Use the wrapped function in place of the layer's forward while running
 * calibration batches, then go back to `fn`. Reading x is a synchronous download (dataSync), which is what
 * calibration needs: the statistics must be complete when the batch returns.
 */
export function captureInputs<T>(fn: (x: tf.Tensor) => T, sinks: InputSink | readonly InputSink[]): (x: tf.Tensor) => T {
  if (typeof fn !== 'function') throw new ArgumentError('captureInputs: fn must be a function of the layer input');
  const list = Array.isArray(sinks) ? [...sinks] : [sinks as InputSink];
  if (list.length === 0 || list.some((s) => typeof s?.add !== 'function')) {
    throw new ArgumentError('captureInputs: sinks must be one or more objects with add(x), such as a ColumnNormAccumulator');
  }
  return (x: tf.Tensor) => {
    if (x?.dtype !== 'float32') throw new DTypeError(`captureInputs: the layer input must be a float32 tf.Tensor, got ${String(x?.dtype)}`);
    const y = fn(x);
    const t = fromTf(x);
    for (const s of list) s.add(t);
    return y;
  };
}
