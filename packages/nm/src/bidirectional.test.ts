// bidirectionalMaskedLinear (BDWP): the forward product uses the row-wise N:M mask and the input gradient
// the column-wise one, the weight gradient is dense (plus SR-STE's decay), all against float64 loops.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { isKept } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import { Random, randomTensor } from '@sparse/tensor';
import { toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { isNM, nmMask } from './mask.js';
import { bidirectionalMaskedLinear } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('bidirectionalMaskedLinear', () => {
  it('forward x (W ⊙ Mrow)ᵀ, dx = dy (W ⊙ Mcol), dW = dyᵀ x + lambda (1 - Mrow) W, against loops', () => {
    const rng = new Random(41);
    const [tokens, out, inp] = [5, 8, 12];
    const xT = randomTensor([tokens, inp], rng, { dist: 'normal' });
    const wT = randomTensor([out, inp], rng, { dist: 'normal' });
    const cT = randomTensor([tokens, out], rng, { dist: 'normal' });
    const rowMask = nmMask(wT, { n: 2, m: 4 });
    const colMask = nmMask(wT, { n: 2, m: 4, axis: 'column' });
    expect(isNM(rowMask, { n: 2, m: 4, exact: true }).valid).toBe(true);
    expect(isNM(colMask, { n: 2, m: 4, axis: 'column', exact: true }).valid).toBe(true);
    // the two masks differ (otherwise the test could not tell them apart)
    expect(Array.from(rowMask.bits)).not.toEqual(Array.from(colMask.bits));
    const X = (i: number, j: number) => Number(xT.data[i * inp + j]);
    const W = (o: number, j: number) => Number(wT.data[o * inp + j]);
    const C = (i: number, o: number) => Number(cT.data[i * out + o]);
    const row = (o: number, j: number) => (isKept(rowMask, o * inp + j) ? 1 : 0);
    const col = (o: number, j: number) => (isKept(colMask, o * inp + j) ? 1 : 0);
    const lambda = 0.3;
    const x = toTf(xT) as tf.Tensor2D;
    const w = toTf(wT) as tf.Tensor2D;
    const fm = maskToTf(rowMask);
    const bm = maskToTf(colMask);
    const y = bidirectionalMaskedLinear(x, w, fm, bm, lambda).dataSync();
    for (let i = 0; i < tokens; i++) {
      for (let o = 0; o < out; o++) {
        let s = 0;
        for (let j = 0; j < inp; j++) s += X(i, j) * W(o, j) * row(o, j);
        expect(y[i * out + o]).toBeCloseTo(s, 4);
      }
    }
    // loss = sum(c ⊙ y): dy = c
    const loss = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(toTf(cT), bidirectionalMaskedLinear(xx as tf.Tensor2D, ww as tf.Tensor2D, fm, bm, lambda)));
    const [dx, dw] = tf.grads(loss)([x, w]);
    const dxd = dx!.dataSync();
    const dwd = dw!.dataSync();
    for (let i = 0; i < tokens; i++) {
      for (let j = 0; j < inp; j++) {
        let s = 0;
        for (let o = 0; o < out; o++) s += C(i, o) * W(o, j) * col(o, j);
        expect(dxd[i * inp + j]).toBeCloseTo(s, 4);
      }
    }
    for (let o = 0; o < out; o++) {
      for (let j = 0; j < inp; j++) {
        let s = 0;
        for (let i = 0; i < tokens; i++) s += C(i, o) * X(i, j);
        s += lambda * (1 - row(o, j)) * W(o, j);
        expect(dwd[o * inp + j]).toBeCloseTo(s, 4);
      }
    }
    // and the input gradient is not the one of the forward mask (the masks really differ in the backward)
    let rowGradDiff = 0;
    for (let i = 0; i < tokens; i++) {
      for (let j = 0; j < inp; j++) {
        let s = 0;
        for (let o = 0; o < out; o++) s += C(i, o) * W(o, j) * row(o, j);
        rowGradDiff = Math.max(rowGradDiff, Math.abs(dxd[i * inp + j]! - s));
      }
    }
    expect(rowGradDiff).toBeGreaterThan(1e-3);
  });

  it('refuses mismatched shapes and a bad lambda, naming them', () => {
    const x = tf.zeros([2, 4]) as tf.Tensor2D;
    const w = tf.zeros([4, 4]) as tf.Tensor2D;
    expect(() => bidirectionalMaskedLinear(tf.zeros([2, 3]) as tf.Tensor2D, w, tf.ones([4, 4]), tf.ones([4, 4]))).toThrow(/\[tokens, in\]/);
    expect(() => bidirectionalMaskedLinear(x, w, tf.ones([4, 3]), tf.ones([4, 4]))).toThrow(/forwardMask/);
    expect(() => bidirectionalMaskedLinear(x, w, tf.ones([4, 4]), tf.ones([2, 4]))).toThrow(/backwardMask/);
    expect(() => bidirectionalMaskedLinear(x, w, tf.ones([4, 4]), tf.ones([4, 4]), -1)).toThrow(/lambda/);
  });
});
