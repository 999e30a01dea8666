import '@tensorflow/tfjs-backend-cpu';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { columnNormsOf, correlatedInputs, hessianOf } from './__fixtures__/layers.js';
import { ColumnNormAccumulator, HessianAccumulator } from './calibration/index.js';
import { captureInputs } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('captureInputs', () => {
  it('streams every input of a tfjs linear layer into the accumulators, leaving its output unchanged', () => {
    const rng = new Random(1);
    const x = correlatedInputs(rng, 12, 6);
    const w = tf.tensor(Float32Array.from({ length: 24 }, () => rng.normal()), [4, 6]);
    const linear = (v: tf.Tensor) => tf.matMul(tf.reshape(v, [-1, 6]), w, false, true);
    const cols = new ColumnNormAccumulator(6, { name: 'fc' });
    const hess = new HessianAccumulator(6, { name: 'fc' });
    const captured = captureInputs(linear, [cols, hess]);
    const batchA = tf.tensor(x.data.slice(0, 36), [2, 3, 6]); // [batch, seq, in]
    const batchB = tf.tensor(x.data.slice(36), [6, 6]);
    const ya = captured(batchA);
    captured(batchB);
    expect(Array.from(ya.dataSync())).toEqual(Array.from(linear(batchA).dataSync()));
    expect(cols.tokens).toBe(12);
    const refNorms = columnNormsOf(x).data;
    cols.norms().data.forEach((v, j) => expect(v).toBeCloseTo(refNorms[j]!, 5));
    const refH = hessianOf(x).data;
    hess.hessian().data.forEach((v, k) => expect(v).toBeCloseTo(refH[k]!, 4));
  });

  it('rejects bad arguments and non-float inputs', () => {
    const acc = new ColumnNormAccumulator(2);
    expect(() => captureInputs(null as never, acc)).toThrow(/function/);
    expect(() => captureInputs((v) => v, [])).toThrow(/sinks/);
    expect(() => captureInputs((v) => v, acc)(tf.tensor([1, 2], [1, 2], 'int32'))).toThrow(/float32/);
  });
});
