import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { equals, isKept, maskFromTensor } from '@sparse/masks';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import { mosaModuleDelta, mosaModules, mosaPartition, mosaVariant } from './variant.js';
import type { MoSAConfig } from './config.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { mosaForm } from './tfjs.js';
import { describeVariantContract, expectClose, perturb, prune24, randn, refMatmulT } from '../helpers/sparse-testing.js';

type Cfg = { r: number; alpha: number; rslora: boolean; modules: number };

/** scaling · B A by plain loops, with optional per-entry multipliers on A and B (module selection). */
function refLowRank(s: AdapterState, ma?: (q: number) => number, mb?: (q: number) => number): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as Cfg;
  const scale = c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
  const a = s.params.lora_A!.data;
  const b = s.params.lora_B!.data;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let v = 0;
    for (let t = 0; t < c.r; t++) v += b[i * c.r + t]! * (mb ? mb(i * c.r + t) : 1) * a[t * inp + j]! * (ma ? ma(t * inp + j) : 1);
    d[i * inp + j] = scale * v;
  }
  return d;
}

// With one module the training forward is the complete adapter, so the shared contract applies as is.
describeVariantContract({
  name: 'mosa',
  label: 'one module',
  config: { r: 2, alpha: 4, modules: 1 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp),
  referenceDelta: (s, base) => refLowRank(s).map((v, k) => (base.data[k] === 0 ? 0 : v)),
  densifiedDelta: (s) => refLowRank(s),
  densifyChangesMask: true,
  badConfigs: [[{ modules: 0 }, /modules/], [{ modules: 1.5 }, /modules/], [{ r: 0 }, /r/], [{ rank: 2 }, /rank/]],
});

describe('mosa with K modules', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('mosaPartition is a partition: every entry in exactly one of k modules, sizes within one, reproducible from the seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1000 }), (n, k, seed) => {
        fc.pre(n >= k);
        const ids = mosaPartition(n, k, new Random(seed));
        expect(ids.length).toBe(n);
        const sizes = new Array<number>(k).fill(0);
        for (const m of ids) {
          expect(Number.isInteger(m) && m >= 0 && m < k).toBe(true);
          sizes[m]!++;
        }
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
        expect(Math.min(...sizes)).toBe(Math.floor(n / k));
        expect(Math.max(...sizes)).toBe(Math.ceil(n / k));
        expect(mosaPartition(n, k, new Random(seed))).toEqual(ids);
      }),
      { numRuns: 200 },
    );
    expect(() => mosaPartition(3, 4, new Random(0))).toThrow(/3 entries cannot fill 4 non-empty modules/);
    expect(() => mosaVariant.init(randn(new Random(0), [2, 4]), { r: 1, modules: 3 }, new Random(0))).toThrow(/modules 3 exceeds the 2 entries of the smaller factor/);
  });

  it('a fresh adapter leaves the forward unchanged, and so does every training-time module pair', () => {
    const rng = new Random(1);
    const base = randn(rng, [8, 12]);
    const x = randn(rng, [3, 12]);
    const s = mosaVariant.init(base, { r: 4, modules: 4 }, rng);
    expectClose(mosaVariant.forward(x, base, s).data, refMatmulT(x, base), 1e-6);
    expect(mosaVariant.merge(base, s).data).toEqual(base.data);
    for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) expect(mosaModuleDelta(s, base, { a, b }).data.every((v) => v === 0)).toBe(true);
  });

  it('the training-time update of modules (a, b) is K²·(B ⊙ P_b)(A ⊙ P_a) through the mask; its mean over all pairs is the merged update (1e-5)', () => {
    const rng = new Random(2);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const k = 3;
    const s = perturb(mosaVariant.init(base, { r: 4, alpha: 6, modules: k }, rng), rng) as IndexedAdapterState<MoSAConfig>;
    const x = randn(rng, [5, 16]);
    const mean = new Float64Array(8 * 16);
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < k; b++) {
        const d = mosaModuleDelta(s, base, { a, b });
        const ref = refLowRank(s, (q) => (s.indices.module_A![q] === a ? k : 0), (q) => (s.indices.module_B![q] === b ? k : 0));
        expectClose(d.data, ref.map((v, q) => (base.data[q] === 0 ? 0 : v)), 1e-5);
        d.data.forEach((v, q) => (mean[q] += v / (k * k)));
      }
    }
    expectClose(mean, mosaVariant.delta(s, base).data, 1e-5);
    // merged forward == unmerged forward with all modules
    const merged = mosaVariant.merge(base, s);
    expectClose(mosaVariant.forward(x, base, s).data, refMatmulT(x, merged), 1e-5);
    const viaMean = refMatmulT(x, tensor(Float32Array.from(mean, (v, q) => v + base.data[q]!), [8, 16]));
    expectClose(refMatmulT(x, merged), viaMean, 1e-5);
    expect(equals(maskFromTensor(merged), maskFromTensor(base))).toBe(true);
    expect(mosaVariant.trainableCount([8, 16], { r: 4, modules: k })).toBe(4 * (8 + 16));
  });

  it("the tfjs form trains on the drawn modules (equal to the core's module update) and is the complete adapter outside training", () => {
    const rng = new Random(3);
    const base = randn(rng, [8, 12]);
    prune24(base);
    const s = perturb(mosaVariant.init(base, { r: 2, modules: 4 }, rng), rng) as IndexedAdapterState<MoSAConfig>;
    const vars = { lora_A: tf.variable(tf.tensor(s.params.lora_A!.data, [2, 12])), lora_B: tf.variable(tf.tensor(s.params.lora_B!.data, [8, 2])) };
    const m = tf.tensor(Float32Array.from(base.data, (v) => (v === 0 ? 0 : 1)), [8, 12]);
    const ctx = { base: tf.tensor(base.data, [8, 12]), vars, state: s, mask: m };
    for (let call = 0; call < 3; call++) {
      const got = mosaForm.effectiveWeight({ ...ctx, training: true }).dataSync();
      const want = mosaModuleDelta(s, base, mosaModules(s, call)).data.map((v, q) => v + base.data[q]!);
      expectClose(got, want, 1e-5);
    }
    expectClose(mosaForm.effectiveWeight({ ...ctx, training: false }).dataSync(), mosaVariant.delta(s, base).data.map((v, q) => v + base.data[q]!), 1e-5);
    // draws are reproducible, and over many calls every module of each factor comes up
    const seen = new Set<string>();
    for (let call = 0; call < 200; call++) {
      const d = mosaModules(s, call);
      expect(mosaModules(s, call)).toEqual(d);
      seen.add(`a${d.a}`).add(`b${d.b}`);
    }
    expect(seen.size).toBe(8);
    for (const v of Object.values(vars)) v.dispose();
  });

  it('a training step moves only the active module of each factor', () => {
    const rng = new Random(4);
    const w0 = randn(rng, [8, 12]);
    const weights = { 'layers.0.fc': tf.variable(tf.tensor(w0.data, [8, 12]), false) };
    const model = attachAdapters(weights, { targets: ['fc'], variant: 'mosa', config: { r: 2, modules: 3 }, seed: 5 });
    // B from 0 would give A no gradient on the first step; start both factors nonzero.
    model.setAdapterParams('default', 'layers.0.fc', { lora_A: Float32Array.from({ length: 24 }, () => rng.normal()), lora_B: Float32Array.from({ length: 16 }, () => rng.normal()) });
    const s = model.adapterStates()['layers.0.fc'] as IndexedAdapterState<MoSAConfig>;
    const x = tf.tensor(randn(rng, [16, 12]).data, [16, 12]);
    const y = tf.tensor(randn(rng, [16, 8]).data, [16, 8]);
    const opt = tf.train.sgd(0.01);
    for (let step = 0; step < 3; step++) {
      const before = model.adapterStates()['layers.0.fc']!.params;
      opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true)) as tf.Scalar, false, model.trainableVariables());
      const after = model.adapterStates()['layers.0.fc']!.params;
      const { a, b } = mosaModules(s, step);
      for (const [p, ids, m] of [['lora_A', s.indices.module_A!, a], ['lora_B', s.indices.module_B!, b]] as const) {
        ids.forEach((id, q) => {
          const moved = after[p]!.data[q] !== before[p]!.data[q];
          expect(moved, `${p}[${q}] in module ${id}, active ${m}, step ${step}`).toBe(id === m);
        });
      }
    }
  });

  it('trains on a 2:4 base; the merged adapter keeps the mask and its loss equals the inference loss and is no worse than the mean training-time loss', () => {
    const rng = new Random(6);
    const shape: [number, number] = [16, 32];
    const w0 = randn(rng, shape);
    const mask = prune24(w0);
    const n = 64;
    const u = randn(rng, [16, 2]);
    const v = randn(rng, [2, 32]);
    const wt = w0.data.map((w, q) => {
      const [i, j] = [Math.floor(q / 32), q % 32];
      return isKept(mask, q) ? w + 0.3 * (u.data[i * 2]! * v.data[j]! + u.data[i * 2 + 1]! * v.data[32 + j]!) : 0;
    });
    const xs = randn(rng, [n, 32]);
    const x = tf.tensor(xs.data, [n, 32]);
    const y = tf.matMul(x, tf.tensor(wt, shape), false, true);
    const weights = { 'layers.0.fc': tf.variable(tf.tensor(w0.data, shape), false) };
    const k = 4;
    const model = attachAdapters(weights, { targets: ['fc'], variant: 'mosa', config: { r: 4, alpha: 4, modules: k }, seed: 7 });
    const mse = (w: tf.Tensor) => tf.tidy(() => tf.losses.meanSquaredError(y, tf.matMul(x, w, false, true)).dataSync()[0]!);
    const evalLoss = () => {
      model.training = false;
      const l = mse(model.effectiveWeight('layers.0.fc'));
      model.training = true;
      return l;
    };
    const first = evalLoss();
    const opt = tf.train.adam(0.02);
    for (let step = 0; step < 150; step++) opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true)) as tf.Scalar, false, model.trainableVariables());
    const inference = evalLoss();
    // One module pair of K² per step is a strong dropout-like regularizer: the fit is partial, not exact.
    expect(inference).toBeLessThan(0.75 * first);
    // The training-time loss, exactly: the mean over the K² equally likely module pairs.
    const s = model.adapterStates()['layers.0.fc']!;
    let trainTime = 0;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
      const d = mosaModuleDelta(s, w0, { a, b });
      trainTime += mse(tf.tensor(d.data.map((dv, q) => dv + w0.data[q]!), shape)) / (k * k);
    }
    model.merge();
    const merged = weights['layers.0.fc'].dataSync() as Float32Array;
    expect(equals(maskFromTensor(tensor(Float32Array.from(merged), shape)), mask)).toBe(true);
    const mergedLoss = mse(weights['layers.0.fc']);
    expect(Math.abs(mergedLoss - inference)).toBeLessThan(1e-5 * Math.max(1, inference));
    expect(mergedLoss).toBeLessThanOrEqual(trainTime * (1 + 1e-4));
    model.unmerge();
    expectClose(weights['layers.0.fc'].dataSync() as Float32Array, w0.data, 1e-5);
  });

  it('rejects states whose selections do not fit, naming the field', () => {
    const base = randn(new Random(8), [4, 8]);
    const s = mosaVariant.init(base, { r: 2, modules: 2 }, new Random(0)) as IndexedAdapterState<MoSAConfig>;
    const bad = (indices: Record<string, Int32Array>) => ({ ...s, indices: { ...s.indices, ...indices } }) as AdapterState<MoSAConfig>;
    expect(() => mosaVariant.delta(bad({ module_A: new Int32Array(3) }), base)).toThrow(/indices\.module_A must be an Int32Array of 16 module ids/);
    expect(() => mosaVariant.merge(base, bad({ module_B: Int32Array.from({ length: 8 }, (_, q) => (q === 5 ? 2 : 0)) }))).toThrow(/indices\.module_B\[5\] = 2 is not a module id in \[0, 2\)/);
    expect(() => mosaModules(s, -1)).toThrow(/call must be a non-negative integer/);
    expect(() => mosaModuleDelta(s, base, { a: 0, b: 2 })).toThrow(/modules\.b must be an integer in \[0, 2\)/);
    expect(() => mosaVariant.forward(randn(new Random(1), [2, 7]), base, s)).toThrow(/x is \[2, 7\]/);
  });
});

