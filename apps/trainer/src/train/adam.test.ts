import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { NamedAdam } from './adam.js';

describe('NamedAdam', () => {
  it("matches tfjs's AdamOptimizer step for step, and a restored state continues identically", async () => {
    await tf.setBackend('cpu');
    const init = [0.5, -1.25, 2, 0.01, -0.3, 0.7];
    const gradsAt = (t: number, w: Float32Array) => Float32Array.from(w, (x, i) => Math.sin(t + i) + 0.3 * x);
    const ours = tf.variable(tf.tensor(init, [2, 3]));
    const ref = tf.variable(tf.tensor(init, [2, 3]));
    const adam = new NamedAdam(0.9, 0.95, 1e-8);
    const tfAdam = tf.train.adam(0.05, 0.9, 0.95, 1e-8);
    for (let t = 0; t < 6; t++) {
      const g1 = tf.tensor(gradsAt(t, ours.dataSync() as Float32Array), [2, 3]);
      adam.apply([{ key: 'w', variable: ours, grad: g1 }], 0.05);
      const g2 = tf.tensor(gradsAt(t, ref.dataSync() as Float32Array), [2, 3]);
      tfAdam.applyGradients([{ name: ref.name, tensor: g2 }]);
      g1.dispose();
      g2.dispose();
      const a = ours.dataSync();
      const b = ref.dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 6);
    }
    // checkpoint, continue both the original and a restored copy: bit-identical
    const saved = adam.state();
    const copy = tf.variable(ours.clone());
    const restored = new NamedAdam(0.9, 0.95, 1e-8);
    restored.load(saved);
    for (let t = 6; t < 9; t++) {
      const g = tf.tensor(gradsAt(t, ours.dataSync() as Float32Array), [2, 3]);
      adam.apply([{ key: 'w', variable: ours, grad: g }], 0.05);
      restored.apply([{ key: 'w', variable: copy, grad: g }], 0.05);
      g.dispose();
    }
    expect(Array.from(copy.dataSync())).toEqual(Array.from(ours.dataSync()));
    expect(restored.t).toBe(9);
    adam.dispose();
    restored.dispose();
    tfAdam.dispose();
  });

  it('reset(keys): the next step on a reset key is a fresh first step (closed form); other keys go on unchanged; survives state/load', async () => {
    await tf.setBackend('cpu');
    const [b1, b2, eps, lr] = [0.9, 0.95, 1e-8, 0.01];
    const adam = new NamedAdam(b1, b2, eps);
    const a = tf.variable(tf.tensor([1, -2, 0.5], [3]));
    const b = tf.variable(tf.tensor([0.3, 0.7], [2]));
    // a twin of b in a second Adam that never resets anything
    const twin = new NamedAdam(b1, b2, eps);
    const b2v = tf.variable(b.clone());
    const dummy = tf.variable(a.clone());
    const gradA = (t: number) => tf.tensor([Math.sin(t), Math.cos(t), 0.5 - t], [3]);
    const gradB = (t: number) => tf.tensor([0.2 * t, -1 / (t + 1)], [2]);
    const step = (t: number) => {
      const [ga, gb] = [gradA(t), gradB(t)];
      adam.apply([{ key: 'a', variable: a, grad: ga }, { key: 'b', variable: b, grad: gb }], lr);
      twin.apply([{ key: 'a', variable: dummy, grad: ga }, { key: 'b', variable: b2v, grad: gb }], lr);
      ga.dispose();
      gb.dispose();
    };
    for (let t = 0; t < 4; t++) step(t);
    adam.reset(['a']);
    const st = adam.state();
    expect(Array.from(st.m.a!.data)).toEqual([0, 0, 0]);
    expect(Array.from(st.v.a!.data)).toEqual([0, 0, 0]);
    expect(st.since).toEqual({ a: 4 });
    expect(Array.from(st.m.b!.data)).toEqual(Array.from(twin.state().m.b!.data));
    // fresh Adam's first step: m̂ = g, v̂ = g², so a -= lr · g / (|g| + eps)
    const before = Float32Array.from(a.dataSync() as Float32Array);
    const g = gradA(4).dataSync();
    step(4);
    const after = a.dataSync();
    before.forEach((x, i) => expect(after[i]).toBeCloseTo(x - (lr * g[i]!) / (Math.abs(g[i]!) + eps), 6));
    // b never noticed
    expect(Array.from(b.dataSync())).toEqual(Array.from(b2v.dataSync()));
    // second step after the reset: bias correction by t = 2, moments from the two gradients since the reset
    const g5 = gradA(5).dataSync();
    const prev = Float32Array.from(a.dataSync() as Float32Array);
    const restored = new NamedAdam(b1, b2, eps);
    restored.load(adam.state());
    const copy = tf.variable(a.clone());
    const ga5 = gradA(5);
    restored.apply([{ key: 'a', variable: copy, grad: ga5 }], lr);
    step(5);
    prev.forEach((x, i) => {
      const m = (1 - b1) * (b1 * g[i]! + g5[i]!);
      const v = (1 - b2) * (b2 * g[i]! ** 2 + g5[i]! ** 2);
      const want = x - (lr * (m / (1 - b1 ** 2))) / (Math.sqrt(v / (1 - b2 ** 2)) + eps);
      expect(a.dataSync()[i]).toBeCloseTo(want, 6);
    });
    expect(Array.from(copy.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(() => restored.load({ ...adam.state(), since: { a: 99 } })).toThrow(/since\['a'\] must be an integer in \[0, t = 6\], got 99/);
    for (const x of [a, b, b2v, dummy, copy, ga5]) x.dispose();
    adam.dispose();
    twin.dispose();
    restored.dispose();
  });

  it('resetEntries(key, keep): zeroes the moments where keep is 0, so a zero gradient then leaves those entries exactly where they are; the rest goes on as without it', async () => {
    await tf.setBackend('cpu');
    const lr = 0.05;
    const adam = new NamedAdam();
    const twin = new NamedAdam();
    const init = [0.4, -0.8, 1.2, 0.1];
    const w = tf.variable(tf.tensor(init, [2, 2]));
    const t2 = tf.variable(tf.tensor(init, [2, 2]));
    const grad = (t: number, masked: boolean) => tf.tensor([Math.sin(t) + 0.5, masked ? 0 : Math.cos(t) - 0.2, 0.3 * t - 0.4, masked ? 0 : 0.7], [2, 2]);
    for (let t = 0; t < 4; t++) {
      const g = grad(t, false);
      adam.apply([{ key: 'w', variable: w, grad: g }], lr);
      twin.apply([{ key: 'w', variable: t2, grad: g }], lr);
      g.dispose();
    }
    const keep = tf.tensor([1, 0, 1, 0], [2, 2]);
    adam.resetEntries('w', keep);
    adam.resetEntries('never-seen', keep); // nothing to reset
    const st = adam.state();
    const ref = twin.state();
    expect(st.t).toBe(4);
    expect(st.since).toBeUndefined(); // not a key reset: the bias correction goes on from t
    expect([st.m.w!.data[1], st.m.w!.data[3], st.v.w!.data[1], st.v.w!.data[3]]).toEqual([0, 0, 0, 0]);
    expect([st.m.w!.data[0], st.m.w!.data[2], st.v.w!.data[0], st.v.w!.data[2]]).toEqual([ref.m.w!.data[0], ref.m.w!.data[2], ref.v.w!.data[0], ref.v.w!.data[2]]);
    const before = Float32Array.from(w.dataSync() as Float32Array);
    for (let t = 4; t < 7; t++) {
      const g = grad(t, true);
      adam.apply([{ key: 'w', variable: w, grad: g }], lr);
      twin.apply([{ key: 'w', variable: t2, grad: g }], lr);
      g.dispose();
    }
    const a = w.dataSync();
    const b = t2.dataSync();
    // the reset entries did not move at all (0 / (0 + eps) = 0); without the reset, their old momentum moves them
    expect([a[1], a[3]]).toEqual([before[1], before[3]]);
    expect(b[1]).not.toBe(before[1]);
    expect(b[3]).not.toBe(before[3]);
    // the kept entries are bit for bit those of the Adam that never reset
    expect([a[0], a[2]]).toEqual([b[0], b[2]]);
    expect(() => adam.resetEntries('w', tf.tensor([1, 0, 1], [3]))).toThrow(/resetEntries: keep for 'w' has shape \[3\], its moments \[2, 2\]/);
    for (const x of [w, t2, keep]) x.dispose();
    adam.dispose();
    twin.dispose();
  });

  it('remapMoments re-lays out one key\'s m and v (here reversed and shortened) and keeps t and the other keys', () => {
    const adam = new NamedAdam();
    const a = tf.variable(tf.tensor1d([1, 2, 3]));
    const b = tf.variable(tf.tensor1d([4, 5]));
    const ga = tf.tensor1d([0.5, -1, 2]);
    const gb = tf.tensor1d([1, 1]);
    adam.apply([{ key: 'a', variable: a, grad: ga }, { key: 'b', variable: b, grad: gb }], 0.1);
    const before = adam.state();
    adam.remapMoments('a', (x) => Float32Array.from([x[2]!, x[0]!]));
    adam.remapMoments('missing', () => new Float32Array(0)); // no moments: nothing happens
    const after = adam.state();
    expect(after.t).toBe(before.t);
    expect(Array.from(after.m.a!.data)).toEqual([before.m.a!.data[2], before.m.a!.data[0]]);
    expect(Array.from(after.v.a!.data)).toEqual([before.v.a!.data[2], before.v.a!.data[0]]);
    expect(after.m.b).toEqual(before.m.b);
    expect(after.m.missing).toBeUndefined();
    tf.dispose([a, b, ga, gb]);
    adam.dispose();
  });
});
