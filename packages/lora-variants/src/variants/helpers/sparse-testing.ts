// The contract every sparse variant's test runs (once per method, from its *.test.ts): zero init, merged ==
// unmerged forward, unmerge, mask-keeping merges into 2:4 and 50% bases, densify, trainable counts, the
// tfjs form against the core ΔW, training through AdapterModel, and config errors naming the field.
// References are plain loops here or supplied by each method's test (its brute-force ΔW and closed form).
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, isKept, maskFromPredicate, maskFromTensor, type Mask } from '@sparse/masks';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { getTfForm } from '../../tfjs-forms/index.js';
import { attachAdapters } from '../../tfjs.js';
import { getVariant } from '../registry.js';
import type { AdapterState, AdapterVariant } from '../types.js';

export function randn(rng: Random, shape: readonly number[], std = 1): Float32Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.normal(0, std)), shape);
}

/** x Wᵀ by plain loops in float64. */
export function refMatmulT(x: Float32Tensor, w: { data: ArrayLike<number>; shape: readonly number[] }): Float64Array {
  const [n, k] = x.shape as [number, number];
  const out = w.shape[0]!;
  const y = new Float64Array(n * out);
  for (let a = 0; a < n; a++) for (let i = 0; i < out; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += x.data[a * k + j]! * w.data[i * k + j]!;
    y[a * out + i] = s;
  }
  return y;
}

/** Sets every trainable tensor to N(0, std²) so ΔW is not zero. */
export function perturb<S extends AdapterState>(state: S, rng: Random, std = 0.5): S {
  for (const p of Object.values(state.params)) for (let k = 0; k < p.data.length; k++) p.data[k] = rng.normal(0, std);
  return state;
}

/** Prunes w in place to 2:4 along each row (largest two |w| of every 4 kept); returns the mask. */
export function prune24(w: Float32Tensor): Mask {
  const keep = new Set<number>();
  for (let g = 0; g < w.data.length; g += 4) {
    const idx = [0, 1, 2, 3].map((t) => g + t).sort((a, b) => Math.abs(w.data[b]!) - Math.abs(w.data[a]!));
    keep.add(idx[0]!).add(idx[1]!);
  }
  for (let k = 0; k < w.data.length; k++) if (!keep.has(k)) w.data[k] = 0;
  return maskFromPredicate(w.shape, (k) => keep.has(k));
}

/** Prunes a random half of w in place; returns the mask. */
export function pruneRandom50(w: Float32Tensor, rng: Random): Mask {
  const order = rng.shuffle(Array.from({ length: w.data.length }, (_, k) => k));
  const drop = new Set(order.slice(0, w.data.length / 2));
  for (const k of drop) w.data[k] = 0;
  return maskFromPredicate(w.shape, (k) => !drop.has(k));
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let k = 0; k < expected.length; k++) worst = Math.max(worst, Math.abs(actual[k]! - expected[k]!) / Math.max(1, Math.abs(expected[k]!)));
  expect(worst).toBeLessThan(tol);
}

export interface ContractSpec {
  name: string;
  /** Tells two runs of one variant apart in the test names. */
  label?: string;
  /** A config for the test shape (the contract also runs one with defaults where the shape allows). */
  config: Record<string, unknown>;
  /** [out, in]; default [16, 32]. */
  shape?: [number, number];
  /** The closed form of the trainable count, written independently of the variant. */
  closedForm(shape: readonly [number, number], config: Record<string, unknown>): number;
  /** ΔW by brute force from the state (independent of the variant's delta). */
  referenceDelta(state: AdapterState, base: Float32Tensor): Float64Array;
  /** ΔW a densified merge adds, by brute force, when it differs from referenceDelta (LoRS masks ΔW, densify does not). */
  densifiedDelta?(state: AdapterState, base: Float32Tensor): Float64Array;
  /** Whether a densified merge of a perturbed adapter writes into pruned entries (false when ΔW lives on the base's nonzeros). */
  densifyChangesMask: boolean;
  /** Configs that must fail, with the field the error has to name. */
  badConfigs: [unknown, RegExp][];
  /** Adam steps and rate of the toy training run, and the loss ratio it must reach. */
  train?: { steps?: number; lr?: number; below?: number };
}

/** Registers the contract's tests for one variant. */
export function describeVariantContract(spec: ContractSpec): void {
  const shape = spec.shape ?? [16, 32];
  const [out, inp] = shape;
  const variant: AdapterVariant = getVariant(spec.name);

  describe(`${spec.name}${spec.label ? ` (${spec.label})` : ''}: adapter contract`, () => {
    beforeAll(async () => {
      await tf.setBackend('cpu');
    });

    it('a fresh adapter has ΔW = 0 and leaves forward and merge unchanged', () => {
      const rng = new Random(10);
      const base = randn(rng, shape);
      const x = randn(rng, [5, inp]);
      const s = variant.init(base, spec.config, rng);
      expect(variant.delta(s, base).data.every((v) => v === 0)).toBe(true);
      expectClose(variant.forward(x, base, s).data, refMatmulT(x, base), 1e-5);
      expect(variant.merge(base, s).data).toEqual(base.data);
    });

    it('ΔW equals the brute-force reference; merged forward equals unmerged forward (1e-5); unmerge restores the base', () => {
      const rng = new Random(11);
      const base = randn(rng, shape);
      const before = Float32Array.from(base.data);
      const x = randn(rng, [5, inp]);
      const s = perturb(variant.init(base, spec.config, rng), rng);
      const d = variant.delta(s, base);
      expect(d.data.some((v) => v !== 0)).toBe(true);
      expectClose(d.data, spec.referenceDelta(s, base), 1e-5);
      const merged = variant.merge(base, s);
      expectClose(variant.forward(x, base, s).data, refMatmulT(x, merged), 1e-5);
      expectClose(variant.unmerge(merged, s).data, base.data, 1e-6);
      expect(base.data).toEqual(before); // inputs untouched
    });

    it.each(['2:4', '50% unstructured'])('merging into a %s base keeps the mask bit-exact; densify: true opts out', (kind) => {
      const rng = new Random(12);
      const base = randn(rng, shape);
      const mask = kind === '2:4' ? prune24(base) : pruneRandom50(base, rng);
      expect(count(mask)).toBe((out * inp) / 2);
      const s = perturb(variant.init(base, spec.config, rng), rng);
      const d = variant.delta(s, base);
      for (const merged of [variant.merge(base, s), variant.merge(base, s, { mask })]) {
        expect(equals(maskFromTensor(merged), mask)).toBe(true);
        for (let k = 0; k < merged.data.length; k++) {
          if (!isKept(mask, k)) expect(Object.is(merged.data[k], 0)).toBe(true);
          else expect(merged.data[k]).toBe(Math.fround(base.data[k]! + d.data[k]!));
        }
        expect(merged.data.some((w, k) => isKept(mask, k) && w !== base.data[k])).toBe(true);
        expectClose(variant.unmerge(merged, s, { mask }).data, base.data, 1e-6);
      }
      const dense = variant.merge(base, s, { densify: true });
      if (spec.densifiedDelta) expectClose(dense.data, spec.densifiedDelta(s, base).map((v, k) => v + base.data[k]!), 1e-6);
      else for (let k = 0; k < dense.data.length; k++) expect(dense.data[k]).toBe(Math.fround(base.data[k]! + d.data[k]!));
      expect(!equals(maskFromTensor(dense), mask)).toBe(spec.densifyChangesMask);
      expectClose(variant.unmerge(dense, s, { densify: true }).data, base.data, 1e-6);
    });

    it('trainableCount equals the closed form and the scalars init creates', () => {
      const closed = spec.closedForm(shape, spec.config);
      expect(variant.trainableCount(shape, spec.config)).toBe(closed);
      const s = variant.init(randn(new Random(1), shape), spec.config, new Random(0));
      expect(Object.values(s.params).reduce((a, p) => a + p.data.length, 0)).toBe(closed);
    });

    it("the tfjs form's effectiveWeight equals W + the core ΔW", () => {
      const rng = new Random(13);
      const base = randn(rng, shape);
      prune24(base);
      const s = perturb(variant.init(base, spec.config, rng), rng);
      const form = getTfForm(spec.name);
      expect(form).toBeDefined();
      const expected = variant.delta(s, base).data.map((v, k) => v + base.data[k]!);
      const got = tf.tidy(() => {
        const vars = Object.fromEntries(Object.entries(s.params).map(([n, p]) => [n, tf.variable(tf.tensor(p.data, p.shape))]));
        const m = tf.tensor(Float32Array.from(base.data, (v) => (v === 0 ? 0 : 1)), shape);
        const w = form!.effectiveWeight({ base: tf.tensor(base.data, shape), vars, state: s, mask: m, training: true });
        const r = w.dataSync().slice();
        for (const v of Object.values(vars)) v.dispose();
        return r;
      });
      expectClose(got, expected, 1e-5);
    });

    it('trains through AdapterModel: zero at start, Adam lowers a toy loss, merge keeps the 2:4 mask, unmerge restores', () => {
      const rng = new Random(14);
      const w0 = randn(rng, shape);
      const mask = prune24(w0);
      const n = 64;
      // Target: the base plus a rank-2 change on its kept entries.
      const u = randn(rng, [out, 2]);
      const v = randn(rng, [2, inp]);
      const wt = w0.data.map((w, k) => {
        const [i, j] = [Math.floor(k / inp), k % inp];
        return isKept(mask, k) ? w + 0.3 * (u.data[i * 2]! * v.data[j]! + u.data[i * 2 + 1]! * v.data[inp + j]!) : 0;
      });
      const x = tf.tensor(randn(rng, [n, inp]).data, [n, inp]);
      const y = tf.matMul(x, tf.tensor(wt, shape), false, true);
      const weights = { 'layers.0.fc': tf.variable(tf.tensor(w0.data, shape), false) };
      const model = attachAdapters(weights, { targets: ['fc'], variant: spec.name, config: spec.config, seed: 3 });
      expect(Array.from(model.effectiveWeight('layers.0.fc').dataSync())).toEqual(Array.from(w0.data));
      expect(model.trainableReport().trainable).toBe(spec.closedForm(shape, spec.config));
      const loss = () => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true)) as tf.Scalar;
      const opt = tf.train.adam(spec.train?.lr ?? 0.05);
      // Measured in inference mode (a form may behave differently while training).
      const evalLoss = () => {
        model.training = false;
        const v = loss().dataSync()[0]!;
        model.training = true;
        return v;
      };
      const first = evalLoss();
      for (let k = 0; k < (spec.train?.steps ?? 60); k++) opt.minimize(loss, false, model.trainableVariables());
      const last = evalLoss();
      expect(last).toBeLessThan((spec.train?.below ?? 0.7) * first);
      expect(Array.from(weights['layers.0.fc'].dataSync())).toEqual(Array.from(w0.data));
      model.merge();
      const merged = weights['layers.0.fc'].dataSync() as Float32Array;
      expect(equals(maskFromTensor(tensor(Float32Array.from(merged), shape)), mask)).toBe(true);
      model.unmerge();
      expectClose(weights['layers.0.fc'].dataSync() as Float32Array, w0.data, 1e-5);
    });

    it('parseConfig fills defaults and names the failing field', () => {
      expect(() => variant.parseConfig({})).not.toThrow();
      for (const [bad, field] of spec.badConfigs) {
        expect(() => variant.parseConfig(bad)).toThrow(new RegExp(`${spec.name}: invalid config: .*${field.source}`));
        expect(() => variant.init(randn(new Random(0), shape), bad, new Random(0))).toThrow(field);
      }
    });
  });
}
