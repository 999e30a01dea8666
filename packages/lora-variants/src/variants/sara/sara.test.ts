import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, svd, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachAdapters, getTfForm } from '../../tfjs.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { saraConfigSchema } from './config.js';
import { nuclearNorm, saraReselect, saraVariant } from './variant.js';
import { nuclearNormPenalty } from './tfjs.js';
import { describeVariantContract, prune24, randn } from '../helpers/sparse-testing.js';

describeVariantContract({
  name: 'sara',
  config: { density: 0.4 },
  closedForm: ([out, inp], c) => Math.round((c.density as number) * out * inp),
  referenceDelta(state) {
    const s = state as IndexedAdapterState;
    const d = new Float64Array(s.shape[0] * s.shape[1]);
    s.indices.support!.forEach((p, t) => (d[p] = s.params.sara_values!.data[t]!));
    return d;
  },
  // The support lies on the base's nonzeros, so even a densified merge cannot fill pruned entries.
  densifyChangesMask: false,
  badConfigs: [[{ density: 0 }, /density/], [{ density: 'a' }, /density/], [{ r: 4 }, /r/], [{ lambda: -1 }, /lambda/], [{ reselectAt: 1 }, /reselectAt/], [{ reselectAt: 0 }, /reselectAt/]],
});

describe('sara', () => {
  it('trains the smallest |W| among the nonzeros (brute force)', () => {
    const rng = new Random(1);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const s = saraVariant.init(base, { density: 0.1 }, rng);
    const expected = Array.from(base.data, (w, q) => [Math.abs(w), q] as const)
      .filter(([, q]) => base.data[q] !== 0)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .slice(0, Math.round(0.1 * 128))
      .map((e) => e[1])
      .sort((a, b) => a - b);
    expect(Array.from(s.indices.support!)).toEqual(expected);
    expect(() => saraVariant.init(base, { density: 0.6 }, rng)).toThrow(/density asks for 77 entries but the base has only 64 nonzeros/);
  });

  it('nuclearNorm matches closed forms: 2×2 √(‖M‖_F² + 2|det M|), rank one ‖u‖‖v‖, diagonal Σ|d_i|', () => {
    const rng = new Random(2);
    for (let t = 0; t < 5; t++) {
      const [a, b, c, d] = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
      expect(nuclearNorm(tensor(new Float32Array([a, b, c, d]), [2, 2]))).toBeCloseTo(Math.sqrt(a * a + b * b + c * c + d * d + 2 * Math.abs(a * d - b * c)), 5);
    }
    const u = randn(rng, [5]);
    const v = randn(rng, [7]);
    const outer = tensor(Float32Array.from({ length: 35 }, (_, k) => u.data[Math.floor(k / 7)]! * v.data[k % 7]!), [5, 7]);
    const norm = (x: Float32Array) => Math.hypot(...x);
    expect(nuclearNorm(outer)).toBeCloseTo(norm(u.data) * norm(v.data), 4);
    expect(nuclearNorm(tensor(new Float32Array([3, 0, 0, 0, -2, 0]), [2, 3]))).toBeCloseTo(5, 6);
  });

  it('nuclearNormPenalty: value = nuclearNorm, gradient = central finite differences', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(3);
    const m = randn(rng, [4, 6]);
    const x = tf.variable(tf.tensor(m.data, [4, 6]));
    const { value, grads } = tf.variableGrads(() => nuclearNormPenalty(x), [x]);
    expect(value.dataSync()[0]).toBeCloseTo(nuclearNorm(m), 4);
    const g = grads[x.name]!.dataSync();
    const h = 1e-2;
    for (const k of [0, 5, 11, 23]) {
      const plus = Float64Array.from(m.data);
      const minus = Float64Array.from(m.data);
      plus[k] += h;
      minus[k] -= h;
      const fd = (nuclearNorm(tensor(plus, [4, 6])) - nuclearNorm(tensor(minus, [4, 6]))) / (2 * h);
      expect(g[k]).toBeCloseTo(fd, 3);
    }
    expect(() => nuclearNormPenalty(tf.zeros([3]))).toThrow(/expected a matrix/);
  });

  it('adding the penalty to the loss gives a ΔW of lower nuclear norm', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(4);
    const [out, inp, n] = [8, 12, 48];
    const w0 = randn(rng, [out, inp]);
    const x = tf.tensor(randn(rng, [n, inp]).data, [n, inp]);
    const y = tf.tensor(randn(rng, [n, out]).data, [n, out]);
    const run = (lambda: number) => {
      const weights = { fc: tf.variable(tf.tensor(w0.data, [out, inp]), false) };
      const model = attachAdapters(weights, { targets: 'fc', variant: 'sara', config: { density: 0.5 }, seed: 1 });
      const opt = tf.train.adam(0.05);
      const delta = () => tf.sub(model.effectiveWeight('fc'), weights.fc);
      for (let s = 0; s < 40; s++) {
        opt.minimize(() => tf.add(tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('fc'), false, true)), tf.mul(lambda, nuclearNormPenalty(delta()))) as tf.Scalar, false, model.trainableVariables());
      }
      return nuclearNorm(tensor(Float32Array.from(delta().dataSync()), [out, inp]));
    };
    const free = run(0);
    const penalized = run(0.3);
    expect(free).toBeGreaterThan(0);
    expect(penalized).toBeLessThan(0.8 * free);
  });
});

/** ΔW [out, in] of a sara state as float64, by its definition (values placed at the support). */
function denseDelta(s: IndexedAdapterState): Float64Array {
  const d = new Float64Array(s.shape[0] * s.shape[1]);
  s.indices.support!.forEach((p, t) => (d[p] = s.params.sara_values!.data[t]!));
  return d;
}

describe('sara training hooks', () => {
  it('the loss term is λ Σ ‖ΔW‖_* over the layers, and its gradient in the values is λ (U Vᵀ) at the support (closed form) and central differences', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(11);
    const weights = { a: tf.variable(tf.tensor(randn(rng, [5, 7]).data, [5, 7]), false), b: tf.variable(tf.tensor(randn(rng, [6, 4]).data, [6, 4]), false) };
    const cfg = { density: 0.5, lambda: 0.3 };
    const model = attachAdapters(weights, { targets: ['a', 'b'], variant: 'sara', config: cfg });
    for (const n of ['a', 'b']) {
      const v = model.layerVariables(n).sara_values!;
      v.assign(tf.tensor(randn(rng, [v.size]).data, v.shape));
    }
    const hooks = getTfForm('sara')!.training!({ model, adapter: model.activeAdapter!, config: saraConfigSchema.parse(cfg), steps: 10 });
    const vars = ['a', 'b'].map((n) => model.layerVariables(n).sara_values!);
    const { value, grads } = tf.variableGrads(() => hooks.loss!()!, vars);
    const states = model.adapterStates() as Record<string, IndexedAdapterState>;
    const penalty = (st: Record<string, IndexedAdapterState>) =>
      0.3 * Object.values(st).reduce((a, s) => a + nuclearNorm(tensor(Float64Array.from(denseDelta(s)), s.shape)), 0);
    expect(value.dataSync()[0]).toBeCloseTo(penalty(states), 4);
    for (const [k, n] of ['a', 'b'].entries()) {
      const s = states[n]!;
      const [out, inp] = s.shape;
      // closed form: ∂‖M‖_*/∂M = U Vᵀ for M of full rank (here a.s.), read at the support
      const f = svd(tensor(Float64Array.from(denseDelta(s)), [out, inp]));
      const r = f.s.data.length;
      const g = grads[vars[k]!.name]!.dataSync();
      s.indices.support!.forEach((p, t) => {
        const [i, j] = [Math.floor(p / inp), p % inp];
        let uv = 0;
        for (let q = 0; q < r; q++) uv += f.u.data[i * r + q]! * f.v.data[j * r + q]!;
        expect(g[t]).toBeCloseTo(0.3 * uv, 4);
      });
      // central differences of the penalty in two of the values
      for (const t of [0, s.indices.support!.length - 1]) {
        const h = 1e-3;
        const at = (dv: number) => {
          const vals = Float32Array.from(s.params.sara_values!.data);
          vals[t] = vals[t]! + dv;
          return penalty({ ...states, [n]: { ...s, params: { sara_values: tensor(vals, [vals.length]) } } });
        };
        expect(g[t]).toBeCloseTo((at(h) - at(-h)) / (2 * h), 2);
      }
    }
    model.dispose();
  });

  it('lambda 0: no loss term; no reselectAt: no step hook and no checkpoint state', () => {
    const model = attachAdapters({ fc: tf.variable(tf.tensor(randn(new Random(1), [4, 4]).data, [4, 4]), false) }, { targets: 'fc', variant: 'sara', config: {} });
    const hooks = getTfForm('sara')!.training!({ model, adapter: model.activeAdapter!, config: saraConfigSchema.parse({}), steps: 10 });
    expect(hooks.loss).toBeUndefined();
    expect(hooks.beforeStep).toBeUndefined();
    expect(hooks.state).toBeUndefined();
    expect(hooks.finish!()).toEqual({});
    model.dispose();
  });

  it('saraReselect: the merged weight is W + ΔW on the mask, the new support the smallest |W + ΔW| among its nonzeros (brute force), the function unchanged', () => {
    const rng = new Random(12);
    const base = randn(rng, [8, 16]);
    const mask = prune24(base);
    const s = saraVariant.init(base, { density: 0.25 }, rng);
    s.params.sara_values = randn(rng, [s.indices.support!.length], 0.8);
    const { base: merged, state } = saraReselect(base, s, { mask });
    const d = denseDelta(s);
    for (let q = 0; q < 128; q++) expect(merged.data[q]).toBeCloseTo(base.data[q] === 0 ? 0 : base.data[q]! + d[q]!, 6);
    const expected = Array.from(merged.data, (w, q) => [Math.abs(w), q] as const)
      .filter(([, q]) => merged.data[q] !== 0)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1])
      .slice(0, 32)
      .map((e) => e[1])
      .sort((a, b) => a - b);
    expect(Array.from(state.indices.support!)).toEqual(expected);
    expect(Array.from(state.params.sara_values!.data)).toEqual(new Array(32).fill(0));
    // some trained entries grew out of the smallest 25%, so the support changed
    expect(expected).not.toEqual(Array.from(s.indices.support!));
    const x = randn(rng, [3, 16]);
    const before = saraVariant.forward(x, base, s);
    const after = saraVariant.forward(x, merged, state);
    for (let k = 0; k < before.data.length; k++) expect(after.data[k]).toBeCloseTo(before.data[k]!, 5);
  });

  it('reselectAt: re-selection happens once, before step floor(reselectAt · steps) + 1, resets the values, keeps the function, and a state round trip restores the supports', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(13);
    const [out, inp, n] = [6, 10, 32];
    const w0 = randn(rng, [out, inp]);
    const x = tf.tensor(randn(rng, [n, inp]).data, [n, inp]);
    const y = tf.tensor(randn(rng, [n, out]).data, [n, out]);
    const cfg = { density: 0.3, reselectAt: 0.5 };
    const weights = { fc: tf.variable(tf.tensor(w0.data, [out, inp]), false) };
    const model = attachAdapters(weights, { targets: 'fc', variant: 'sara', config: cfg });
    const hooks = getTfForm('sara')!.training!({ model, adapter: model.activeAdapter!, config: saraConfigSchema.parse(cfg), steps: 7 });
    const opt = tf.train.adam(0.05);
    const first = Array.from((model.adapterStates().fc as IndexedAdapterState).indices.support!);
    const fired: number[] = [];
    for (let step = 1; step <= 7; step++) {
      const eff = Float32Array.from(model.effectiveWeight('fc').dataSync());
      const out1 = hooks.beforeStep!(step);
      if (out1) {
        fired.push(step);
        expect(out1.reset).toEqual([model.layerVariables('fc').sara_values]);
        expect(out1.event).toMatchObject({ event: 'reselect', step: 4 });
        expect(Array.from(model.layerVariables('fc').sara_values!.dataSync()).every((v) => v === 0)).toBe(true);
        // the trained update went into the weight: the adapted function did not move
        const now = model.effectiveWeight('fc').dataSync();
        for (let q = 0; q < eff.length; q++) expect(now[q]).toBeCloseTo(eff[q]!, 6);
        const expected = Array.from(now, (w, q) => [Math.abs(w), q] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).slice(0, 18).map((e) => e[1]).sort((a, b) => a - b);
        expect(Array.from((model.adapterStates().fc as IndexedAdapterState).indices.support!)).toEqual(expected);
      }
      opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('fc'), false, true)) as tf.Scalar, false, model.trainableVariables());
    }
    expect(fired).toEqual([4]);
    const support = Array.from((model.adapterStates().fc as IndexedAdapterState).indices.support!);
    expect(support).not.toEqual(first);
    const saved = JSON.parse(JSON.stringify(hooks.state!()));
    expect(hooks.finish!().summary).toBe('re-selected once');
    // a fresh adapter on the merged weights, loaded from the saved state, trains the same support and does not re-select again
    const again = attachAdapters({ fc: tf.variable(tf.tensor(Float32Array.from(weights.fc.dataSync()), [out, inp]), false) }, { targets: 'fc', variant: 'sara', config: cfg });
    const h2 = getTfForm('sara')!.training!({ model: again, adapter: again.activeAdapter!, config: saraConfigSchema.parse(cfg), steps: 7 });
    h2.load!(saved);
    expect(Array.from((again.adapterStates().fc as IndexedAdapterState).indices.support!)).toEqual(support);
    expect(h2.beforeStep!(4)).toBeUndefined();
    expect(h2.finish!().log).toBe(hooks.finish!().log);
    expect(() => h2.load!({ ...saved, supports: { fc: [1, 2] } })).toThrow(/fc: the checkpoint's support has 2 entries/);
    model.dispose();
    again.dispose();
  });
});
