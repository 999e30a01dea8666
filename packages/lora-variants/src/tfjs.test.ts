import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, isKept, maskFromTensor } from '@sparse/masks';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters, mosaDraws, setMoSADraws, setPSTSparsity } from './tfjs.js';
import { mosaModuleDelta, mosaModules } from './variants/mosa/variant.js';
import { pstMask } from './variants/pst/variant.js';

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
    // every variant trains the weight it merges into: merged forward equals the adapted one
    const viaMerged = tf.matMul(x, merged, false, true).dataSync();
    viaMerged.forEach((v, k) => expect(Math.abs(v - adapted[k]!)).toBeLessThan(1e-4));
    model.unmerge();
    (weights['layers.0.fc'].dataSync() as Float32Array).forEach((v, k) => expect(Math.abs(v - w0[k]!)).toBeLessThan(1e-5));
    expect(model.trainableReport().trainable).toBe(variant === 'spp' ? 8 + 16 : 2 * (8 + 16));
  });

  it('switches, disables and deletes named adapters; mergeAndUnload leaves plain weights', () => {
    const { w0, shape } = task(2);
    const weights = { fc: tf.variable(tf.tensor(w0, shape), false) };
    // densify: the adapter trains (and merges) ΔW on the base's zeros too
    const model = attachAdapters(weights, { targets: /fc/, variant: 'lora', config: { r: 1 }, adapterName: 'a', densify: true });
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
    // pruned entries were trained too (the adapted weight is dense), and the merge (densify, as attached) writes them
    expect(Array.from(adapted).every((v) => v !== 0)).toBe(true);
    const out = model.mergeAndUnload();
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

/** Random values (seeded) for every variable of the active adapter except the frozen ones. */
function randomize(model: ReturnType<typeof attachAdapters>, seed: number, scale = 0.5): void {
  const rng = new Random(seed);
  for (const v of model.trainableVariables()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal(0, scale)), v.shape));
}

describe('merges that change the support (maskAfterMerge)', () => {
  it("a PST merge makes the layer's mask M; a LoRA added and merged next keeps PST's pruned entries at zero", () => {
    const rng = new Random(11);
    const shape: [number, number] = [8, 16];
    const w0 = Float32Array.from({ length: 128 }, () => rng.normal());
    const weights = { fc: tf.variable(tf.tensor(w0, shape), false), other: tf.variable(tf.tensor(w0.slice(0, 64), [4, 16]), false) };
    const model = attachAdapters(weights, { targets: ['fc', 'other'], variant: 'pst', config: { r: 2, scoreRank: 2, sparsity: 0.5 }, adapterName: 'pst', seed: 1 });
    expect(setPSTSparsity(model, 0.5)).toEqual(['fc', 'other']);
    randomize(model, 2);
    // the reference: the core's M from the adapter's values on the dense base
    const state = model.adapterStates().fc!;
    const m = pstMask(state, tensor(w0, shape));
    expect(count(m)).toBe(64);
    expect(count(model.mask('fc')!)).toBe(128); // dense until the merge
    model.merge();
    expect(equals(model.mask('fc')!, m)).toBe(true);
    expect(count(model.mask('other')!)).toBe(32);
    expect(() => model.unmerge()).toThrow(/pst\.unmerge: PST's merge removes the weights/);
    expect(equals(model.mask('fc')!, m)).toBe(true); // a refused unmerge changes nothing
    model.mergeAndUnload();
    const pruned = Float32Array.from(weights.fc.dataSync() as Float32Array);
    pruned.forEach((v, q) => (isKept(m, q) ? expect(v).not.toBe(0) : expect(v).toBe(0)));
    // a LoRA on the same model: its ΔW goes through M in training and in the merge
    model.addAdapter('lora', { targets: ['fc'], variant: 'lora', config: { r: 2, alpha: 2 }, seed: 3 });
    randomize(model, 4);
    const delta = tf.sub(model.effectiveWeight('fc'), weights.fc).dataSync();
    Array.from(delta).forEach((d, q) => (isKept(m, q) ? expect(d).not.toBe(0) : expect(d).toBe(0)));
    model.mergeAndUnload();
    const after = weights.fc.dataSync();
    after.forEach((v, q) => (isKept(m, q) ? expect(v).toBeCloseTo(pruned[q]! + delta[q]!, 5) : expect(v).toBe(0)));
    model.dispose();
    expect(model.mask('fc')).toBeUndefined();
  });

  it('a densified merge drops the masks: the next adapter starts from the merged weight', () => {
    const w = tf.variable(tf.tensor([1, 0, 0, 2], [2, 2]), false);
    const model = attachAdapters({ w }, { targets: 'w', variant: 'lora', config: { r: 1 } });
    randomize(model, 5);
    model.mergeAndUnload({ densify: true });
    expect(model.mask('w')).toBeUndefined();
    model.addAdapter('b', { targets: 'w', variant: 'lora', config: { r: 1 } });
    expect(count(model.mask('w')!)).toBe(Array.from(w.dataSync()).filter((x) => x !== 0).length);
    model.dispose();
  });
});

describe('setPSTSparsity', () => {
  it("sets every layer's level: M keeps round((1 − level) · n) entries of a dense base; refuses bad levels and other variants", () => {
    const rng = new Random(7);
    const weights = { a: tf.variable(tf.tensor(Float32Array.from({ length: 48 }, () => rng.normal()), [6, 8]), false), b: tf.variable(tf.tensor(Float32Array.from({ length: 20 }, () => rng.normal()), [4, 5]), false) };
    const model = attachAdapters(weights, { targets: ['a', 'b'], variant: 'pst', config: { r: 1, scoreRank: 1 } });
    randomize(model, 8);
    for (const level of [0.3, 0.75, 0]) {
      expect(setPSTSparsity(model, level)).toEqual(['a', 'b']);
      for (const [n, s] of Object.entries(model.adapterStates())) {
        expect(s.params.pst_sparsity!.data[0]).toBe(Math.fround(level));
        const nonzero = Array.from(model.effectiveWeight(n).dataSync()).filter((x) => x !== 0).length;
        expect(nonzero, `${n} at ${level}`).toBe(Math.round((1 - level) * weights[n as 'a' | 'b'].size));
      }
    }
    expect(() => setPSTSparsity(model, 1)).toThrow(/setPSTSparsity: level must be in \[0, 1\), got 1/);
    expect(() => setPSTSparsity(model, 0.5, 'nope')).toThrow(/no adapter named 'nope'/);
    model.addAdapter('lora', { targets: 'a', variant: 'lora' });
    expect(() => setPSTSparsity(model, 0.5)).toThrow(/setPSTSparsity: adapter 'lora' is 'lora', not pst/);
    expect(setPSTSparsity(model, 0.5, 'default')).toEqual(['a', 'b']);
    model.dispose();
  });
});

describe('MoSA draw counters', () => {
  it('mosaDraws counts training forwards per layer; setMoSADraws(k) makes the next forward draw mosaModules(state, k)', () => {
    const rng = new Random(9);
    const w0 = Float32Array.from({ length: 96 }, () => rng.normal());
    const make = () => {
      const w = tf.variable(tf.tensor(w0, [8, 12]), false);
      const model = attachAdapters({ w }, { targets: 'w', variant: 'mosa', config: { r: 3, modules: 4 }, seed: 6 });
      randomize(model, 10);
      return { w, model };
    };
    const first = make();
    for (let c = 0; c < 5; c++) first.model.effectiveWeight('w').dispose();
    first.model.training = false;
    first.model.effectiveWeight('w').dispose(); // the complete adapter: no draw
    expect(mosaDraws(first.model)).toEqual({ w: 5 });
    const second = make();
    setMoSADraws(second.model, { w: 5 });
    const state = second.model.adapterStates().w!;
    const want = mosaModuleDelta(state, tensor(w0, [8, 12]), mosaModules(state, 5)).data;
    const got = tf.sub(second.model.effectiveWeight('w'), second.w).dataSync();
    got.forEach((v, q) => expect(v).toBeCloseTo(want[q]!, 5));
    expect(mosaDraws(second.model)).toEqual({ w: 6 });
    expect(() => setMoSADraws(second.model, { w: -1 })).toThrow(/setMoSADraws: w: the draw count must be a non-negative integer, got -1/);
    expect(() => setMoSADraws(second.model, { v: 1 })).toThrow(/setMoSADraws: adapter 'default' has no layer 'v'/);
    second.model.addAdapter('lora', { targets: 'w', variant: 'lora' });
    expect(() => mosaDraws(second.model)).toThrow(/mosaDraws: adapter 'lora' is 'lora', not mosa/);
    first.model.dispose();
    second.model.dispose();
  });
});
