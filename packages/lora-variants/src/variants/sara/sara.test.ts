import '@tensorflow/tfjs-backend-cpu';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { nuclearNorm, saraVariant } from './variant.js';
import { nuclearNormPenalty } from './tfjs.js';
import { describeVariantContract, prune24, randn } from '../helpers/sparse-testing.js';

describeVariantContract({
  name: 'sara',
  config: { density: 0.4 },
  closedForm: ([out, inp], c) => Math.round((c.density as number) * out * inp),
  referenceDelta(state) {
    const s = state as IndexedAdapterState;
    const d = new Float64Array(s.shape[0] * s.shape[1]);
    s.indices.support!.forEach((p, t) => (d[p] = s.params.sara_values!.data[t]!));
    return d;
  },
  // The support lies on the base's nonzeros, so even a densified merge cannot fill pruned entries.
  densifyChangesMask: false,
  badConfigs: [[{ density: 0 }, /density/], [{ density: 'a' }, /density/], [{ r: 4 }, /r/]],
});

describe('sara', () => {
  it('trains the smallest |W| among the nonzeros (brute force)', () => {
    const rng = new Random(1);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const s = saraVariant.init(base, { density: 0.1 }, rng);
    const expected = Array.from(base.data, (w, q) => [Math.abs(w), q] as const)
      .filter(([, q]) => base.data[q] !== 0)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .slice(0, Math.round(0.1 * 128))
      .map((e) => e[1])
      .sort((a, b) => a - b);
    expect(Array.from(s.indices.support!)).toEqual(expected);
    expect(() => saraVariant.init(base, { density: 0.6 }, rng)).toThrow(/density asks for 77 entries but the base has only 64 nonzeros/);
  });

  it('nuclearNorm matches closed forms: 2×2 √(‖M‖_F² + 2|det M|), rank one ‖u‖‖v‖, diagonal Σ|d_i|', () => {
    const rng = new Random(2);
    for (let t = 0; t < 5; t++) {
      const [a, b, c, d] = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
      expect(nuclearNorm(tensor(new Float32Array([a, b, c, d]), [2, 2]))).toBeCloseTo(Math.sqrt(a * a + b * b + c * c + d * d + 2 * Math.abs(a * d - b * c)), 5);
    }
    const u = randn(rng, [5]);
    const v = randn(rng, [7]);
    const outer = tensor(Float32Array.from({ length: 35 }, (_, k) => u.data[Math.floor(k / 7)]! * v.data[k % 7]!), [5, 7]);
    const norm = (x: Float32Array) => Math.hypot(...x);
    expect(nuclearNorm(outer)).toBeCloseTo(norm(u.data) * norm(v.data), 4);
    expect(nuclearNorm(tensor(new Float32Array([3, 0, 0, 0, -2, 0]), [2, 3]))).toBeCloseTo(5, 6);
  });

  it('nuclearNormPenalty: value = nuclearNorm, gradient = central finite differences', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(3);
    const m = randn(rng, [4, 6]);
    const x = tf.variable(tf.tensor(m.data, [4, 6]));
    const { value, grads } = tf.variableGrads(() => nuclearNormPenalty(x), [x]);
    expect(value.dataSync()[0]).toBeCloseTo(nuclearNorm(m), 4);
    const g = grads[x.name]!.dataSync();
    const h = 1e-2;
    for (const k of [0, 5, 11, 23]) {
      const plus = Float64Array.from(m.data);
      const minus = Float64Array.from(m.data);
      plus[k] += h;
      minus[k] -= h;
      const fd = (nuclearNorm(tensor(plus, [4, 6])) - nuclearNorm(tensor(minus, [4, 6]))) / (2 * h);
      expect(g[k]).toBeCloseTo(fd, 3);
    }
    expect(() => nuclearNormPenalty(tf.zeros([3]))).toThrow(/expected a matrix/);
  });

  it('adding the penalty to the loss gives a ΔW of lower nuclear norm', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(4);
    const [out, inp, n] = [8, 12, 48];
    const w0 = randn(rng, [out, inp]);
    const x = tf.tensor(randn(rng, [n, inp]).data, [n, inp]);
    const y = tf.tensor(randn(rng, [n, out]).data, [n, out]);
    const run = (lambda: number) => {
      const weights = { fc: tf.variable(tf.tensor(w0.data, [out, inp]), false) };
      const model = attachAdapters(weights, { targets: 'fc', variant: 'sara', config: { density: 0.5 }, seed: 1 });
      const opt = tf.train.adam(0.05);
      const delta = () => tf.sub(model.effectiveWeight('fc'), weights.fc);
      for (let s = 0; s < 40; s++) {
        opt.minimize(() => tf.add(tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('fc'), false, true)), tf.mul(lambda, nuclearNormPenalty(delta()))) as tf.Scalar, false, model.trainableVariables());
      }
      return nuclearNorm(tensor(Float32Array.from(delta().dataSync()), [out, inp]));
    };
    const free = run(0);
    const penalized = run(0.3);
    expect(free).toBeGreaterThan(0);
    expect(penalized).toBeLessThan(0.8 * free);
  });
});
