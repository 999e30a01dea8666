// attachAdapters' `scores` option: a layer's support comes from its score matrix (checked here against
// brute-force top-k / top-block / row-then-column selections), layers without scores keep the data-free
// rule, and bad scores fail naming the layer.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random, ShapeError, tensor, type Float32Tensor } from '@sparse/tensor';
import { bruteTopK as topK } from '@sparse/tensor/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters, relocalizeLoSiA, setLoSiASubnet } from '../../tfjs.js';
import { getVariant } from '../registry.js';
import type { IndexedAdapterState, ScoredAdapterVariant } from './sparse.js';
import { prune24, randn } from './sparse-testing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const [OUT, INP] = [8, 16];


/** Two layers, 2:4-pruned; scores that favour small |W| so the scored and the |W| supports differ. */
function setup(seed: number) {
  const rng = new Random(seed);
  const w = { a: randn(rng, [OUT, INP]), b: randn(rng, [OUT, INP]) };
  prune24(w.a);
  prune24(w.b);
  const scores: Record<string, Float32Tensor> = {
    a: tensor(Float32Array.from(w.a.data, (v) => 1 / (1e-3 + Math.abs(v)) + rng.uniform(0, 1e-2)), [OUT, INP]),
    b: tensor(Float32Array.from(w.b.data, () => rng.uniform(0, 1)), [OUT, INP]),
  };
  const vars = () => ({ a: tf.variable(tf.tensor(w.a.data, w.a.shape), false), b: tf.variable(tf.tensor(w.b.data, w.b.shape), false) });
  return { w, scores, vars };
}

const indices = (model: ReturnType<typeof attachAdapters>, name: string) => (model.adapterStates()[name] as IndexedAdapterState).indices;

describe('attachAdapters with scores', () => {
  it('rosa: the support is the top-k of the scores among the base nonzeros (brute force), |W| where no scores are given', () => {
    const { w, scores, vars } = setup(1);
    const density = 0.25;
    const k = Math.round(density * OUT * INP);
    const model = attachAdapters(vars(), { targets: ['a', 'b'], variant: 'rosa', config: { r: 2, density }, scores: (n) => (n === 'a' ? scores.a : undefined) });
    const nonzero = (q: number) => w.a.data[q] !== 0;
    const expected = topK(scores.a.data, k, nonzero);
    expect(Array.from(indices(model, 'a').support!)).toEqual(expected);
    // the scores favour small |W|: the data-free support would be a different set
    expect(expected).not.toEqual(topK(Array.from(w.a.data, Math.abs), k, nonzero));
    // no scores for 'b': the data-free |W| rule
    expect(Array.from(indices(model, 'b').support!)).toEqual(topK(Array.from(w.b.data, Math.abs), k, (q) => w.b.data[q] !== 0));
  });

  it('smt: the blocks with the largest summed score (brute force over the block grid)', () => {
    const { scores, vars } = setup(2);
    const bs = 4;
    const model = attachAdapters(vars(), { targets: ['a'], variant: 'smt', config: { blockSize: bs, blocks: 3 }, scores: () => scores.a });
    const grid = INP / bs;
    const sums = new Float64Array((OUT / bs) * grid);
    for (let i = 0; i < OUT; i++) for (let j = 0; j < INP; j++) sums[Math.floor(i / bs) * grid + Math.floor(j / bs)]! += scores.a.data[i * INP + j]!;
    expect(Array.from(indices(model, 'a').blocks!)).toEqual(topK(sums, 3));
  });

  it('losia: rows by summed score, then columns by summed score within those rows (brute force)', () => {
    const { scores, vars } = setup(3);
    const model = attachAdapters(vars(), { targets: ['b'], variant: 'losia', config: { rows: 0.25, cols: 0.25 }, scores: () => scores.b });
    const s = scores.b.data;
    const rowSums = Array.from({ length: OUT }, (_, i) => Array.from({ length: INP }, (_, j) => s[i * INP + j]!).reduce((x, y) => x + y, 0));
    const rows = topK(rowSums, 2);
    const colSums = Array.from({ length: INP }, (_, j) => rows.reduce((x, i) => x + s[i * INP + j]!, 0));
    expect(Array.from(indices(model, 'b').rows!)).toEqual(rows);
    expect(Array.from(indices(model, 'b').cols!)).toEqual(topK(colSums, 4));
  });

  it.each([
    ['s2ft', { groupSize: 2, groups: 1 }],
    ['dsee', { r: 2, density: 0.1 }],
    ['sara', { density: 0.1 }],
    ['sparse-adapter', { r: 2 }],
  ])('%s: the same selection as the core initWithScores with the layer stream, for core and tf.Tensor scores', (variant, config) => {
    const { w, scores, vars } = setup(4);
    const expected = (getVariant(variant) as unknown as ScoredAdapterVariant<unknown>).initWithScores(w.a, config, new Random(7).fork('a'), scores.a).indices;
    const viaCore = attachAdapters(vars(), { targets: ['a'], variant, config, seed: 7, scores: () => scores.a });
    const viaTf = attachAdapters(vars(), { targets: ['a'], variant, config, seed: 7, scores: () => tf.tensor(scores.a.data, scores.a.shape) });
    for (const m of [viaCore, viaTf]) {
      const got = indices(m, 'a');
      expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
      for (const [key, v] of Object.entries(expected)) expect(Array.from(got[key]!), key).toEqual(Array.from(v));
    }
  });

  it('a scored rosa adapter trains and merges through the 2:4 mask', () => {
    const { w, scores, vars } = setup(5);
    const weights = vars();
    const model = attachAdapters(weights, { targets: ['a'], variant: 'rosa', config: { r: 1, density: 0.2 }, scores: () => scores.a });
    const rng = new Random(9);
    const x = tf.tensor(Float32Array.from({ length: 32 * INP }, () => rng.normal()), [32, INP]);
    const y = tf.tensor(Float32Array.from({ length: 32 * OUT }, () => rng.normal()), [32, OUT]);
    const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('a'), false, true)) as tf.Scalar;
    const first = loss().dataSync()[0]!;
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 20; s++) opt.minimize(loss, false, model.trainableVariables());
    expect(loss().dataSync()[0]!).toBeLessThan(first);
    model.merge();
    const merged = weights.a.dataSync();
    w.a.data.forEach((v, q) => {
      if (v === 0) expect(merged[q]).toBe(0);
    });
  });

  it('refuses scores of the wrong shape, naming the layer and both shapes', () => {
    const { scores, vars } = setup(6);
    const bad = tensor(new Float32Array(4 * 8), [4, 8]);
    const attach = () => attachAdapters(vars(), { targets: ['a', 'b'], variant: 'rosa', scores: (n) => (n === 'b' ? bad : scores.a) });
    expect(attach).toThrow(ShapeError);
    expect(attach).toThrow(/layer 'b': scores are \[4, 8\] but the weight is \[8, 16\]/);
    expect(() => attachAdapters(vars(), { targets: ['a'], variant: 'smt', config: { blockSize: 4 }, scores: () => tensor(new Float32Array(OUT * INP), [OUT * INP]) })).toThrow(
      /layer 'a': scores are \[128\] but the weight is \[8, 16\]/,
    );
  });

  it('refuses scores for variants that choose no support, naming the layer', () => {
    const { scores, vars } = setup(7);
    for (const variant of ['lora', 'roselora']) {
      const attach = () => attachAdapters(vars(), { targets: ['a'], variant, config: { r: 2 }, scores: () => scores.a });
      expect(attach).toThrow(ArgumentError);
      expect(attach).toThrow(/addAdapter: layer 'a': .*takes no scores/);
    }
  });
});

describe('LoSiA re-localization on an AdapterModel', () => {
  /** A losia adapter on the 2:4 layer 'a' with a trained (random) core. */
  function trained(seed: number, densify = false) {
    const { w, scores, vars } = setup(seed);
    const weights = vars();
    const model = attachAdapters(weights, { targets: ['a'], variant: 'losia', config: { rows: 0.25, cols: 0.25 }, densify });
    const rng = new Random(seed + 100);
    model.setAdapterParams('default', 'a', { losia_core: Float32Array.from({ length: 2 * 4 }, () => rng.normal()) });
    const st = model.adapterStates().a as IndexedAdapterState;
    // the dense ΔW of the core, by plain loops
    const delta = new Float64Array(OUT * INP);
    st.indices.rows!.forEach((i, p) => st.indices.cols!.forEach((j, q) => (delta[i * INP + j] = st.params.losia_core!.data[p * 4 + q]!)));
    return { w, scores, weights, model, delta };
  }

  it('folds the core into the weight through the base mask and starts a zero core on the subnet of the new scores', () => {
    const { w, scores, weights, model, delta } = trained(11);
    const core = model.trainableVariables()[0]!;
    expect(relocalizeLoSiA(model, (n) => (n === 'a' ? scores.b : undefined))).toEqual(['a']);
    const merged = weights.a.dataSync();
    w.a.data.forEach((v, q) => expect(merged[q]).toBeCloseTo(v === 0 ? 0 : v + delta[q]!, 5));
    // the new subnet: rows by summed score, then columns within them (brute force)
    const s = scores.b.data;
    const rows = topK(Array.from({ length: OUT }, (_, i) => s.slice(i * INP, (i + 1) * INP).reduce((x, y) => x + y, 0)), 2);
    const cols = topK(Array.from({ length: INP }, (_, j) => rows.reduce((x, i) => x + s[i * INP + j]!, 0)), 4);
    expect(Array.from(indices(model, 'a').rows!)).toEqual(rows);
    expect(Array.from(indices(model, 'a').cols!)).toEqual(cols);
    // same variable (an optimizer's list stays valid), now zero: the adapted weight is the merged one
    expect(model.trainableVariables()[0]).toBe(core);
    expect(Array.from(core.dataSync())).toEqual(new Array(8).fill(0));
    expect(Array.from(model.effectiveWeight('a').dataSync())).toEqual(Array.from(merged));
  });

  it('with densify the adapted function is unchanged', () => {
    const { scores, model, weights } = trained(12, true);
    const before = Float32Array.from(model.effectiveWeight('a').dataSync());
    relocalizeLoSiA(model, () => scores.a);
    const after = model.effectiveWeight('a').dataSync();
    before.forEach((v, q) => expect(after[q]).toBeCloseTo(v, 5));
    expect(Array.from(weights.a.dataSync())).toEqual(Array.from(after));
  });

  it('setSubnet restores a saved subnet and refuses bad ones; other variants and bad scores are refused', () => {
    const { model, vars, scores } = { ...trained(13), ...setup(13) };
    setLoSiASubnet(model, 'default', 'a', { rows: [1, 6], cols: [0, 3, 9, 15] });
    expect(Array.from(indices(model, 'a').rows!)).toEqual([1, 6]);
    expect(Array.from(indices(model, 'a').cols!)).toEqual([0, 3, 9, 15]);
    expect(() => setLoSiASubnet(model, 'default', 'a', { rows: [1], cols: [0, 3, 9, 15] })).toThrow(/setLoSiASubnet: a: rows has 1 entries, expected 2/);
    expect(() => setLoSiASubnet(model, 'default', 'a', { rows: [1, 8], cols: [0, 3, 9, 15] })).toThrow(/rows must be increasing integers in \[0, 8\), got 8/);
    expect(() => setLoSiASubnet(model, 'default', 'a', { rows: [1, 6], cols: [0, 9, 3, 15] })).toThrow(/cols must be increasing/);
    expect(() => setLoSiASubnet(model, 'default', 'b', { rows: [1, 6], cols: [0, 3, 9, 15] })).toThrow(/has no layer 'b'/);
    expect(() => relocalizeLoSiA(model, () => tensor(new Float32Array(16), [4, 4]))).toThrow(/relocalizeLoSiA: layer 'a': scores are \[4, 4\] but the weight is \[8, 16\]/);
    const rosa = attachAdapters(vars(), { targets: ['a'], variant: 'rosa' });
    expect(() => relocalizeLoSiA(rosa, () => scores.a)).toThrow(/relocalizeLoSiA: adapter 'default' is 'rosa', not losia/);
    model.merge();
    expect(() => relocalizeLoSiA(model, () => scores.a)).toThrow(/relocalizeLoSiA: adapter 'default' is merged/);
  });
});
