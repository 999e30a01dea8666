// The bottleneck form of SparseAdapter and MoSA: the output against a brute-force loop (down,
// nonlinearity, up, residual), zero at init, refused merges that name the form, the tfjs form's output
// equal to the core (MoSA's training forwards to its drawn modules), training through AdapterModel.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { expectClose, randn } from '../helpers/sparse-testing.js';
import { mosaBottleneckTerm, mosaModules, mosaVariant } from '../mosa/variant.js';
import { sparseAdapterFactors, sparseAdapterVariant } from './variant.js';
import type { SparseAdapterConfig } from './config.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const OUT = 6;
const IN = 10;

/** Brute force: x Wᵀ + scaling · (act(x Dᵀ + bd) Uᵀ + bu), in float64, GELU by its erf-free tanh form written out. */
function reference(x: Float32Tensor, w: Float32Tensor, d: ArrayLike<number>, u: ArrayLike<number>, bd: ArrayLike<number>, bu: ArrayLike<number>, r: number, scaling: number, act: string): Float64Array {
  const n = x.shape[0]!;
  const f = (v: number) => (act === 'relu' ? Math.max(0, v) : act === 'silu' ? v * (1 / (1 + Math.exp(-v))) : 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  const y = new Float64Array(n * OUT);
  for (let a = 0; a < n; a++) {
    const h = Array.from({ length: r }, (_, t) => {
      let s = bd[t]!;
      for (let j = 0; j < IN; j++) s += x.data[a * IN + j]! * d[t * IN + j]!;
      return f(s);
    });
    for (let i = 0; i < OUT; i++) {
      let s = 0;
      for (let j = 0; j < IN; j++) s += x.data[a * IN + j]! * w.data[i * IN + j]!;
      let t2 = bu[i]!;
      for (let t = 0; t < r; t++) t2 += h[t]! * u[i * r + t]!;
      y[a * OUT + i] = s + scaling * t2;
    }
  }
  return y;
}

/** Every param of a state set to N(0, 0.5) values (the up projection and biases included, so the term is not zero). */
function perturbAll<S extends AdapterState>(s: S, rng: Random): S {
  for (const p of Object.values(s.params)) p.data.forEach((_, k, a) => (a[k] = rng.normal(0, 0.5)));
  return s;
}

describe('bottleneck form', () => {
  for (const act of ['relu', 'gelu', 'silu'] as const) {
    it(`sparse-adapter (${act}): forward = x Wᵀ + scaling · (act(x Dᵀ + b_d) Uᵀ + b_u) over the survivors, zero at init`, () => {
      const rng = new Random(1);
      const w = randn(rng, [OUT, IN]);
      const x = randn(rng, [4, IN]);
      const cfg = { r: 3, alpha: 6, sparsity: 0.5, form: 'bottleneck', activation: act };
      const s = sparseAdapterVariant.init(w, cfg, rng);
      const base = reference(x, w, new Float64Array(3 * IN), new Float64Array(OUT * 3), new Float64Array(3), new Float64Array(OUT), 3, 2, act);
      expectClose(sparseAdapterVariant.forward(x, w, s).data, base, 1e-5);
      perturbAll(s, rng);
      const { a, b } = sparseAdapterFactors(s as IndexedAdapterState<SparseAdapterConfig>);
      expect(a.data.filter((v) => v !== 0).length).toBe(15); // half of D's 30 entries survive
      expectClose(sparseAdapterVariant.forward(x, w, s).data, reference(x, w, a.data, b.data, s.params.sa_bd!.data, s.params.sa_bu!.data, 3, 2, act), 1e-5);
      expect(sparseAdapterVariant.trainableCount([OUT, IN], cfg)).toBe(Object.values(s.params).reduce((n, p) => n + p.data.length, 0));
    });
  }

  it('mosa: forward runs the complete adapter; a drawn pair of modules is K·(D ⊙ P_a), K·(U ⊙ P_b), biases whole', () => {
    const rng = new Random(2);
    const w = randn(rng, [OUT, IN]);
    const x = randn(rng, [3, IN]);
    const cfg = { r: 2, alpha: 2, modules: 3, form: 'bottleneck', activation: 'gelu' };
    const s = perturbAll(mosaVariant.init(w, cfg, rng), rng) as IndexedAdapterState;
    const d = s.params.lora_A!.data;
    const u = s.params.lora_B!.data;
    expectClose(mosaVariant.forward(x, w, s as never).data, reference(x, w, d, u, s.params.mosa_bd!.data, s.params.mosa_bu!.data, 2, 1, 'gelu'), 1e-5);
    const m = { a: 1, b: 2 };
    const dm = Array.from(d, (v, q) => (s.indices.module_A![q] === 1 ? 3 * v : 0));
    const um = Array.from(u, (v, q) => (s.indices.module_B![q] === 2 ? 3 * v : 0));
    const zero = tensor(new Float32Array(OUT * IN), [OUT, IN]) as Float32Tensor;
    expectClose(mosaBottleneckTerm(s, x, m).data, reference(x, zero, dm, um, s.params.mosa_bd!.data, s.params.mosa_bu!.data, 2, 1, 'gelu'), 1e-5);
    expect(mosaVariant.trainableCount([OUT, IN], cfg)).toBe(Object.values(s.params).reduce((n, p) => n + p.data.length, 0));
  });

  it('refuses ΔW, merge and unmerge, naming the form; the lora form stays mergeable', () => {
    const rng = new Random(3);
    const w = randn(rng, [OUT, IN]);
    const cases: [AdapterVariant, Record<string, unknown>][] = [[sparseAdapterVariant as AdapterVariant, { r: 2, form: 'bottleneck' }], [mosaVariant as AdapterVariant, { r: 2, modules: 2, form: 'bottleneck' }]];
    for (const [v, cfg] of cases) {
      const s = v.init(w, cfg, rng);
      expect(v.unmergeable!(cfg)).toMatch(/form 'bottleneck'.*nonlinearity.*merge: false/);
      expect(v.unmergeable!({ ...cfg, form: 'lora' })).toBeUndefined();
      expect(() => v.delta(s, w)).toThrow(/no ΔW: form 'bottleneck'/);
      expect(() => v.merge(w, s)).toThrow(/form 'bottleneck'/);
      expect(() => v.unmerge(w, s)).toThrow(/form 'bottleneck'/);
    }
    expect(() => sparseAdapterVariant.parseConfig({ form: 'adapter' })).toThrow(/form/);
    expect(() => mosaVariant.parseConfig({ activation: 'tanh' })).toThrow(/activation/);
  });

  it('tfjs: the output term equals the core (MoSA: each training forward its drawn modules), training moves it, a merge is refused', () => {
    for (const [variant, cfg, draws] of [['sparse-adapter', { r: 3, sparsity: 0.4, form: 'bottleneck', activation: 'silu' }, false], ['mosa', { r: 3, modules: 2, form: 'bottleneck' }, true]] as const) {
      const rng = new Random(4);
      const w = randn(rng, [OUT, IN]);
      const model = attachAdapters({ fc: tf.variable(tf.tensor(w.data, [OUT, IN]), false) }, { targets: 'fc', variant, config: cfg, seed: 5 });
      const vars = model.layerVariables('fc');
      for (const v of Object.values(vars)) if (v.trainable) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 7));
      const x = randn(rng, [4, IN]);
      const xt = tf.tensor2d(x.data, [4, IN]);
      const state = model.adapterStates()['fc']!;
      expect(Array.from(model.effectiveWeight('fc').dataSync())).toEqual(Array.from(w.data));
      model.training = false;
      const core = variant === 'mosa' ? mosaBottleneckTerm(state, x) : tensor(Float32Array.from(sparseAdapterVariant.forward(x, w, state as never).data, (v, q) => v - reference(x, w, [], [], [], new Float64Array(OUT), 0, 0, 'relu')[q]!), [4, OUT]);
      expectClose(model.outputTerm('fc', xt)!.dataSync(), core.data, 1e-5);
      if (draws) {
        model.training = true;
        for (let call = 0; call < 3; call++) expectClose(model.outputTerm('fc', xt)!.dataSync(), mosaBottleneckTerm(state, x, mosaModules(state, call)).data, 1e-5);
      }
      // a few Adam steps through the output term lower a toy loss
      model.training = true;
      const target = tf.randomNormal([4, OUT], 0, 1, 'float32', 9);
      const loss = () => tf.losses.meanSquaredError(target, tf.add(tf.matMul(xt, model.effectiveWeight('fc'), false, true), model.outputTerm('fc', xt)!)) as tf.Scalar;
      const l0 = loss().dataSync()[0]!;
      const opt = tf.train.adam(0.05);
      for (let s = 0; s < 20; s++) opt.minimize(loss, false, model.trainableVariables());
      expect(loss().dataSync()[0]!).toBeLessThan(0.8 * l0);
      expect(() => model.mergeAndUnload()).toThrow(new RegExp(`merge: adapter 'default' \\(${variant}\\) cannot be merged into the weights: form 'bottleneck'`));
      // the weights were not touched by the refused merge
      expect(Array.from(model.weights.fc!.dataSync())).toEqual(Array.from(w.data));
      model.dispose();
      opt.dispose();
    }
  });
});
