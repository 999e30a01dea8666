// The checks every LoRA-family variant must pass, written once: each method's test calls
// `describeFamilyVariant` with its variant, a config, an independent (plain-loop) reference for ΔW and
// the closed-form trainable count.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, isKept, maskFromPredicate, maskFromTensor, type Mask } from '@sparse/masks';
import { ArgumentError, Random, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { getTfForm } from '../../tfjs-forms/index.js';
import { attachAdapters } from '../../tfjs.js';
import { getVariant } from '../registry.js';
import type { AdapterState, AdapterVariant } from '../types.js';

/** Row-major float64 reading of a float32 tensor's values. */
export function values(t: Float32Tensor): Float64Array {
  const [m, n] = t.shape.length === 2 ? (t.shape as [number, number]) : [1, t.shape[0]!];
  const out = new Float64Array(m * n);
  const [s0, s1] = t.shape.length === 2 ? (t.stride as [number, number]) : [0, t.stride[0]!];
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = t.data[t.offset + i * s0 + j * s1]!;
  return out;
}

/** a [m, k] times b [k, n], plain float64 loops (the independent reference). */
export function refMatmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const aip = a[i * k + p]!;
    if (aip === 0) continue;
    for (let j = 0; j < n; j++) out[i * n + j]! += aip * b[p * n + j]!;
  }
  return out;
}

/** aᵀ of a row-major [m, n] array. */
export function refTranspose(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j]!;
  return out;
}

export function randn(rng: Random, shape: number[], std = 1): Float32Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.normal(0, std)), shape);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let k = 0; k < a.length; k++) d = Math.max(d, Math.abs(a[k]! - b[k]!));
  return d;
}
function maxAbs(a: ArrayLike<number>): number {
  let d = 0;
  for (let k = 0; k < a.length; k++) d = Math.max(d, Math.abs(a[k]!));
  return d;
}

/** Zeroes a random half of w's entries; returns the mask of the kept ones. */
export function pruneHalf(w: Float32Tensor, rng: Random): Mask {
  const order = rng.permutation(w.data.length);
  const drop = new Set(Array.from(order.subarray(0, w.data.length / 2)));
  for (const k of drop) w.data[k] = 0;
  return maskFromPredicate(w.shape, (k) => !drop.has(k));
}

export interface FamilyCase {
  /** Registered name of the variant. */
  name: string;
  config: Record<string, unknown>;
  shape?: [number, number];
  /** The trainable count for `shape` in closed form, written out in the test. */
  closedForm: (shape: [number, number]) => number;
  /** ΔW [out, in] from the state's params by plain loops, independent of the variant's code. */
  referenceDelta: (state: AdapterState, base: Float32Tensor) => Float64Array;
  /** Configs parseConfig must refuse, each with a pattern the error must match (the field name). */
  badConfigs: [unknown, RegExp][];
  /** ΔW vanishes wherever W does, so a densified merge equals the masked one. */
  deltaFollowsBase?: boolean;
  /** Makes the base (default: N(0, 1) entries). */
  makeBase?: (rng: Random, shape: [number, number]) => Float32Tensor;
  /** Std of the random values given to the trainable params (default 0.3). */
  perturbStd?: number;
  /** Mean of those values per param name (default 0), e.g. 1 for a scale. */
  perturbMean?: Record<string, number>;
  /** Adam steps and rate of the training check (default 60 and 0.05). */
  steps?: number;
  lr?: number;
}

const TOL = 1e-5;

/** Sets every trainable param (not in the form's frozen list) to N(0, std) values. */
function perturb(state: AdapterState, frozen: ReadonlySet<string>, rng: Random, std: number, mean: Record<string, number> = {}): AdapterState {
  const params = { ...state.params };
  for (const [n, p] of Object.entries(params)) {
    if (frozen.has(n)) continue;
    params[n] = tensor(Float32Array.from(p.data, () => rng.normal(mean[n] ?? 0, std)), p.shape);
  }
  return { ...state, params };
}

export function describeFamilyVariant(c: FamilyCase): void {
  const shape = c.shape ?? [12, 16];
  const [out, inp] = shape;
  const std = c.perturbStd ?? 0.3;
  const makeBase = c.makeBase ?? ((rng: Random, s: [number, number]) => randn(rng, s));

  describe(`${c.name}: family checks`, () => {
    beforeAll(async () => {
      await tf.setBackend('cpu');
    });
    const variant = getVariant(c.name) as AdapterVariant<unknown>;
    const form = getTfForm(c.name);
    const frozen = new Set(form?.frozen ?? []);

    it('is registered with a tfjs form', () => {
      expect(variant.name).toBe(c.name);
      expect(form).toBeDefined();
    });

    it('parseConfig errors name the field', () => {
      expect(() => variant.parseConfig(c.config)).not.toThrow();
      expect(() => variant.parseConfig({ ...c.config, notAField: 1 })).toThrow(/notAField/);
      for (const [bad, re] of c.badConfigs) {
        let err: unknown;
        try {
          variant.parseConfig(bad);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ArgumentError);
        expect((err as Error).message).toMatch(new RegExp(`^${c.name}: invalid config`));
        expect((err as Error).message).toMatch(re);
      }
    });

    it('a fresh adapter has ΔW = 0 and leaves the forward unchanged', () => {
      const rng = new Random(11);
      const base = makeBase(rng, shape);
      const state = variant.init(base, c.config, rng.fork('init'));
      expect(state.shape).toEqual(shape);
      expect(maxAbs(variant.delta(state, base).data)).toBe(0);
      const x = randn(rng, [5, inp]);
      const y = variant.forward(x, base, state);
      const ref = refMatmul(values(x), refTranspose(values(base), out, inp), 5, inp, out);
      expect(maxAbsDiff(y.data, ref)).toBeLessThan(TOL * Math.max(1, maxAbs(ref)));
    });

    it('ΔW, the forward and the merged forward match the plain-loop reference', () => {
      const rng = new Random(12);
      const base = makeBase(rng, shape);
      const state = perturb(variant.init(base, c.config, rng.fork('init')), frozen, rng, std, c.perturbMean);
      const ref = c.referenceDelta(state, base);
      const delta = variant.delta(state, base);
      expect(delta.shape).toEqual(shape);
      expect(maxAbs(ref)).toBeGreaterThan(1e-3); // the perturbed adapter does change W
      expect(maxAbsDiff(delta.data, ref)).toBeLessThan(TOL * Math.max(1, maxAbs(ref)));

      const x = randn(rng, [7, inp]);
      const wPlus = Float64Array.from(values(base), (w, k) => w + ref[k]!);
      const yRef = refMatmul(values(x), refTranspose(wPlus, out, inp), 7, inp, out);
      const y = variant.forward(x, base, state);
      const scale = Math.max(1, maxAbs(yRef));
      expect(maxAbsDiff(y.data, yRef)).toBeLessThan(TOL * scale);
      const merged = variant.merge(base, state);
      const yMerged = refMatmul(values(x), refTranspose(values(merged), out, inp), 7, inp, out);
      expect(maxAbsDiff(yMerged, y.data)).toBeLessThan(TOL * scale);
      // unmerge gives the base back
      expect(maxAbsDiff(variant.unmerge(merged, state).data, base.data)).toBeLessThan(TOL * Math.max(1, maxAbs(base.data)));
    });

    it('merging into a 50% sparse base keeps the mask bit-exactly; densify opts out', () => {
      const rng = new Random(13);
      const base = makeBase(rng, shape);
      const mask = pruneHalf(base, rng);
      const state = perturb(variant.init(base, c.config, rng.fork('init')), frozen, rng, std, c.perturbMean);
      const ref = c.referenceDelta(state, base);
      expect(maxAbs(ref)).toBeGreaterThan(1e-3);
      const merged = variant.merge(base, state);
      expect(equals(maskFromTensor(merged), mask)).toBe(true);
      for (let k = 0; k < merged.data.length; k++) {
        if (isKept(mask, k)) expect(Math.abs(merged.data[k]! - (base.data[k]! + ref[k]!))).toBeLessThan(TOL * Math.max(1, maxAbs(ref)));
        else expect(Object.is(merged.data[k], 0)).toBe(true); // +0, the base's bits
      }
      const back = variant.unmerge(merged, state, { mask });
      for (let k = 0; k < back.data.length; k++) {
        if (isKept(mask, k)) expect(Math.abs(back.data[k]! - base.data[k]!)).toBeLessThan(TOL * Math.max(1, maxAbs(base.data)));
        else expect(Object.is(back.data[k], 0)).toBe(true);
      }
      const dense = variant.merge(base, state, { densify: true });
      if (c.deltaFollowsBase) {
        expect(Array.from(dense.data)).toEqual(Array.from(merged.data));
      } else {
        expect(count(maskFromTensor(dense))).toBeGreaterThan(count(mask));
        for (let k = 0; k < dense.data.length; k++) expect(Math.abs(dense.data[k]! - (base.data[k]! + ref[k]!))).toBeLessThan(TOL * Math.max(1, maxAbs(ref)));
      }
      const denseBack = variant.unmerge(dense, state, { mask, densify: true });
      expect(maxAbsDiff(denseBack.data, base.data)).toBeLessThan(TOL * Math.max(1, maxAbs(base.data)));
    });

    it('trainableCount equals the closed form, the non-frozen params and the AdapterModel count', () => {
      const rng = new Random(14);
      const base = makeBase(rng, shape);
      const state = variant.init(base, c.config, rng);
      const n = variant.trainableCount(shape, c.config);
      expect(n).toBe(c.closedForm(shape));
      const own = Object.entries(state.params).reduce((s, [k, p]) => s + (frozen.has(k) ? 0 : p.data.length), 0);
      expect(own).toBe(n);
      for (const f of frozen) expect(state.params[f]).toBeDefined(); // the frozen names are real params
      const model = attachAdapters({ fc: tf.variable(tf.tensor(base.data, shape), false) }, { targets: 'fc', variant: c.name, config: c.config });
      expect(model.trainableReport().trainable).toBe(n);
      expect(model.trainableVariables().reduce((s, v) => s + v.size, 0)).toBe(n);
    });

    it('the tfjs form gives W + the core ΔW, at init and after the params move', () => {
      const rng = new Random(15);
      const base = makeBase(rng, shape);
      const w = tf.variable(tf.tensor(base.data, shape), false);
      const model = attachAdapters({ fc: w }, { targets: 'fc', variant: c.name, config: c.config, seed: 4 });
      model.training = false; // the deterministic (expected) weight of dropout-like forms
      expect(maxAbsDiff(model.effectiveWeight('fc').dataSync(), base.data)).toBe(0);
      const names = Object.keys(model.adapterStates()['fc']!.params).filter((n) => !frozen.has(n));
      model.trainableVariables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, c.perturbMean?.[names[i]!] ?? 0, std, 'float32', rng.int(0, 1 << 30))));
      const state = model.adapterStates()['fc']!;
      const core = variant.delta(state, base);
      const eff = model.effectiveWeight('fc').dataSync();
      const d = Float64Array.from(eff, (e, k) => e - base.data[k]!);
      expect(maxAbs(core.data)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(d, core.data)).toBeLessThan(TOL * Math.max(1, maxAbs(core.data)));
      model.deleteAdapter('default');
    });

    it('a few Adam steps through AdapterModel lower a toy loss; frozen factors stay put', () => {
      const rng = new Random(16);
      const base = makeBase(rng, shape);
      const seed = 5;
      // The target is the same adapter with random trainable values, so it is reachable.
      const teacher = perturb(variant.init(base, c.config, new Random(seed).fork('fc')), frozen, rng, std, c.perturbMean);
      const target = Float32Array.from(values(base), (v, k) => v + c.referenceDelta(teacher, base)[k]!);
      const x = tf.tensor(randn(rng, [64, inp]).data, [64, inp]);
      const y = tf.matMul(x, tf.tensor(target, shape), false, true);
      const model = attachAdapters({ fc: tf.variable(tf.tensor(base.data, shape), false) }, { targets: 'fc', variant: c.name, config: c.config, seed });
      const before = model.adapterStates()['fc']!;
      const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('fc'), false, true)) as tf.Scalar;
      const first = loss().dataSync()[0]!;
      const opt = tf.train.adam(c.lr ?? 0.05);
      for (let s = 0; s < (c.steps ?? 60); s++) opt.minimize(loss, false, model.trainableVariables());
      const last = loss().dataSync()[0]!;
      expect(first).toBeGreaterThan(1e-4);
      expect(last).toBeLessThan(0.3 * first);
      const after = model.adapterStates()['fc']!;
      for (const f of frozen) expect(Array.from(after.params[f]!.data)).toEqual(Array.from(before.params[f]!.data));
      opt.dispose();
    });
  });
}
