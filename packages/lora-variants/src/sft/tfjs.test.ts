import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { maskFromPredicate, maskToBooleans } from '@sparse/masks';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { SparseAdam } from './adam.js';
import { gatherAtSupport, sparseDeltaToDense, type SparseDelta } from './delta.js';
import { expectedL0, hardConcreteFromUniform, hardConcreteParams, hardConcreteUniforms } from './hard-concrete.js';
import { reselectSupport } from './reselect.js';
import { DiffPruning, SparseFineTuner, type SparseFineTunerState } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A linear regression task y = x W*ᵀ with W* = W + a dense change. */
function task(seed: number, out = 6, inp = 10, n = 32) {
  const rng = new Random(seed);
  const w0 = Float32Array.from({ length: out * inp }, () => rng.normal());
  const target = w0.map((x) => x + rng.normal(0, 0.5));
  const x = tf.tensor2d(Float32Array.from({ length: n * inp }, () => rng.normal()), [n, inp]);
  const y = tf.matMul(x, tf.tensor2d(target, [out, inp]), false, true);
  const loss = (w: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(tf.matMul(x, w, false, true), y)))) as tf.Scalar;
  return { w0, x, y, loss, shape: [out, inp] as [number, number] };
}

describe('SparseFineTuner', () => {
  it('trains only the support: W stays frozen and W + Δ differs from W only on the active entries', () => {
    const t = task(1);
    const w = tf.variable(tf.tensor2d(t.w0, t.shape), false);
    const sft = new SparseFineTuner({ fc: w }, { density: 0.2, seed: 3, adam: { lr: 0.05 } });
    const first = sft.minimize((ws) => t.loss(ws.fc!));
    let last = first;
    for (let s = 0; s < 40; s++) last = sft.minimize((ws) => t.loss(ws.fc!));
    expect(last).toBeLessThan(first);
    expect(w.dataSync()).toEqual(t.w0);
    const eff = sft.effectiveWeight('fc').dataSync();
    const support = new Set(sft.delta('fc').indices);
    expect(support.size).toBe(12);
    expect(sft.trainableCount()).toBe(12);
    for (let k = 0; k < t.w0.length; k++) {
      if (support.has(k)) expect(eff[k]).not.toBe(t.w0[k]);
      else expect(eff[k]).toBe(t.w0[k]);
    }
    sft.merge();
    expect(w.dataSync()).toEqual(eff);
    expect(sft.effectiveWeight('fc').dataSync()).toEqual(eff);
    expect(() => sft.step({ fc: new Float32Array(60) })).toThrow(/merged/);
    expect(() => sft.minimize((ws) => t.loss(ws.fc!))).toThrow(/merged/);
    expect(w.isDisposed).toBe(false);
    sft.unmerge();
    w.dataSync().forEach((x, k) => expect(x).toBeCloseTo(t.w0[k]!, 5));
    sft.dispose();
  });

  it('its sparse Adam equals tf.train.adam on a dense delta with the gradient masked to the support', () => {
    const t = task(2);
    const w = tf.variable(tf.tensor2d(t.w0, t.shape), false);
    const sft = new SparseFineTuner({ fc: w }, { density: 0.3, seed: 1, adam: { lr: 0.02 } });
    const support = sft.delta('fc').indices;
    const maskArr = new Float32Array(t.w0.length);
    support.forEach((k) => (maskArr[k] = 1));
    const mask = tf.tensor2d(maskArr, t.shape);
    const dense = tf.variable(tf.zeros(t.shape));
    const opt = tf.train.adam(0.02, 0.9, 0.999, 1e-8);
    for (let s = 0; s < 15; s++) {
      sft.minimize((ws) => t.loss(ws.fc!));
      const g = tf.tidy(() => tf.mul(tf.grad((d: tf.Tensor) => t.loss(tf.add(w, d)))(dense), mask));
      opt.applyGradients([{ name: dense.name, tensor: g }]);
      g.dispose();
    }
    const ref = dense.dataSync();
    const ours = sparseDeltaToDense(sft.delta('fc')).data;
    for (let k = 0; k < ref.length; k++) expect(ours[k]).toBeCloseTo(ref[k]!, 4);
    expect(Math.max(...ref.map(Math.abs))).toBeGreaterThan(0.05);
    sft.dispose();
  });

  it('drop-and-regrow from the accumulated window of dense gradients: same as the core pipeline, survivors keep moments', () => {
    const t = task(3);
    const w = tf.variable(tf.tensor2d(t.w0, t.shape), false);
    const every = 4;
    const sft = new SparseFineTuner({ fc: w }, { density: 0.25, seed: 5, adam: { lr: 0.05 }, regrow: { every, fraction: 0.4, accumulate: 2 } });
    const size = t.w0.length;
    // Replica on the core pieces: same support, a SparseAdam, and a sum of the last 2 gradients.
    let delta: SparseDelta = { shape: t.shape, indices: sft.delta('fc').indices.slice(), values: new Float32Array(15) };
    const adam = new SparseAdam(15, { lr: 0.05 });
    const acc = new Float32Array(size);
    for (let s = 1; s <= 2 * every; s++) {
      const eff = sft.effectiveWeight('fc');
      const g = tf.grad((ww: tf.Tensor) => t.loss(ww))(eff).dataSync() as Float32Array;
      eff.dispose();
      sft.step({ fc: g });
      adam.step(delta.values, gatherAtSupport(g, delta.indices));
      if (s % every > every - 2 || s % every === 0) g.forEach((x, k) => (acc[k] = acc[k]! + x));
      if (s % every === 0) {
        const m = adam.m.slice();
        const res = reselectSupport(delta, acc, { fraction: 0.4 });
        adam.remap(res.sources);
        expect(res.grown.length).toBe(6);
        // survivors carry their moments, grown entries start at zero
        res.sources.forEach((src, k) => expect(adam.m[k]).toBe(src === -1 ? 0 : m[src]!));
        delta = res.delta;
        acc.fill(0);
      }
      expect([...sft.delta('fc').indices]).toEqual([...delta.indices]);
      expect(sft.delta('fc').values).toEqual(delta.values);
      expect(sft.optimizerState('fc').m).toEqual(adam.m);
      expect(sft.optimizerState('fc').v).toEqual(adam.v);
    }
    // the support really moved, and W + Δ still differs from W only on the current support
    const eff = sft.effectiveWeight('fc').dataSync();
    const support = new Set(sft.delta('fc').indices);
    for (let k = 0; k < size; k++) if (!support.has(k)) expect(eff[k]).toBe(t.w0[k]);
    expect(sft.trainableCount()).toBe(15);
    expect(sft.stateByteLength()).toBe(15 * 16); // the accumulator is freed after the window
    sft.dispose();
  });

  it('state() and load() continue bit for bit: k steps, export, a fresh tuner, load, N - k steps equal N steps', () => {
    const t = task(4);
    const opts = { density: 0.25, adam: { lr: 0.05, weightDecay: 0.01 }, regrow: { every: 3, fraction: 0.4, accumulate: 2 } };
    const [n, k] = [11, 5]; // step 5 is inside an accumulation window, step 6 reselects
    const whole = new SparseFineTuner({ fc: tf.variable(tf.tensor2d(t.w0, t.shape), false) }, { ...opts, seed: 1 });
    const a: number[] = [];
    for (let s = 0; s < n; s++) a.push(whole.minimize((ws) => t.loss(ws.fc!)));
    const first = new SparseFineTuner({ fc: tf.variable(tf.tensor2d(t.w0, t.shape), false) }, { ...opts, seed: 1 });
    const b: number[] = [];
    for (let s = 0; s < k; s++) b.push(first.minimize((ws) => t.loss(ws.fc!)));
    const saved = first.state();
    expect(saved.layers.fc!.accumulated).not.toBeNull();
    const snapshot = structuredClone(saved);
    first.minimize((ws) => t.loss(ws.fc!)); // the export is a copy: training on does not change it
    expect(saved).toEqual(snapshot);
    // a different seed gives a different initial support, which load() replaces
    const second = new SparseFineTuner({ fc: tf.variable(tf.tensor2d(t.w0, t.shape), false) }, { ...opts, seed: 99 });
    expect([...second.delta('fc').indices]).not.toEqual([...saved.layers.fc!.indices]);
    second.load(saved);
    saved.layers.fc!.values.fill(7); // load() copied too
    for (let s = k; s < n; s++) b.push(second.minimize((ws) => t.loss(ws.fc!)));
    expect(b).toEqual(a);
    expect(second.stepCount).toBe(n);
    expect([...second.delta('fc').indices]).toEqual([...whole.delta('fc').indices]);
    expect(second.delta('fc').values).toEqual(whole.delta('fc').values);
    expect(second.optimizerState('fc')).toEqual(whole.optimizerState('fc'));
    expect(second.state()).toEqual(whole.state());
    expect(second.effectiveWeight('fc').dataSync()).toEqual(whole.effectiveWeight('fc').dataSync());
    [whole, first, second].forEach((x) => x.dispose());
  });

  it('a per-step lr goes to every layer\'s Adam: the same as stepping a SparseAdam with those lrs', () => {
    const t = task(5);
    const w = tf.variable(tf.tensor2d(t.w0, t.shape), false);
    const sft = new SparseFineTuner({ fc: w }, { density: 0.3, seed: 4, adam: { lr: 1 } });
    const values = new Float32Array(sft.delta('fc').indices.length);
    const adam = new SparseAdam(values.length, { lr: 1 });
    for (const lr of [0.01, 0.03, 0.02, 0.005]) {
      const eff = sft.effectiveWeight('fc');
      const g = tf.grad((ww: tf.Tensor) => t.loss(ww))(eff).dataSync() as Float32Array;
      eff.dispose();
      sft.minimize((ws) => t.loss(ws.fc!), { lr });
      adam.step(values, gatherAtSupport(g, sft.delta('fc').indices), lr);
      expect(sft.delta('fc').values).toEqual(values);
    }
    sft.dispose();
  });

  it('load() refuses a state that does not fit, and changes nothing then', () => {
    const w = tf.variable(tf.zeros([3, 4]), false);
    const v = tf.variable(tf.zeros([2, 2]), false);
    const src = new SparseFineTuner({ fc: w, g: v }, { density: 0.5, seed: 2 });
    src.step({ fc: Float32Array.from({ length: 12 }, (_, i) => i - 6), g: new Float32Array([1, -1, 2, -2]) });
    const good = src.state();
    const dst = new SparseFineTuner({ fc: w, g: v }, { density: 0.5, seed: 3 });
    const before = dst.state();
    const bad = (f: (s: SparseFineTunerState) => void) => {
      const s = structuredClone(good);
      f(s);
      return s;
    };
    expect(() => dst.load(bad((s) => delete s.layers.g))).toThrow(/no layer 'g'/);
    expect(() => dst.load(bad((s) => (s.layers.h = s.layers.g!)))).toThrow(/'h', which is not one of the weights/);
    expect(() => dst.load(bad((s) => (s.layers.g!.shape = [4, 1])))).toThrow(/layer 'g'.*shape \[4,1\]/);
    expect(() => dst.load(bad((s) => (s.layers.fc!.indices = s.layers.fc!.indices.slice().reverse())))).toThrow(/layer 'fc'.*strictly increasing/);
    expect(() => dst.load(bad((s) => (s.layers.fc!.adam.m = new Float32Array(1))))).toThrow(/layer 'fc'.*Adam moments/);
    expect(() => dst.load(bad((s) => (s.layers.g!.accumulated = new Float32Array(3))))).toThrow(/layer 'g'.*accumulated/);
    expect(() => dst.load(bad((s) => (s.layers.g!.adam.step = -1)))).toThrow(/layer 'g': adam.*step/);
    expect(() => dst.load(bad((s) => (s.stepCount = 1.5)))).toThrow(/stepCount/);
    expect(dst.state()).toEqual(before);
    dst.merge();
    expect(() => dst.state()).toThrow(/merged/);
    expect(() => dst.load(good)).toThrow(/merged/);
    src.dispose();
    dst.dispose();
  });

  it('validates its options', () => {
    const w = tf.variable(tf.zeros([3, 4]), false);
    expect(() => new SparseFineTuner({ fc: w })).toThrow(/density or a support/);
    expect(() => new SparseFineTuner({ fc: w }, { density: 2 })).toThrow(ArgumentError);
    expect(() => new SparseFineTuner({ fc: w }, { supports: { other: [1] } })).toThrow(/'other'/);
    expect(() => new SparseFineTuner({ fc: w }, { density: 0.5, regrow: { every: 2, fraction: 0.1, accumulate: 3 } })).toThrow(/accumulate/);
    expect(() => new SparseFineTuner({ v: tf.variable(tf.zeros([4])) }, { density: 0.5 })).toThrow(/float32 matrix/);
    expect(() => new SparseFineTuner({ fc: w }, { supports: { fc: [3, 3] } })).toThrow(/support of 'fc'.*strictly increasing/);
  });

  it('takes a support as a Mask of the weight (kept entries train) or as its flat indices', () => {
    const w = tf.variable(tf.zeros([3, 4]), false);
    const mask = maskFromPredicate([3, 4], (k) => k % 5 === 1);
    const byMask = new SparseFineTuner({ fc: w }, { supports: { fc: mask } });
    expect([...byMask.delta('fc').indices]).toEqual([1, 6, 11]);
    // one step on the dense gradient k + 1 moves exactly the kept entries of W + Δ
    byMask.step({ fc: Float32Array.from({ length: 12 }, (_, k) => k + 1) });
    const moved = Array.from(byMask.effectiveWeight('fc').dataSync(), (x) => (x !== 0 ? 1 : 0));
    expect(moved).toEqual([...maskToBooleans(mask)]);
    const byIndices = new SparseFineTuner({ fc: w }, { supports: { fc: [1, 6, 11] } });
    expect(byIndices.delta('fc').indices).toEqual(byMask.delta('fc').indices);
    expect(() => new SparseFineTuner({ fc: w }, { supports: { fc: maskFromPredicate([4, 3], () => true) } })).toThrow(ShapeError);
    expect(() => new SparseFineTuner({ fc: w }, { supports: { fc: { shape: [3, 4], bits: new Uint32Array(2) } } })).toThrow(/supports\['fc'\]/);
    byMask.dispose();
    byIndices.dispose();
  });

  it('handles an empty support (density 0): W + Δ is W', () => {
    const w = tf.variable(tf.ones([3, 4]), false);
    const sft = new SparseFineTuner({ fc: w }, { density: 0 });
    expect(sft.trainableCount()).toBe(0);
    sft.step({ fc: new Float32Array(12).fill(1) });
    expect(sft.effectiveWeight('fc').dataSync()).toEqual(new Float32Array(12).fill(1));
    sft.dispose();
  });
});

describe('DiffPruning', () => {
  it('samples the hard-concrete gate from its seeded stream, deterministic at test time', () => {
    const w = tf.variable(tf.zeros([3, 5]), false);
    const dp = new DiffPruning({ fc: w }, { seed: 7, initLogAlpha: 0.3 });
    const la = new Float32Array(15).fill(0.3);
    const u = hardConcreteUniforms(15, new Random(7).fork('fc'));
    const p = hardConcreteParams();
    const z = dp.gate('fc').dataSync();
    z.forEach((x, k) => expect(x).toBeCloseTo(hardConcreteFromUniform(la[k]!, u[k]!, p), 5));
    dp.training = false;
    dp.gate('fc').dataSync().forEach((x) => expect(x).toBeCloseTo(Math.min(1, Math.max(0, (1 / (1 + Math.exp(-0.3))) * 1.2 - 0.1)), 6));
    dp.dispose();
  });

  it('penalty equals the closed-form expected L0, with the analytic gradient σ\'(log α − β log(−γ/ζ))', () => {
    const w = tf.variable(tf.zeros([2, 3]), false);
    const dp = new DiffPruning({ fc: w });
    const rng = new Random(1);
    const la = Float32Array.from({ length: 6 }, () => rng.uniform(-3, 3));
    dp.logAlpha.fc!.assign(tf.tensor2d(la, [2, 3]));
    expect(dp.penalty().dataSync()[0]).toBeCloseTo(expectedL0(la), 5);
    const { grads } = tf.variableGrads(() => dp.penalty(), [dp.logAlpha.fc!]);
    const shift = (2 / 3) * Math.log(0.1 / 1.1);
    grads[dp.logAlpha.fc!.name]!.dataSync().forEach((g, k) => {
      const s = 1 / (1 + Math.exp(-(la[k]! - shift)));
      expect(g).toBeCloseTo(s * (1 - s), 5);
    });
    dp.dispose();
  });

  it('learns a sparse diff: only the entries that need to change survive extraction', () => {
    const rng = new Random(4);
    const [out, inp, n] = [4, 6, 48];
    const w0 = Float32Array.from({ length: out * inp }, () => rng.normal());
    const changed = [2, 9, 17];
    const target = Float32Array.from(w0);
    for (const k of changed) target[k] = target[k]! + 1.5;
    const x = tf.tensor2d(Float32Array.from({ length: n * inp }, () => rng.normal()), [n, inp]);
    const y = tf.matMul(x, tf.tensor2d(target, [out, inp]), false, true);
    const w = tf.variable(tf.tensor2d(w0, [out, inp]), false);
    const dp = new DiffPruning({ fc: w }, { seed: 2, initLogAlpha: 2 });
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 400; s++) {
      opt.minimize(() => tf.add(tf.mean(tf.square(tf.sub(tf.matMul(x, dp.effectiveWeight('fc'), false, true), y))), tf.mul(0.02, dp.penalty())) as tf.Scalar, false, dp.trainableVariables());
    }
    const { fc } = dp.extract();
    expect([...fc!.indices]).toEqual(changed);
    fc!.values.forEach((v) => expect(v).toBeCloseTo(1.5, 1));
    dp.dispose();
  });
});
