import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { isKept, maskToTensor } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, ShapeError, tensor, toArray } from '@sparse/tensor';
import { toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { nmActivations } from './activation.js';
import { nmActivationOp } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Brute force: per group, sort positions by (|x| desc, index asc) and keep the first n. */
function bruteKeep(values: number[], features: number, n: number, m: number): boolean[] {
  const keep = new Array<boolean>(values.length).fill(false);
  for (let s = 0; s < values.length; s += features) {
    for (let g = 0; g < features; g += m) {
      const idx = Array.from({ length: m }, (_, q) => s + g + q).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
      for (const i of idx.slice(0, n)) keep[i] = true;
    }
  }
  return keep;
}

/** Values with many ties (small integers), to exercise the lower-index rule. */
const tied = (rng: Random, shape: number[]) => tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(-3, 4)), shape);

describe('nmActivations (core)', () => {
  it('keeps the N largest |x| of every M consecutive features per token (brute force, ties included)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom([2, 4], [1, 4], [3, 8], [1, 2]), fc.boolean(), (seed, [n, m], withTies) => {
        const rng = new Random(seed);
        const shape = [2, 3, m! * 2];
        const x = withTies ? tied(rng, shape) : randomTensor(shape, rng, { dist: 'normal' });
        const { values, mask } = nmActivations(x, { n: n!, m: m! });
        const keep = bruteKeep(Array.from(x.data), m! * 2, n!, m!);
        expect(values.shape).toEqual(shape);
        keep.forEach((k, i) => {
          expect(isKept(mask, i)).toBe(k);
          expect(values.data[i]).toBe(k ? x.data[i] : 0);
        });
      }),
      { numRuns: 50 },
    );
  });

  it('rejects a feature axis that is not a multiple of m', () => {
    expect(() => nmActivations(randomTensor([2, 6], new Random(1)), { n: 2, m: 4 })).toThrow(ShapeError);
    expect(() => nmActivations(randomTensor([2, 8], new Random(1)), { n: 0, m: 4 })).toThrow(ArgumentError);
  });
});

describe('nmActivationOp (tfjs)', () => {
  it('forward equals the core op, ties included', () => {
    const rng = new Random(7);
    for (const [n, m] of [[2, 4], [1, 4], [3, 8]] as const) {
      for (const x of [tied(rng, [3, 2, 16]), randomTensor([5, 16], rng, { dist: 'normal' })]) {
        // + 0 folds the -0 of a pruned negative entry into 0.
        const got = Array.from(nmActivationOp(toTf(x), n, m).dataSync(), (v) => v + 0);
        expect(got).toEqual(toArray(nmActivations(x, { n, m }).values).map((v) => v + 0));
      }
    }
  });

  it('passes the gradient only through kept entries (equals tf.grad of x * fixed mask)', () => {
    const rng = new Random(9);
    const x = randomTensor([4, 8], rng, { dist: 'normal' });
    const c = toTf(randomTensor([4, 8], rng, { dist: 'normal' }));
    const manual = toTf(maskToTensor(nmActivations(x, { n: 2, m: 4 }).mask));
    // A nonlinear loss so dy differs per entry.
    const loss = (y: tf.Tensor) => tf.sum(tf.square(tf.add(tf.mul(c, y), 0.5)));
    const g = tf.grad((v: tf.Tensor) => loss(nmActivationOp(v, 2, 4)))(toTf(x)).dataSync();
    const ref = tf.grad((v: tf.Tensor) => loss(tf.mul(v, manual)))(toTf(x)).dataSync();
    Array.from(g).forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    const zeros = Array.from(manual.dataSync()).filter((v, i) => v === 0 && g[i] === 0).length;
    expect(zeros).toBe(16);
  });

  it('keeps exactly N per group when NaN is present, NaN first (the gradient of sum(y) is the mask)', () => {
    const x = tf.tensor([NaN, 1, NaN, NaN, 2, -Infinity, NaN, 0], [2, 4]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(nmActivationOp(v, 2, 4)))(x).dataSync();
    expect(Array.from(g)).toEqual([1, 0, 1, 0, 0, 1, 1, 0]);
  });

  it('validates its input', () => {
    expect(() => nmActivationOp(tf.ones([2, 6]), 2, 4)).toThrow(ShapeError);
    expect(() => nmActivationOp(tf.ones([2, 8]), 4, 4)).toThrow(ArgumentError);
  });
});
