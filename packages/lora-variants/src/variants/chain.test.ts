import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { equals, maskFromTensor } from '@sparse/masks';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdapterModel } from '../tfjs.js';
import { chainOfLoRA } from './chain.js';
import { pruneHalf, randn } from './helpers/family-testing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A 50%-sparse base and a target that differs from it by a rank-3 change on the kept entries. */
function task() {
  const rng = new Random(8);
  const base = randn(rng, [8, 12]);
  const mask = pruneHalf(base, rng);
  const u = randn(rng, [8, 3]);
  const v = randn(rng, [3, 12]);
  const target = Float32Array.from(base.data, (w, k) => {
    if (w === 0) return 0;
    const [i, j] = [Math.floor(k / 12), k % 12];
    let d = 0;
    for (let t = 0; t < 3; t++) d += u.data[i * 3 + t]! * v.data[t * 12 + j]!;
    return w + 0.5 * d;
  });
  const x = tf.tensor(randn(rng, [64, 12]).data, [64, 12]);
  return { base, mask, x, y: tf.matMul(x, tf.tensor(target, [8, 12]), false, true) };
}

async function run(rounds: number, stepsPerRound: number) {
  const { base, mask, x, y } = task();
  const w = tf.variable(tf.tensor(base.data, [8, 12]), false);
  const model = new AdapterModel({ fc: w });
  const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('fc'), false, true)) as tf.Scalar;
  const first = loss().dataSync()[0]!;
  const counts = await chainOfLoRA(model, { targets: 'fc', variant: 'sqft', config: { r: 1, alpha: 1 }, rounds, seed: 2 }, (m) => {
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < stepsPerRound; s++) opt.minimize(loss, false, m.trainableVariables());
    opt.dispose();
  });
  return { first, last: loss().dataSync()[0]!, counts, model, w, mask };
}

describe('chainOfLoRA', () => {
  it('rank-1 rounds merged one after another fit a rank-3 change a single rank-1 adapter cannot, keeping the mask', async () => {
    const one = await run(1, 240);
    const chain = await run(4, 60);
    expect(one.counts).toEqual([20]);
    expect(chain.counts).toEqual([20, 20, 20, 20]);
    // Same number of steps, same adapter size: the chain ends well below the single adapter.
    expect(chain.last).toBeLessThan(0.2 * one.last);
    expect(one.last).toBeLessThan(one.first);
    // Every round merged and unloaded; the weight holds the result, with the base's exact pattern.
    expect(chain.model.adapterNames).toEqual([]);
    const merged = tensor(Float32Array.from(chain.w.dataSync() as Float32Array), [8, 12]);
    expect(equals(maskFromTensor(merged), chain.mask)).toBe(true);
  });

  it('refuses a model that already holds adapters, and a bad round count', async () => {
    const model = new AdapterModel({ fc: tf.variable(tf.ones([2, 2]), false) }).addAdapter('x', { targets: 'fc', variant: 'lora', config: { r: 1 } });
    await expect(chainOfLoRA(model, { targets: 'fc', variant: 'lora', rounds: 2 }, () => {})).rejects.toThrow(/already holds adapters \(x\)/);
    await expect(chainOfLoRA(new AdapterModel({}), { targets: 'fc', variant: 'lora', rounds: 0 }, () => {})).rejects.toThrow(/rounds must be a positive integer/);
  });
});
