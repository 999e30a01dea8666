import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, isKept, maskFromTensor } from '@sparse/masks';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromPEFTFiles, toPEFTFiles } from '../../peft.js';
import { attachAdapters } from '../../tfjs.js';
import { maxAbsDiff, pruneHalf, randn, values } from '../helpers/family-testing.js';
import type { AdapterState } from '../types.js';
import { sppVariant } from './variant.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Dense brute force of W' = W + ΔW, ΔW_ij = W_ij u_i V_{g j}, g = ⌊i r / out⌋, by plain loops. */
function refMerged(state: AdapterState, w: ArrayLike<number>, rank: number): Float64Array {
  const [out, inp] = state.shape;
  const u = state.params.spp_row!.data;
  const v = state.params.spp_col!.data;
  const m = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) {
    const g = Math.floor((i * rank) / out);
    for (let j = 0; j < inp; j++) m[i * inp + j] = w[i * inp + j]! * (1 + u[i]! * v[g * inp + j]!);
  }
  return m;
}
/** y = x W'ᵀ by plain loops. */
function refForward(x: ArrayLike<number>, w: Float64Array, n: number, out: number, inp: number): Float64Array {
  const y = new Float64Array(n * out);
  for (let a = 0; a < n; a++) for (let i = 0; i < out; i++) {
    let s = 0;
    for (let j = 0; j < inp; j++) s += x[a * inp + j]! * w[i * inp + j]!;
    y[a * out + i] = s;
  }
  return y;
}
function perturb<C>(state: AdapterState<C>, rng: Random): AdapterState<C> {
  for (const p of Object.values(state.params)) for (let k = 0; k < p.data.length; k++) p.data[k] = rng.normal(0, 0.5);
  return state;
}

describe('spp config', () => {
  it('defaults to rank 1 and validates rank', () => {
    expect(sppVariant.parseConfig(undefined)).toEqual({ colInit: 1, rank: 1 });
    expect(() => sppVariant.parseConfig({ rank: 0 })).toThrow(/spp: invalid config: rank/);
    expect(() => sppVariant.parseConfig({ rank: 1.5 })).toThrow(/rank/);
    expect(() => sppVariant.init(randn(new Random(0), [6, 4]), { rank: 4 }, new Random(0))).toThrow(/rank 4 must divide the 6 output rows/);
  });
});

describe.each([1, 2, 4])('spp rank %i', (rank) => {
  const [out, inp] = [8, 12];

  it('stores u [out] and V [rank, in] (V as [in] at rank 1); ΔW = 0 at init', () => {
    const rng = new Random(1);
    const base = randn(rng, [out, inp]);
    const s = sppVariant.init(base, { rank, colInit: 0.5 }, rng);
    expect(s.params.spp_row!.shape).toEqual([out]);
    expect(s.params.spp_col!.shape).toEqual(rank === 1 ? [inp] : [rank, inp]);
    expect(Array.from(s.params.spp_col!.data).every((c) => c === 0.5)).toBe(true);
    expect(Array.from(sppVariant.delta(s, base).data).every((d) => d === 0)).toBe(true);
    expect(sppVariant.merge(base, s).data).toEqual(base.data);
    const x = randn(rng, [3, inp]);
    expect(maxAbsDiff(values(sppVariant.forward(x, base, s)), refForward(x.data, values(base), 3, out, inp))).toBeLessThan(1e-5);
    expect(sppVariant.trainableCount([out, inp], { rank })).toBe(out + rank * inp);
    expect(Object.values(s.params).reduce((a, p) => a + p.data.length, 0)).toBe(out + rank * inp);
  });

  it('forward, delta and merge equal the dense brute force; unmerge restores the base', () => {
    const rng = new Random(2);
    const base = randn(rng, [out, inp]);
    const s = perturb(sppVariant.init(base, { rank }, rng), rng);
    const ref = refMerged(s, base.data, rank);
    expect(maxAbsDiff(values(sppVariant.merge(base, s)), ref)).toBeLessThan(1e-5);
    const d = values(sppVariant.delta(s, base));
    expect(maxAbsDiff(d, ref.map((m, k) => m - base.data[k]!))).toBeLessThan(1e-5);
    const x = randn(rng, [5, inp]);
    const y = values(sppVariant.forward(x, base, s));
    expect(maxAbsDiff(y, refForward(x.data, ref, 5, out, inp))).toBeLessThan(1e-4);
    const back = sppVariant.unmerge(sppVariant.merge(base, s), s);
    expect(maxAbsDiff(values(back), values(base))).toBeLessThan(1e-5);
    if (rank > 1) {
      // the groups differ: a rank-1 reading of the same tensors (group 0's V for every row) gives another W'
      const flat = refMerged({ ...s, params: { ...s.params, spp_col: tensor(s.params.spp_col!.data.slice(0, inp), [inp]) } }, base.data, 1);
      expect(maxAbsDiff(flat, ref)).toBeGreaterThan(1e-3);
    }
  });

  it('merging into a 50% sparse base keeps the mask bit for bit', () => {
    const rng = new Random(3);
    const base = randn(rng, [out, inp]);
    const mask = pruneHalf(base, rng);
    const s = perturb(sppVariant.init(base, { rank }, rng), rng);
    for (const merged of [sppVariant.merge(base, s), sppVariant.merge(base, s, { mask }), sppVariant.merge(base, s, { densify: true })]) {
      expect(equals(maskFromTensor(merged), mask)).toBe(true);
      for (let k = 0; k < merged.data.length; k++) if (!isKept(mask, k)) expect(Object.is(merged.data[k], 0)).toBe(true);
      expect(merged.data.some((w, k) => isKept(mask, k) && w !== base.data[k])).toBe(true);
    }
  });

  it('round-trips through the PEFT files', () => {
    const rng = new Random(4);
    const base = randn(rng, [out, inp]);
    const s = perturb(sppVariant.init(base, { rank, colInit: 0.5 }, rng), rng);
    const files = toPEFTFiles({ 'h.0.fc': s });
    expect(files.config.spp_rank).toBe(rank === 1 ? undefined : rank);
    const back = fromPEFTFiles(JSON.parse(JSON.stringify(files.config)), { tensorNames: Object.keys(files.tensors), tensor: (n) => files.tensors[n]! });
    const m = back.modules['h.0.fc']!;
    expect(m.config).toEqual({ colInit: 0.5, rank });
    expect(m.shape).toEqual([out, inp]);
    expect(Array.from(sppVariant.merge(base, m as typeof s).data)).toEqual(Array.from(sppVariant.merge(base, s).data));
  });

  it('tfjs: zero at start, trains, and the merge equals the trained forward with the 2:4 mask kept bit for bit', () => {
    const rng = new Random(5);
    const w = Float32Array.from({ length: out * inp }, () => rng.normal(0, 0.5));
    for (let g = 0; g < w.length; g += 4) {
      const order = [0, 1, 2, 3].sort((a, b) => Math.abs(w[g + b]!) - Math.abs(w[g + a]!));
      w[g + order[2]!] = 0;
      w[g + order[3]!] = 0;
    }
    const baseMask = maskFromTensor(tensor(Float32Array.from(w), [out, inp]));
    const weights = { fc: tf.variable(tf.tensor2d(w, [out, inp]), false) };
    const model = attachAdapters(weights, { targets: ['fc'], variant: 'spp', config: { rank }, seed: 3 });
    const x = tf.tensor2d(Float32Array.from({ length: 6 * inp }, () => rng.normal()), [6, inp]);
    const target = tf.tensor2d(Float32Array.from({ length: 6 * out }, () => rng.normal()), [6, out]);
    const fwd = () => tf.matMul(x, model.effectiveWeight('fc'), false, true);
    expect(maxAbsDiff(fwd().dataSync() as Float32Array, refForward(x.dataSync() as Float32Array, Float64Array.from(w), 6, out, inp))).toBeLessThan(1e-5);
    expect(model.trainableReport().trainable).toBe(out + rank * inp);
    const opt = tf.train.adam(0.05);
    model.training = true;
    for (let t = 0; t < 5; t++) opt.minimize(() => tf.losses.meanSquaredError(target, fwd()) as tf.Scalar, false, model.trainableVariables());
    model.training = false;
    const trained = Float32Array.from(fwd().dataSync() as Float32Array);
    // the tfjs form computes the variant's W' (brute force from the trained tensors)
    const state = model.adapterStates().fc!;
    expect(maxAbsDiff(model.effectiveWeight('fc').dataSync() as Float32Array, refMerged(state, w, rank))).toBeLessThan(1e-5);
    model.mergeAndUnload();
    const merged = weights.fc.dataSync() as Float32Array;
    expect(maxAbsDiff(tf.matMul(x, weights.fc, false, true).dataSync() as Float32Array, trained)).toBeLessThan(1e-5);
    expect(maxAbsDiff(merged, w)).toBeGreaterThan(1e-4);
    expect(equals(maskFromTensor(tensor(Float32Array.from(merged), [out, inp])), baseMask)).toBe(true);
    for (let k = 0; k < w.length; k++) if (w[k] === 0) expect(Object.is(merged[k], 0)).toBe(true);
    expect(count(baseMask)).toBe((out * inp) / 2);
    opt.dispose();
  });
});
