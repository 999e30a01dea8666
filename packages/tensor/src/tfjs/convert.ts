import * as tf from '@tensorflow/tfjs-core';
import type { DType } from '../dtype.js';
import { DTypeError } from '../errors.js';
import { cast } from '../float16.js';
import { tensor, type Tensor } from '../tensor.js';

type TfNumericDType = 'float32' | 'int32' | 'bool';

/**
 * The tfjs dtype each of our dtypes is handed over as. tfjs has no 8/16/64-bit types:
 * int8/uint8 widen to int32 and float16/bfloat16 widen to float32 (all exact); float64 rounds to
 * float32, which is also what tf.tensor does with a Float64Array.
 */
const TF_DTYPE: Record<DType, TfNumericDType> = {
  float32: 'float32',
  float64: 'float32',
  float16: 'float32',
  bfloat16: 'float32',
  int32: 'int32',
  int8: 'int32',
  uint8: 'int32',
  bool: 'bool',
};

/** The tfjs dtype `toTf` produces for a tensor of `dtype`. */
export function tfDTypeOf(dtype: DType): TfNumericDType {
  const out = TF_DTYPE[dtype];
  if (out === undefined) throw new DTypeError(`toTf: unknown dtype ${JSON.stringify(dtype)}`);
  return out;
}

/**
 * A tf.Tensor holding t's values. Always copies into a fresh row-major array: tfjs backends keep the
 * array they are given, and a tf.Tensor must not change when the caller later writes to t's storage.
 * Strided views (transposed, sliced, stepped) are packed on the way.
 */
export function toTf(t: Tensor): tf.Tensor {
  const dtype = tfDTypeOf(t.dtype);
  const packed = cast(t, dtype);
  return tf.tensor(packed.data as Float32Array | Int32Array | Uint8Array, packed.shape, dtype);
}

function fromValues(values: unknown, x: tf.Tensor, where: string): Tensor {
  // dataSync/data may return the backend's own storage (the cpu backend does), so always copy.
  switch (x.dtype) {
    case 'float32':
      return tensor<'float32'>(Float32Array.from(values as Float32Array), x.shape);
    case 'int32':
      return tensor<'int32'>(Int32Array.from(values as Int32Array), x.shape);
    case 'bool':
      return tensor<'bool'>(Uint8Array.from(values as Uint8Array), x.shape, { dtype: 'bool' });
    default:
      throw new DTypeError(`${where}: tfjs dtype ${x.dtype} has no @sparse/tensor counterpart (float32, int32 and bool do)`);
  }
}

function checkConvertible(x: tf.Tensor, where: string): void {
  if (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') {
    throw new DTypeError(`${where}: tfjs dtype ${x.dtype} has no @sparse/tensor counterpart (float32, int32 and bool do)`);
  }
}

/**
 * A contiguous Tensor with a copy of x's values, read with dataSync(): blocking, and on GPU backends
 * a synchronous download. Prefer fromTfAsync there. x is not disposed.
 */
export function fromTf(x: tf.Tensor): Tensor {
  checkConvertible(x, 'fromTf');
  return fromValues(x.dataSync(), x, 'fromTf');
}

/** Like fromTf, reading x with the non-blocking data(). x is not disposed. */
export async function fromTfAsync(x: tf.Tensor): Promise<Tensor> {
  checkConvertible(x, 'fromTfAsync');
  return fromValues(await x.data(), x, 'fromTfAsync');
}
