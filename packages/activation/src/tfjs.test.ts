import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, DTypeError, parseConfig, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { catsConfigSchema } from './methods/cats/config.js';
import { catsMethod } from './methods/cats/cats.js';
import { rSparseConfigSchema } from './methods/r-sparse/config.js';
import { rSparseMethod } from './methods/r-sparse/r-sparse.js';
import { actSite, linearSite, normalActs, sampleOf, weightOf } from './methods/testing.js';
import { topKConfigSchema } from './methods/top-k/config.js';
import { topKMethod } from './methods/top-k/top-k.js';
import { correctionTensor, keepMaskTensor, sparsifySite, sparsifyTensor } from './tfjs.js';
import type { SiteSparsifier } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const rng = new Random(1);

function topK(features: number, sparsity: number): SiteSparsifier {
  return topKMethod.calibrate(parseConfig(topKConfigSchema, { sparsity }, 'top-k'), [sampleOf(actSite(0, features), new Float32Array(features))])[0]!;
}

describe('sparsifyTensor', () => {
  it('forward equals apply; the gradient of sum(c * y) is c on kept entries and 0 elsewhere (closed form)', () => {
    const sp = topK(12, 0.5);
    const x = normalActs(rng, 6, 12);
    const c = normalActs(rng, 6, 12);
    const expected = x.slice();
    sp.apply(expected, 6);
    const xt = tf.tensor2d(x, [6, 12]);
    expect(Array.from(sparsifyTensor(sp, xt).dataSync(), (v) => v + 0)).toEqual(Array.from(expected));
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(c, [6, 12]), sparsifyTensor(sp, v as tf.Tensor2D))))(xt).dataSync();
    const keep = sp.keep!(x, 6);
    Array.from(g).forEach((v, i) => expect(v + 0).toBe(keep[i] ? c[i] : 0));
  });

  it('the gradient matches a finite difference of a non-linear loss', () => {
    const [sp] = catsMethod.calibrate(parseConfig(catsConfigSchema, { sparsity: 0.4 }, 'cats'), [sampleOf(actSite(0, 8), normalActs(rng, 64, 8))]);
    const x = normalActs(rng, 4, 8);
    const loss = (v: tf.Tensor) => tf.sum(tf.square(tf.sin(sparsifyTensor(sp!, v as tf.Tensor2D))));
    const g = tf.grad(loss)(tf.tensor2d(x, [4, 8])).dataSync();
    const h = 1e-2;
    const t = (sp!.state() as { threshold: number }).threshold;
    for (let i = 0; i < x.length; i++) {
      if (Math.abs(Math.abs(x[i]!) - t) < 2 * h) continue; // a step across the threshold changes the mask
      const plus = x.slice();
      const minus = x.slice();
      plus[i]! += h;
      minus[i]! -= h;
      const fd = (loss(tf.tensor2d(plus, [4, 8])).dataSync()[0]! - loss(tf.tensor2d(minus, [4, 8])).dataSync()[0]!) / (2 * h);
      expect(g[i]!).toBeCloseTo(fd, 2);
    }
  });

  it('keeps exact zeros in the mask when the sparsifier has no keep (gradient passes there)', () => {
    const inner = topK(4, 0.5);
    const applyOnly: SiteSparsifier = { site: 's', apply: (x, tokens) => inner.apply(x, tokens), state: () => ({}) };
    const x = tf.tensor2d([[0, 3, -1, 2]]);
    expect(Array.from(keepMaskTensor(applyOnly, x).dataSync())).toEqual([1, 1, 0, 1]);
    expect(Array.from(keepMaskTensor(inner, x).dataSync())).toEqual([0, 1, 0, 1]);
  });

  it('refuses a non-2D or non-float32 x', () => {
    const sp = topK(4, 0.5);
    expect(() => sparsifyTensor(sp, tf.zeros([2, 2, 1]) as unknown as tf.Tensor2D)).toThrow(ShapeError);
    expect(() => sparsifyTensor(sp, tf.zeros([2, 4], 'int32') as tf.Tensor2D)).toThrow(DTypeError);
    expect(() => sparsifyTensor(sp, tf.zeros([2, 5]) as tf.Tensor2D)).toThrow(/10 values/);
    expect(() => sparsifyTensor({} as SiteSparsifier, tf.zeros([2, 4]) as tf.Tensor2D)).toThrow(ArgumentError);
  });
});

describe('correctionTensor', () => {
  const site = linearSite('h.0.attn.c_proj.weight', 'attn.out', 10, 6);
  const w = weightOf(rng, 6, 10, (j) => 1 + j);
  const [sp] = rSparseMethod.calibrate(parseConfig(rSparseConfigSchema, { sparsity: 0.5, rank: 3 }, 'r-sparse'), [sampleOf(site, normalActs(rng, 8, 10), w)]);

  it('equals the plain correction, and its gradient is (1 - mask) ⊙ (c bᵀ aᵀ) through x (closed form)', () => {
    const x = normalActs(rng, 5, 10);
    const c = normalActs(rng, 5, 6);
    const xs = x.slice();
    sp!.apply(xs, 5);
    const xt = tf.tensor2d(x, [5, 10]);
    const corr = correctionTensor(sp!, xt, sparsifyTensor(sp!, xt))!;
    Array.from(corr.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(sp!.correction!(x, xs, 5)[i]!, 5));
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(c, [5, 6]), correctionTensor(sp!, v as tf.Tensor2D, sparsifyTensor(sp!, v as tf.Tensor2D))!)))(xt).dataSync();
    const { a, b, rank } = sp!.correctionFactors!;
    const keep = sp!.keep!(x, 5);
    for (let t = 0; t < 5; t++) {
      for (let j = 0; j < 10; j++) {
        let ref = 0;
        for (let k = 0; k < rank; k++) {
          let cb = 0;
          for (let o = 0; o < 6; o++) cb += c[t * 6 + o]! * b[k * 6 + o]!;
          ref += cb * a[j * rank + k]!;
        }
        expect(g[t * 10 + j]!).toBeCloseTo(keep[t * 10 + j] ? 0 : ref, 4);
      }
    }
  });

  it('sparsifySite gives { x, add } for R-Sparse and a tensor otherwise; undefined correction without one', () => {
    const xt = tf.tensor2d(normalActs(rng, 3, 10), [3, 10]);
    const r = sparsifySite(sp!, xt);
    expect('add' in r && r.add.shape).toEqual([3, 6]);
    const plain = topK(10, 0.5);
    expect(sparsifySite(plain, xt)).toBeInstanceOf(tf.Tensor);
    expect(correctionTensor(plain, xt, xt)).toBeUndefined();
    expect(() => correctionTensor(sp!, xt, tf.zeros([3, 9]) as tf.Tensor2D)).toThrow(ShapeError);
  });
});
