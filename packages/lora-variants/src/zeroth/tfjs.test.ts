import '@tensorflow/tfjs-backend-cpu';
import { isKept, maskAll } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { mezoStep, smallMagnitudeMask } from './mezo.js';
import { mezoStepTf } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('mezoStepTf', () => {
  it('matches the Float32Array MeZO step with the same seed (dense and sparse), with a tf.Scalar loss', async () => {
    const rng = new Random(1);
    const a = Float32Array.from({ length: 12 }, () => rng.normal());
    const b = Float32Array.from({ length: 5 }, () => rng.normal());
    const target = tf.tensor1d(Float32Array.from({ length: 12 }, () => rng.normal()));
    for (const masks of [undefined, [smallMagnitudeMask(a, 0.5), null]]) {
      const va = tf.variable(tf.tensor2d(a, [3, 4]));
      const vb = tf.variable(tf.tensor1d(b));
      const lossTf = () => tf.tidy(() => tf.add(tf.sum(tf.square(tf.sub(tf.reshape(va, [12]), target))), tf.sum(tf.cos(vb)))) as tf.Scalar;
      const pa = Float32Array.from(a);
      const pb = Float32Array.from(b);
      const t = target.dataSync();
      const lossCore = () => pa.reduce((s, x, k) => s + (x - t[k]!) ** 2, 0) + pb.reduce((s, x) => s + Math.cos(x), 0);
      for (const seed of [3, 4]) {
        const r1 = await mezoStepTf([va, vb], lossTf, { seed, lr: 0.01, eps: 1e-2, masks });
        const r2 = await mezoStep([pa, pb], lossCore, { seed, lr: 0.01, eps: 1e-2, masks });
        expect(r1.projectedGrad).toBeCloseTo(r2.projectedGrad, 2);
      }
      va.dataSync().forEach((x, k) => expect(x).toBeCloseTo(pa[k]!, 4));
      vb.dataSync().forEach((x, k) => expect(x).toBeCloseTo(pb[k]!, 4));
      if (masks) va.dataSync().forEach((x, k) => isKept(masks[0]!, k) || expect(x).toBe(a[k]));
      else expect(va.dataSync().some((x, k) => x !== a[k])).toBe(true);
      va.dispose();
      vb.dispose();
    }
  });

  it('leaves no tensors behind', async () => {
    const v = tf.variable(tf.ones([4, 4]));
    const before = tf.memory().numTensors;
    await mezoStepTf([v], () => tf.tidy(() => tf.sum(tf.square(v))) as tf.Scalar, { seed: 1, lr: 0.1 });
    expect(tf.memory().numTensors).toBe(before);
    await expect(mezoStepTf([v], () => 0, { seed: 1, lr: 0.1, masks: [maskAll([3])] })).rejects.toThrow(/has 3 entries.*16/);
    v.dispose();
  });
});
