import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { densityLossValue, exactDensity, type ActivationRows } from './density.js';
import { densityLoss } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Values with |v| in [0.2, 2] and random sign: far from the kink of |·| at 0, so finite differences are valid. */
function awayFromZero(rng: Random, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.bernoulli() ? 1 : -1) * rng.uniform(0.2, 2);
  return a;
}

describe('DEFT density loss', () => {
  const rng = new Random(9);
  const layers: ActivationRows[] = [
    { data: awayFromZero(rng, 4 * 6), tokens: 4, features: 6 },
    { data: awayFromZero(rng, 3 * 5), tokens: 3, features: 5 },
  ];
  const configs = [{ surrogate: 'tanh' as const, temperature: 0.7 }, { surrogate: 'l1-l2' as const }];

  it('plain value equals the formula written out', () => {
    const [a, b] = layers as [ActivationRows, ActivationRows];
    const tanhMean = (l: ActivationRows) => Array.from(l.data).reduce((s, v) => s + Math.tanh(Math.abs(v) / 0.7), 0) / l.data.length;
    expect(densityLossValue(layers, configs[0])).toBeCloseTo((tanhMean(a) + tanhMean(b)) / 2, 12);
    const hoyer = (l: ActivationRows) => {
      let s = 0;
      for (let t = 0; t < l.tokens; t++) {
        const row = Array.from(l.data).slice(t * l.features, (t + 1) * l.features);
        s += row.reduce((x, v) => x + Math.abs(v), 0) / Math.sqrt(l.features) / Math.hypot(...row);
      }
      return s / l.tokens;
    };
    expect(densityLossValue(layers, configs[1])).toBeCloseTo((hoyer(a) + hoyer(b)) / 2, 10);
    // the Hoyer ratio: one non-zero per row gives 1/√n, all equal gives 1
    expect(densityLossValue([{ data: [0, 3, 0, 0], tokens: 1, features: 4 }], { surrogate: 'l1-l2' })).toBeCloseTo(0.5, 9);
    expect(densityLossValue([{ data: [2, -2, 2, 2], tokens: 1, features: 4 }], { surrogate: 'l1-l2' })).toBeCloseTo(1, 9);
    expect(exactDensity([[0, 1, 0, 2], [0, 0]])).toBe(2 / 6);
    expect(() => densityLossValue([])).toThrow(ArgumentError);
    expect(() => densityLossValue([{ data: [1, 2, 3], tokens: 2, features: 2 }])).toThrow(ShapeError);
  });

  it('tfjs value equals the plain value, and its gradient equals finite differences', () => {
    for (const config of configs) {
      const ts = layers.map((l) => tf.tensor2d(l.data as Float32Array, [l.tokens, l.features]));
      expect(densityLoss(ts, config).dataSync()[0]!).toBeCloseTo(densityLossValue(layers, config), 6);
      const grads = tf.grads((...xs: tf.Tensor[]) => densityLoss(xs as tf.Tensor2D[], config))(ts);
      const h = 1e-5;
      layers.forEach((l, li) => {
        const g = grads[li]!.dataSync();
        const data = Float64Array.from(l.data);
        for (let i = 0; i < data.length; i++) {
          const at = (v: number) => {
            const copy = Float64Array.from(data);
            copy[i] = v;
            return densityLossValue(layers.map((o, k) => (k === li ? { ...o, data: copy } : o)), config);
          };
          const fd = (at(data[i]! + h) - at(data[i]! - h)) / (2 * h);
          expect(g[i]!).toBeCloseTo(fd, 4);
        }
      });
      tf.dispose([...ts, ...grads]);
    }
  });

  it('minimizing task loss + λ · density makes the hidden ReLU activations sparser than λ = 0', () => {
    // a 2-layer ReLU regression toward a dense teacher; the same data, init and steps with and without the loss
    const [n, d, hidden] = [128, 8, 32];
    const data = new Random(1);
    const x = tf.tensor2d(data.fillNormal(new Float32Array(n * d)), [n, d]);
    const teacher = tf.tensor2d(data.fillNormal(new Float32Array(d)), [d, 1]);
    const y = tf.matMul(x, teacher);
    const init1 = data.fillNormal(new Float32Array(d * hidden), 0, 0.5);
    const init2 = data.fillNormal(new Float32Array(hidden), 0, 0.5);
    const train = (lambda: number) => {
      const w1 = tf.variable(tf.tensor2d(init1, [d, hidden]));
      const b1 = tf.variable(tf.fill([hidden], 0.5));
      const w2 = tf.variable(tf.tensor2d(init2, [hidden, 1]));
      const opt = tf.train.adam(0.02);
      const hiddenActs = () => tf.relu(tf.add(tf.matMul(x, w1), b1)) as tf.Tensor2D;
      for (let step = 0; step < 200; step++) {
        opt.minimize(() => {
          const a = hiddenActs();
          const task = tf.mean(tf.square(tf.sub(tf.matMul(a, w2), y)));
          return lambda === 0 ? (task as tf.Scalar) : (tf.add(task, tf.mul(lambda, densityLoss([a], { temperature: 0.5 }))) as tf.Scalar);
        });
      }
      const a = hiddenActs();
      const density = exactDensity([a.dataSync()]);
      const task = tf.mean(tf.square(tf.sub(tf.matMul(a, w2), y))).dataSync()[0]!;
      tf.dispose([w1, b1, w2, a]);
      opt.dispose();
      return { density, task };
    };
    const plain = train(0);
    const deft = train(1);
    expect(deft.density).toBeLessThan(plain.density - 0.15);
    // the task is still learned (the teacher's targets have variance about ‖teacher‖² ≈ 8)
    expect(deft.task).toBeLessThan(0.1);
  });
});
