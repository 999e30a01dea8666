import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError } from '../errors.js';
import { encodeBFloat16, encodeFloat16 } from '../float16.js';
import { fromArray, slice, tensor, toArray, transpose, type Tensor } from '../tensor.js';
import { fromTf, fromTfAsync, toTf } from '../tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function tfValues(x: tf.Tensor): number[] {
  return Array.from(x.dataSync());
}

describe('toTf / fromTf', () => {
  it('round-trips float32 of any rank, including scalars and empty tensors', () => {
    for (const [values, shape] of [
      [[1.5, -2, 3, 4, 5, 6], [2, 3]],
      [[7], []],
      [[], [0, 3]],
      [[1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]],
    ] as [number[], number[]][]) {
      const t = fromArray(values, shape);
      const x = toTf(t);
      expect(x.dtype).toBe('float32');
      expect(x.shape).toEqual(shape);
      const back = fromTf(x);
      expect(back.dtype).toBe('float32');
      expect(back.shape).toEqual(shape);
      expect(toArray(back)).toEqual(values);
      x.dispose();
    }
  });

  it('packs strided views (transposed, sliced, stepped, reversed) in logical order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
        fc.integer(),
        fc.boolean(),
        fc.boolean(),
        (shape, seed, doTranspose, reverse) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const data = Float32Array.from({ length: n + 3 }, (_, i) => Math.fround(Math.sin(seed + i)));
          let view: Tensor = tensor<'float32'>(data, shape, { offset: 3 });
          if (doTranspose) view = transpose(view);
          if (reverse) view = slice(view, { step: -1 });
          if (view.shape[view.shape.length - 1]! > 1) {
            view = slice(view, ...view.shape.slice(0, -1).map(() => null), { step: 2 });
          }
          const x = toTf(view);
          expect(x.shape).toEqual(view.shape);
          expect(tfValues(x)).toEqual(toArray(view));
          expect(toArray(fromTf(x))).toEqual(toArray(view));
          x.dispose();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('copies both ways: later writes on either side do not leak across', () => {
    const t = fromArray([1, 2, 3], [3]);
    const x = toTf(t);
    t.data[0] = 100;
    expect(tfValues(x)).toEqual([1, 2, 3]);
    const back = fromTf(x);
    back.data[1] = 200;
    expect(tfValues(x)).toEqual([1, 2, 3]);
    expect(toArray(fromTf(x))).toEqual([1, 2, 3]);
    x.dispose();
  });

  it('keeps int32 and bool, widens int8/uint8 to int32, and rounds float64 to float32', () => {
    const i32 = toTf(tensor(Int32Array.from([-5, 0, 2147483647]), [3]));
    expect(i32.dtype).toBe('int32');
    expect(tfValues(i32)).toEqual([-5, 0, 2147483647]);
    expect(fromTf(i32)).toMatchObject({ dtype: 'int32', shape: [3] });
    expect(fromTf(i32).data).toBeInstanceOf(Int32Array);

    const b = toTf(tensor(Uint8Array.from([1, 0, 1, 1]), [2, 2], { dtype: 'bool' }));
    expect(b.dtype).toBe('bool');
    const bBack = fromTf(b);
    expect(bBack.dtype).toBe('bool');
    expect(toArray(bBack)).toEqual([1, 0, 1, 1]);

    const i8 = toTf(tensor(Int8Array.from([-128, 127]), [2]));
    expect(i8.dtype).toBe('int32');
    expect(tfValues(i8)).toEqual([-128, 127]);
    expect(tfValues(toTf(tensor(Uint8Array.from([0, 255]), [2])))).toEqual([0, 255]);

    const f64 = toTf(tensor(Float64Array.from([0.1, 1e300]), [2]));
    expect(f64.dtype).toBe('float32');
    expect(tfValues(f64)).toEqual([Math.fround(0.1), Infinity]);
    tf.dispose([i32, b, i8, f64]);
  });

  it('converts float16 and bfloat16 to float32 exactly', () => {
    const values = [0, -0.5, 1.5, 65504, 2 ** -24, -Infinity];
    const h = toTf(tensor(encodeFloat16(values), [2, 3], { dtype: 'float16' }));
    expect(h.dtype).toBe('float32');
    expect(h.shape).toEqual([2, 3]);
    expect(tfValues(h)).toEqual(values);
    const bvalues = [1, -2.5, 3.140625, 2 ** 100];
    const bf = toTf(transpose(tensor(encodeBFloat16(bvalues), [2, 2], { dtype: 'bfloat16' })));
    expect(tfValues(bf)).toEqual([1, 3.140625, -2.5, 2 ** 100]);
    tf.dispose([h, bf]);
  });

  it('fromTfAsync reads with data()', async () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const t = await fromTfAsync(x);
    expect(t).toMatchObject({ dtype: 'float32', shape: [2, 2], stride: [2, 1], offset: 0 });
    expect(toArray(t)).toEqual([1, 2, 3, 4]);
    x.dispose();
  });

  it('rejects tfjs dtypes with no counterpart', async () => {
    const s = tf.tensor(['a', 'b']);
    expect(() => fromTf(s)).toThrow(DTypeError);
    expect(() => fromTf(s)).toThrow(/tfjs dtype string has no @sparse\/tensor counterpart/);
    await expect(fromTfAsync(s)).rejects.toThrow(DTypeError);
    const c = tf.complex([1], [2]);
    expect(() => fromTf(c)).toThrow(/complex64/);
    tf.dispose([s, c]);
  });
});
