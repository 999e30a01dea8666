import { Random, ShapeError, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import { getVariant } from '../registry.js';
import { ssfVariant } from './variant.js';
import { describeFamilyVariant, maxAbsDiff, randn, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'ssf',
  config: {},
  closedForm: ([out]) => 2 * out,
  referenceDelta: (s, base) => values(base).map((w, k) => (s.params.ssf_scale!.data[Math.floor(k / 16)]! - 1) * w),
  badConfigs: [
    [{ shift: true }, /shift/],
    [5, /\(config\)/],
  ],
  deltaFollowsBase: true,
  perturbMean: { ssf_scale: 1 },
});

describe('ssf specifics', () => {
  it('a negative scale keeps pruned zeros as +0; a zero scale cannot be unmerged', () => {
    const base = randn(new Random(1), [3, 4]);
    base.data[1] = 0;
    const s = ssfVariant.init(base, {}, new Random(1));
    s.params.ssf_scale!.data.set([-1, 2, 0.5]);
    const m = ssfVariant.merge(base, s);
    expect(Object.is(m.data[1], 0)).toBe(true);
    expect(m.data[0]).toBe(-base.data[0]!);
    expect(m.data[4]).toBeCloseTo(2 * base.data[4]!, 6);
    s.params.ssf_scale!.data[2] = 0;
    expect(() => ssfVariant.unmerge(m, s)).toThrow(/ssf.unmerge: scale γ is 0 at row 2/);
  });
});

/** Plain-loop x Wᵀ + b (float64). */
function refLinear(x: Float32Tensor, w: Float32Tensor, b: ArrayLike<number>): Float64Array {
  const [n, k] = x.shape as [number, number];
  const out = w.shape[0]!;
  const y = new Float64Array(n * out);
  for (let i = 0; i < n; i++) for (let o = 0; o < out; o++) {
    let acc = b[o]!;
    for (let j = 0; j < k; j++) acc += x.data[i * k + j]! * w.data[o * k + j]!;
    y[i * out + o] = acc;
  }
  return y;
}

/** A [out, in] base with half its entries pruned (every other one in row-major order). */
function sparseBase(rng: Random, out: number, inp: number): Float32Tensor {
  const w = randn(rng, [out, inp]);
  for (let k = 0; k < w.data.length; k += 2) w.data[k] = 0;
  return w;
}

describe('ssf bias path (core)', () => {
  const rng = new Random(7);
  const base = sparseBase(rng, 5, 6);
  const bias = randn(rng, [5]);
  const x = randn(rng, [3, 6]);

  it('a fresh adapter is the identity on the weight and the bias', () => {
    const s = ssfVariant.init(base, {}, new Random(1));
    expect(Array.from(s.params.ssf_shift!.data)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(ssfVariant.mergeBias!(bias, s).data)).toEqual(Array.from(bias.data));
    expect(Array.from(ssfVariant.mergeBias!(undefined, s).data)).toEqual([0, 0, 0, 0, 0]);
    expect(maxAbsDiff(ssfVariant.forward(x, base, s, bias).data, refLinear(x, base, bias.data))).toBeLessThan(1e-5);
  });

  it('the forward with a bias equals the merged weight and merged bias; unmerge restores W and b', () => {
    const s = ssfVariant.init(base, {}, new Random(1));
    s.params.ssf_scale!.data.set([0.5, -1.5, 2, 1.25, 0.75]);
    s.params.ssf_shift!.data.set([0.3, -0.2, 1, 0, -0.7]);
    const mb = ssfVariant.mergeBias!(bias, s);
    const refB = Array.from(bias.data, (b, i) => s.params.ssf_scale!.data[i]! * b + s.params.ssf_shift!.data[i]!);
    expect(maxAbsDiff(mb.data, refB)).toBeLessThan(1e-6);
    const mw = ssfVariant.merge(base, s);
    expect(maxAbsDiff(ssfVariant.forward(x, base, s, bias).data, refLinear(x, mw, mb.data))).toBeLessThan(1e-5);
    // Without a bias argument the forward stays the weight part only.
    expect(maxAbsDiff(ssfVariant.forward(x, base, s).data, refLinear(x, mw, new Float32Array(5)))).toBeLessThan(1e-5);
    expect(maxAbsDiff(ssfVariant.unmerge(mw, s).data, base.data)).toBeLessThan(1e-6);
    expect(maxAbsDiff(ssfVariant.unmergeBias!(mb, s).data, bias.data)).toBeLessThan(1e-6);
    // The 50% mask survives the merge bit-exactly.
    for (let k = 0; k < base.data.length; k++) expect(mw.data[k] === 0).toBe(base.data[k] === 0);
  });

  it('a zero scale cannot unmerge the bias; a bias of the wrong shape is named', () => {
    const s = ssfVariant.init(base, {}, new Random(1));
    s.params.ssf_scale!.data[3] = 0;
    expect(() => ssfVariant.unmergeBias!(bias, s)).toThrow(/ssf.unmergeBias: scale γ is 0 at row 3/);
    expect(() => ssfVariant.mergeBias!(randn(rng, [4]), s)).toThrow(ShapeError);
    expect(() => ssfVariant.mergeBias!(randn(rng, [4]), s)).toThrow(/ssf.mergeBias: bias must have shape \[5\]/);
    expect(() => ssfVariant.forward(x, base, s, randn(rng, [6]))).toThrow(/ssf.forward: bias must have shape \[5\]/);
  });

  it('the other variants have no bias path', () => {
    expect(getVariant('lora').mergeBias).toBeUndefined();
    expect(getVariant('lora').unmergeBias).toBeUndefined();
  });
});

describe('ssf bias path through AdapterModel (tfjs)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const out = 4;
  const inp = 8;
  const setup = (withBias: boolean) => {
    const rng = new Random(11);
    const w0 = sparseBase(rng, out, inp);
    const b0 = randn(rng, [out]);
    const weights = { 'fc.weight': tf.variable(tf.tensor(w0.data, w0.shape)), 'head.weight': tf.variable(tf.tensor(randn(rng, [3, out]).data, [3, out])) };
    const biases = withBias ? { 'fc.weight': tf.variable(tf.tensor(b0.data, [out])) } : undefined;
    const model = attachAdapters(weights, { targets: ['fc.weight', 'head.weight'], variant: 'ssf', biases });
    return { rng, w0, b0, model };
  };

  it('starts as the identity; a layer without a bias gets the shift alone; counts are 2·out', () => {
    const { w0, b0, model } = setup(true);
    expect(Array.from(model.effectiveWeight('fc.weight').dataSync())).toEqual(Array.from(w0.data));
    expect(Array.from(model.effectiveBias('fc.weight')!.dataSync())).toEqual(Array.from(b0.data));
    expect(Array.from(model.effectiveBias('head.weight')!.dataSync())).toEqual([0, 0, 0]);
    expect(model.trainableReport().layers).toEqual([
      { name: 'fc.weight', trainable: 2 * out },
      { name: 'head.weight', trainable: 6 },
    ]);
    expect(() => model.effectiveBias('nope')).toThrow(/effectiveBias: no weight named 'nope'/);
  });

  it('a variant without a bias form passes the layer bias through (null when none)', () => {
    const rng = new Random(3);
    const b = tf.variable(tf.tensor(randn(rng, [out]).data, [out]));
    const model = attachAdapters(
      { a: tf.variable(tf.tensor(randn(rng, [out, inp]).data, [out, inp])), c: tf.variable(tf.tensor(randn(rng, [out, inp]).data, [out, inp])) },
      { targets: ['a', 'c'], variant: 'lora', config: { r: 2 }, biases: { a: b } },
    );
    expect(model.effectiveBias('a')).toBe(b);
    expect(model.effectiveBias('c')).toBeNull();
  });

  it('refuses biases of the wrong shape or for unknown weights, naming them', () => {
    const w = { fc: tf.variable(tf.zeros([out, inp])) };
    expect(() => attachAdapters(w, { targets: 'fc', variant: 'ssf', biases: { fc: tf.variable(tf.zeros([inp])) } })).toThrow(/bias 'fc' must be a float32 vector \[4\]/);
    expect(() => attachAdapters(w, { targets: 'fc', variant: 'ssf', biases: { gc: tf.variable(tf.zeros([out])) } })).toThrow(/bias 'gc' has no weight/);
  });

  it('Adam fits a constant output offset through the shift; merge writes W and b, keeps the mask, unmerge restores them', () => {
    const { rng, w0, b0, model } = setup(true);
    const xs = tf.tensor(randn(rng, [32, inp]).data, [32, inp]);
    const offset = tf.tensor([1.5, -2, 0.75, 3], [1, out]);
    const target = tf.tidy(() => tf.add(tf.add(tf.matMul(xs, tf.tensor(w0.data, w0.shape), false, true), tf.tensor(b0.data, [1, out])), offset));
    const forward = () => tf.add(tf.matMul(xs, model.effectiveWeight('fc.weight'), false, true), tf.expandDims(model.effectiveBias('fc.weight')!, 0));
    const loss = () => tf.mean(tf.square(tf.sub(forward(), target))) as tf.Scalar;
    const l0 = loss().dataSync()[0]!;
    const opt = tf.train.adam(0.1);
    for (let i = 0; i < 60; i++) tf.tidy(() => {
      opt.minimize(loss, false, model.trainableVariables());
    });
    const l1 = loss().dataSync()[0]!;
    expect(l0).toBeGreaterThan(1);
    expect(l1).toBeLessThan(0.1 * l0);

    const before = forward().dataSync();
    model.merge();
    const mw = model.weights['fc.weight']!.dataSync();
    for (let k = 0; k < mw.length; k++) expect(mw[k] === 0).toBe(w0.data[k] === 0);
    // Merged: the weights and bias variables now carry the adapter.
    const merged = tf.add(tf.matMul(xs, model.weights['fc.weight']!, false, true), tf.expandDims(model.biases['fc.weight']!, 0)).dataSync();
    expect(maxAbsDiff(merged, before)).toBeLessThan(1e-5);
    expect(maxAbsDiff(forward().dataSync(), before)).toBeLessThan(1e-5);
    model.unmerge();
    expect(maxAbsDiff(model.weights['fc.weight']!.dataSync(), w0.data)).toBeLessThan(1e-5);
    expect(maxAbsDiff(model.biases['fc.weight']!.dataSync(), b0.data)).toBeLessThan(1e-5);
  });

  it('refuses to merge a nonzero shift into a layer without a bias, writing nothing', () => {
    const { w0, model } = setup(true);
    const headBefore = model.weights['head.weight']!.dataSync().slice();
    // A zero shift on the bias-less layer merges fine.
    model.merge().unmerge();
    const states = model.adapterStates();
    model.setAdapterParams('default', 'head.weight', { ssf_scale: new Float32Array([2, 2, 2]), ssf_shift: new Float32Array([0, 0.5, 0]) });
    model.setAdapterParams('default', 'fc.weight', { ssf_scale: new Float32Array(out).fill(3), ssf_shift: states['fc.weight']!.params.ssf_shift!.data });
    expect(() => model.merge()).toThrow(/merge: layer 'head.weight' has no bias variable/);
    expect(model.mergedAdapter).toBeNull();
    expect(maxAbsDiff(model.weights['fc.weight']!.dataSync(), w0.data)).toBeLessThan(1e-6);
    expect(Array.from(model.weights['head.weight']!.dataSync())).toEqual(Array.from(headBefore));
  });
});
