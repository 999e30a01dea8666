import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, maskFromTensor } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A 2:4-pruned [out, in] weight (largest 2 of every 4 kept) as plain numbers. */
function sparseWeight(rng: Random, out: number, inp: number): Float32Array {
  const w = Float32Array.from({ length: out * inp }, () => rng.normal());
  for (let g = 0; g < w.length; g += 4) {
    const order = [0, 1, 2, 3].sort((a, b) => Math.abs(w[g + b]!) - Math.abs(w[g + a]!));
    w[g + order[2]!] = 0;
    w[g + order[3]!] = 0;
  }
  return w;
}

function task(seed: number) {
  const rng = new Random(seed);
  const [out, inp, n] = [8, 16, 64];
  const w0 = sparseWeight(rng, out, inp);
  // The target is the base plus a rank-2 change, so a rank-2 adapter can fit it.
  const u = Array.from({ length: out * 2 }, () => rng.normal());
  const v = Array.from({ length: 2 * inp }, () => rng.normal());
  const wt = w0.map((w, k) => {
    const [i, j] = [Math.floor(k / inp), k % inp];
    return w + 0.3 * (u[i * 2]! * v[j]! + u[i * 2 + 1]! * v[inp + j]!);
  });
  const x = tf.tensor(Float32Array.from({ length: n * inp }, () => rng.normal()), [n, inp]);
  const y = tf.matMul(x, tf.tensor(wt, [out, inp]), false, true);
  return { w0, x, y, shape: [out, inp] as [number, number] };
}

describe('attachAdapters', () => {
  it.each(['lora', 'sqft', 'spp'])('%s: zero at start, Adam lowers the loss, merge keeps the 2:4 mask and matches the adapted forward', (variant) => {
    const { w0, x, y, shape } = task(1);
    const weights = { 'layers.0.fc': tf.variable(tf.tensor(w0, shape), false), 'layers.0.other': tf.variable(tf.zeros([2, 2]), false) };
    const model = attachAdapters(weights, { targets: ['fc'], variant, config: variant === 'spp' ? {} : { r: 2, alpha: 4 }, seed: 3 });
    const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true)) as tf.Scalar;
    // A fresh adapter changes nothing.
    expect(Array.from(model.effectiveWeight('layers.0.fc').dataSync())).toEqual(Array.from(w0));
    const opt = tf.train.adam(0.05);
    const first = loss().dataSync()[0]!;
    for (let s = 0; s < 60; s++) opt.minimize(loss, false, model.trainableVariables());
    const last = loss().dataSync()[0]!;
    expect(last).toBeLessThan(0.6 * first);
    // The base was frozen: only adapter variables moved.
    expect(Array.from(weights['layers.0.fc'].dataSync())).toEqual(Array.from(w0));
    const adapted = tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true).dataSync();
    model.merge();
    const merged = weights['layers.0.fc'];
    const baseMask = maskFromTensor({ data: w0, shape, stride: [shape[1], 1], offset: 0, dtype: 'float32' });
    expect(equals(maskFromTensor({ data: merged.dataSync() as Float32Array, shape, stride: [shape[1], 1], offset: 0, dtype: 'float32' }), baseMask)).toBe(true);
    expect(count(baseMask)).toBe(64);
    if (variant !== 'lora') {
      // SQFT and SPP train the weight they merge into: merged forward equals the adapted one.
      const viaMerged = tf.matMul(x, merged, false, true).dataSync();
      viaMerged.forEach((v, k) => expect(Math.abs(v - adapted[k]!)).toBeLessThan(1e-4));
    }
    model.unmerge();
    (weights['layers.0.fc'].dataSync() as Float32Array).forEach((v, k) => expect(Math.abs(v - w0[k]!)).toBeLessThan(1e-5));
    expect(model.trainableReport().trainable).toBe(variant === 'spp' ? 8 + 16 : 2 * (8 + 16));
  });

  it('switches, disables and deletes named adapters; mergeAndUnload leaves plain weights', () => {
    const { w0, shape } = task(2);
    const weights = { fc: tf.variable(tf.tensor(w0, shape), false) };
    const model = attachAdapters(weights, { targets: /fc/, variant: 'lora', config: { r: 1 }, adapterName: 'a' });
    model.addAdapter('b', { targets: 'fc', variant: 'spp' });
    expect(model.activeAdapter).toBe('b');
    expect(model.adapterNames).toEqual(['a', 'b']);
    model.setAdapter('a');
    for (const v of model.trainableVariables()) v.assign(tf.onesLike(v));
    const adapted = model.effectiveWeight('fc').dataSync();
    expect(Array.from(adapted)).not.toEqual(Array.from(w0));
    model.disableAdapters();
    expect(model.effectiveWeight('fc')).toBe(weights.fc);
    model.enableAdapters();
    expect(model.trainableReport()).toMatchObject({ adapter: 'a', trainable: 8 + 16, base: 128 });
    model.deleteAdapter('b');
    expect(() => model.setAdapter('b')).toThrow(/no adapter named 'b'/);
    const out = model.mergeAndUnload({ densify: true });
    (out.fc!.dataSync() as Float32Array).forEach((v, k) => expect(v).toBeCloseTo(adapted[k]!, 5));
    expect(model.adapterNames).toEqual([]);
    expect(() => attachAdapters(weights, { targets: 'nothing', variant: 'lora' })).toThrow(/match none/);
    expect(() => attachAdapters(weights, { targets: 'fc', variant: 'lorra' })).toThrow(/did you mean 'lora'/);
  });
});

describe('dropout', () => {
  it('is refused for training instead of being silently ignored', async () => {
    const { attachAdapters } = await import('./tfjs.js');
    const w = tf.variable(tf.zeros([4, 4]));
    expect(() => attachAdapters({ w }, { targets: /w/, variant: 'lora', config: { r: 2, dropout: 0.1 } })).toThrow(/dropout 0.1 is not supported/);
    w.dispose();
  });
});
