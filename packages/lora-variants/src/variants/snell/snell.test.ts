import '@tensorflow/tfjs-backend-cpu';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachAdapters, getTfForm } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import { snellConfigSchema } from './config.js';
import { snellAllocate, snellKernel, snellKept, snellVariant } from './variant.js';
import { snellForm } from './tfjs.js';
import { describeVariantContract, expectClose, perturb, randn } from '../helpers/sparse-testing.js';

/** K by the definition, then zero all but the k largest |K| found by sorting. */
function refDelta(s: AdapterState): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { dim: number; p: number; scale: number; sparsity: number };
  const U = s.params.snell_out!.data;
  const V = s.params.snell_in!.data;
  const dist = (h: number, i: number, j: number) => {
    const d = Array.from({ length: c.dim }, (_, t) => U[(h * out + i) * c.dim + t]! - V[(h * inp + j) * c.dim + t]!);
    return c.p === 1 ? d.reduce((a, x) => a + Math.abs(x), 0) : Math.hypot(...d);
  };
  const k = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) k[i * inp + j] = c.scale * (dist(0, i, j) - dist(1, i, j));
  const keep = new Set(Array.from(k, (v, q) => [Math.abs(Math.fround(v)), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, Math.round((1 - c.sparsity) * out * inp)).map((e) => e[1]));
  return k.map((v, q) => (keep.has(q) ? v : 0));
}

describeVariantContract({
  name: 'snell',
  config: { dim: 3, sparsity: 0.5, scale: 0.5 },
  closedForm: ([out, inp], c) => 2 * (c.dim as number) * (out + inp),
  referenceDelta: refDelta,
  densifyChangesMask: true,
  train: { below: 0.85, lr: 0.03 },
  badConfigs: [
    [{ dim: 0 }, /dim/],
    [{ sparsity: 1 }, /sparsity/],
    [{ p: 3 }, /p/],
    [{ scale: -1 }, /scale/],
    [{ init: 'normal' }, /init/],
    [{ allocate: { every: 0 } }, /allocate\.every/],
    [{ allocate: { beta1: 1 } }, /allocate\.beta1/],
  ],
});

describeVariantContract({
  name: 'snell',
  label: 'p = 1',
  config: { dim: 2, sparsity: 0.7, p: 1 },
  closedForm: ([out, inp], c) => 2 * (c.dim as number) * (out + inp),
  referenceDelta: refDelta,
  densifyChangesMask: true,
  train: { below: 0.95, lr: 0.03 },
  badConfigs: [],
});

describe('snell', () => {
  it('the kernel lifts the rank: K has rank above the factor dimension, and exactly the competition count survives', () => {
    const rng = new Random(1);
    const s = perturb(snellVariant.init(randn(rng, [12, 12]), { dim: 2, sparsity: 0.75 }, rng), rng);
    const k = snellKernel(s);
    // Rank of K by Gaussian elimination with partial pivoting.
    const a = Array.from({ length: 12 }, (_, i) => Array.from(k.data.subarray(i * 12, (i + 1) * 12), Number));
    let rank = 0;
    for (let col = 0; col < 12 && rank < 12; col++) {
      let piv = rank;
      for (let r = rank; r < 12; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[piv]![col]!)) piv = r;
      if (Math.abs(a[piv]![col]!) < 1e-5) continue;
      [a[rank], a[piv]] = [a[piv]!, a[rank]!];
      for (let r = rank + 1; r < 12; r++) {
        const f = a[r]![col]! / a[rank]![col]!;
        for (let q = col; q < 12; q++) a[r]![q]! -= f * a[rank]![q]!;
      }
      rank++;
    }
    expect(rank).toBeGreaterThan(2 * 2);
    expect(() => snellVariant.initWithScores(randn(rng, [12, 12]), {}, rng, k)).toThrow(/takes no scores/);
    expect(snellVariant.delta(s, randn(rng, [12, 12])).data.filter((v) => v !== 0).length).toBe(36);
  });

  it('gradients reach the factors only through the surviving entries (autodiff vs the same loss with K masked by hand)', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(2);
    const base = randn(rng, [5, 7]);
    const s = perturb(snellVariant.init(base, { dim: 2, sparsity: 0.6 }, rng), rng);
    const U = tf.variable(tf.tensor(s.params.snell_out!.data, [2, 5, 2]));
    const V = tf.variable(tf.tensor(s.params.snell_in!.data, [2, 7, 2]));
    const G = tf.tensor(randn(rng, [5, 7]).data, [5, 7]);
    const keep = tf.tensor(Float32Array.from(refDelta(s), (v) => (v !== 0 ? 1 : 0)), [5, 7]);
    const kernel = () => {
      const d = (h: number) => tf.sqrt(tf.sum(tf.square(tf.sub(tf.reshape(tf.slice(U, [h, 0, 0], [1, 5, 2]), [5, 1, 2]), tf.reshape(tf.slice(V, [h, 0, 0], [1, 7, 2]), [1, 7, 2]))), -1));
      return tf.mul(tf.sub(d(0), d(1)), 0.1);
    };
    const viaForm = tf.variableGrads(() => tf.sum(tf.mul(snellForm.effectiveWeight({ base: tf.tensor(base.data, [5, 7]), vars: { snell_out: U, snell_in: V }, state: s, mask: tf.onesLike(G), training: true }), G)) as tf.Scalar, [U, V]);
    const byHand = tf.variableGrads(() => tf.sum(tf.mul(tf.mul(kernel(), keep), G)) as tf.Scalar, [U, V]);
    expectClose(viaForm.grads[U.name]!.dataSync(), byHand.grads[U.name]!.dataSync(), 1e-5);
    expectClose(viaForm.grads[V.name]!.dataSync(), byHand.grads[V.name]!.dataSync(), 1e-5);
  });
});

describe('snell: the paper\'s random init', () => {
  it('every head\'s factors are drawn independently within ±1/√(n · dim) (the kaiming-uniform bound), so K ≠ 0 and ΔW ≠ 0 at the start', () => {
    const rng = new Random(21);
    const [out, inp, dim] = [40, 60, 4];
    const s = snellVariant.init(randn(rng, [out, inp]), { dim, init: 'random', sparsity: 0.5 }, rng);
    const u = s.params.snell_out!.data;
    const v = s.params.snell_in!.data;
    const [bu, bv] = [1 / Math.sqrt(out * dim), 1 / Math.sqrt(inp * dim)];
    expect(Math.max(...Array.from(u, Math.abs))).toBeLessThanOrEqual(bu);
    expect(Math.max(...Array.from(v, Math.abs))).toBeLessThanOrEqual(bv);
    // uniform on ±b: mean square b²/3 (320 and 480 draws: within 20%)
    const ms = (x: Float32Array) => x.reduce((a, y) => a + y * y, 0) / x.length;
    expect(ms(u) / (bu * bu / 3)).toBeGreaterThan(0.8);
    expect(ms(u) / (bu * bu / 3)).toBeLessThan(1.2);
    expect(ms(v) / (bv * bv / 3)).toBeGreaterThan(0.8);
    expect(ms(v) / (bv * bv / 3)).toBeLessThan(1.2);
    // the heads differ (not the zero init's copy)
    const half = out * dim;
    expect(Array.from(u.subarray(0, half))).not.toEqual(Array.from(u.subarray(half)));
    const d = snellVariant.delta(s, randn(rng, [out, inp]));
    expect(d.data.filter((x) => x !== 0).length).toBe(1200);
    expectClose(d.data, refDelta(s), 1e-5);
    // the default stays the identity start
    const z = snellVariant.init(randn(rng, [out, inp]), { dim }, rng);
    expect(snellConfigSchema.parse({}).init).toBe('zero');
    expect(snellVariant.delta(z, randn(rng, [out, inp])).data.every((x) => x === 0)).toBe(true);
  });
});

describe('snell: the bi-level competition', () => {
  it('snellAllocate: hand-computed splits, with and without full layers; properties on random cases; no scores, no allocation', () => {
    // [1, 1, 1] first, then 17 by 1:1:2 = 4.25, 4.25, 8.5: floors 4, 4, 8, the leftover to the largest remainder
    expect(snellAllocate(20, [1, 1, 2], [100, 100, 100])).toEqual([5, 5, 10]);
    // layer 2's share 13.6 exceeds its room 5: it fills (6); the 12 left split 6 : 6
    expect(snellAllocate(20, [1, 1, 8], [50, 50, 6])).toEqual([7, 7, 6]);
    // ties of remainders go to the lower layer
    expect(snellAllocate(5, [1, 1], [10, 10])).toEqual([3, 2]);
    // a zero-score layer keeps its one entry unless every scored layer is full
    expect(snellAllocate(9, [0, 1], [10, 4])).toEqual([5, 4]);
    expect(snellAllocate(6, [0, 0], [10, 4])).toBeUndefined();
    expect(() => snellAllocate(1, [1, 1], [3, 3])).toThrow(/total must be an integer in \[2, 6\]/);
    expect(() => snellAllocate(3, [1, -1], [3, 3])).toThrow(/scores\[1\] must be finite and ≥ 0/);
    const rng = new Random(5);
    for (let t = 0; t < 200; t++) {
      const n = 1 + Math.floor(rng.uniform(0, 5));
      const sizes = Array.from({ length: n }, () => 1 + Math.floor(rng.uniform(0, 30)));
      const scores = Array.from({ length: n }, () => (rng.uniform(0, 1) < 0.2 ? 0 : rng.uniform(0, 2)));
      if (!scores.some((x) => x > 0)) scores[0] = 1;
      const room = sizes.reduce((a, b) => a + b, 0);
      const total = n + Math.floor(rng.uniform(0, room - n + 1));
      const b = snellAllocate(total, scores, sizes)!;
      expect(b.reduce((a, x) => a + x, 0)).toBe(total);
      b.forEach((x, l) => {
        expect(x).toBeGreaterThanOrEqual(1);
        expect(x).toBeLessThanOrEqual(sizes[l]!);
      });
      // water-filling: a layer below its room holds its proportional share of what the unfilled layers got, to within one entry
      const open = b.map((x, l) => l).filter((l) => b[l]! < sizes[l]! && scores[l]! > 0);
      const got = open.reduce((a, l) => a + b[l]! - 1, 0);
      const mass = open.reduce((a, l) => a + scores[l]!, 0);
      for (const l of open) expect(Math.abs(b[l]! - 1 - (got * scores[l]!) / mass)).toBeLessThan(1);
      // a full scored layer's share at the final level reaches its room (less one entry of rounding)
      for (let l = 0; l < n; l++) if (b[l] === sizes[l] && open.length > 0 && scores[l]! > 0) expect((got * scores[l]!) / mass).toBeGreaterThanOrEqual(sizes[l]! - 2);
    }
  });

  it('the hooks: EMAs of |θ · g| and of its deviation, allocation before step every + 1 by mean(s̄ · ū), each layer\'s ΔW keeps its count; a state round trip continues the same', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(22);
    const weights = { a: tf.variable(tf.tensor(randn(rng, [6, 8]).data, [6, 8]), false), b: tf.variable(tf.tensor(randn(rng, [4, 10]).data, [4, 10]), false) };
    const cfg = { dim: 2, sparsity: 0.5, init: 'random', allocate: { every: 2, beta1: 0.5, beta2: 0.75 } };
    const parsed = snellConfigSchema.parse(cfg);
    const model = attachAdapters(weights, { targets: ['a', 'b'], variant: 'snell', config: cfg, seed: 2 });
    const hooks = getTfForm('snell')!.training!({ model, adapter: model.activeAdapter!, config: parsed, steps: 6 });
    // two steps of made-up gradients; the reference EMAs by hand, in float64
    const ref = new Map<string, { s: Float64Array; u: Float64Array }>();
    const feed = (r: Random) => {
      for (const n of ['a', 'b']) {
        for (const f of ['snell_out', 'snell_in']) {
          const v = model.layerVariables(n)[f]!;
          const g = tf.tensor(randn(r, v.shape).data, v.shape);
          const theta = v.dataSync();
          const gd = g.dataSync();
          const e = ref.get(`${n}/${f}`) ?? { s: new Float64Array(v.size), u: new Float64Array(v.size) };
          for (let q = 0; q < v.size; q++) {
            const x = Math.abs(theta[q]! * gd[q]!);
            e.s[q] = 0.5 * e.s[q]! + 0.5 * x;
            e.u[q] = 0.75 * e.u[q]! + 0.25 * Math.abs(x - e.s[q]!);
          }
          ref.set(`${n}/${f}`, e);
          hooks.gradient!(v, g);
        }
      }
    };
    const gr = new Random(3);
    expect(hooks.beforeStep!(1)).toBeUndefined();
    feed(gr);
    expect(hooks.beforeStep!(2)).toBeUndefined();
    feed(gr);
    const importance = (n: string) => ['snell_out', 'snell_in'].reduce((a, f) => {
      const e = ref.get(`${n}/${f}`)!;
      return a + e.s.reduce((m, x, q) => m + x * e.u[q]!, 0) / e.s.length;
    }, 0);
    // budget: round(0.5 · 48) + round(0.5 · 40) = 44
    const expected = snellAllocate(44, [importance('a'), importance('b')], [48, 40])!;
    const out = hooks.beforeStep!(3);
    expect(out).toEqual({ event: { event: 'allocate', step: 3, total: 44, kept: { a: expected[0], b: expected[1] } } });
    expect(expected).not.toEqual([24, 20]); // the competition moved entries between the layers
    const states = model.adapterStates();
    expect(snellKept(states.a as never)).toBe(expected[0]);
    expect(snellKept(states.b as never)).toBe(expected[1]);
    for (const [n, k] of [['a', expected[0]!], ['b', expected[1]!]] as const) {
      const d = tf.sub(model.effectiveWeight(n), weights[n]).dataSync();
      expect(Array.from(d).filter((x) => x !== 0).length).toBe(k);
      // the core merge keeps the same count
      const core = snellVariant.delta(states[n]! as never, randn(rng, states[n]!.shape));
      expect(core.data.filter((x) => x !== 0).length).toBe(k);
    }
    expect(hooks.beforeStep!(4)).toBeUndefined();
    const saved = JSON.parse(JSON.stringify(hooks.state!()));
    // a second model loads the state: same counts, same EMAs, so the same next allocation from the same gradients
    const weights2 = { a: tf.variable(weights.a.clone(), false), b: tf.variable(weights.b.clone(), false) };
    const model2 = attachAdapters(weights2, { targets: ['a', 'b'], variant: 'snell', config: cfg, seed: 2 });
    const hooks2 = getTfForm('snell')!.training!({ model: model2, adapter: model2.activeAdapter!, config: parsed, steps: 6 });
    hooks2.load!(saved);
    expect(hooks2.state!()).toEqual(saved);
    const g3 = new Random(9);
    const g4 = new Random(9);
    for (const [m, h, r] of [[model, hooks, g3], [model2, hooks2, g4]] as const) {
      for (const n of ['a', 'b']) for (const f of ['snell_out', 'snell_in']) {
        const v = m.layerVariables(n)[f]!;
        h.gradient!(v, tf.tensor(randn(r, v.shape).data, v.shape));
      }
    }
    expect(hooks2.beforeStep!(5)).toEqual(hooks.beforeStep!(5));
    expect(hooks2.finish!()).toEqual(hooks.finish!());
    expect(hooks.finish!().summary).toBe('2 budget allocations');
    model.dispose();
    model2.dispose();
  });

  it('initialSparsity: every layer starts at its share of the initial level, and the budget at an allocation follows the cubic ramp to sparsity (closed form)', () => {
    const rng = new Random(23);
    const weights = { a: tf.variable(tf.tensor(randn(rng, [6, 8]).data, [6, 8]), false), b: tf.variable(tf.tensor(randn(rng, [4, 10]).data, [4, 10]), false) };
    const cfg = snellConfigSchema.parse({ dim: 2, sparsity: 0.8, init: 'random', allocate: { every: 2, initialSparsity: 0.2, scheduleStart: 0.1, scheduleEnd: 0.7 } });
    const model = attachAdapters(weights, { targets: ['a', 'b'], variant: 'snell', config: cfg, seed: 4 });
    const hooks = getTfForm('snell')!.training!({ model, adapter: model.activeAdapter!, config: cfg, steps: 20 });
    const kept = () => ['a', 'b'].map((n) => snellKept(model.adapterStates()[n] as never));
    expect(kept()).toEqual([Math.round(0.8 * 48), Math.round(0.8 * 40)]);
    // ramp from step 2 (floor(0.1 · 20)) to step 14 (floor(0.7 · 20)): s(t) = 0.8 + (0.2 − 0.8)(1 − (t − 2) / 12)³
    const level = (t: number) => (t <= 2 ? 0.2 : t >= 14 ? 0.8 : 0.8 + (0.2 - 0.8) * (1 - (t - 2) / 12) ** 3);
    const budget = (t: number) => Math.round((1 - level(t)) * 48) + Math.round((1 - level(t)) * 40);
    const g = new Random(6);
    for (let step = 1; step <= 20; step++) {
      const out = hooks.beforeStep!(step);
      if (step > 1 && (step - 1) % 2 === 0) {
        const e = (out as { event: { total: number; kept: Record<string, number> } }).event;
        expect(e.total, `step ${step}`).toBe(budget(step));
        expect(e.kept.a! + e.kept.b!).toBe(budget(step));
        expect(kept()).toEqual([e.kept.a, e.kept.b]);
      } else expect(out).toBeUndefined();
      for (const n of ['a', 'b']) for (const f of ['snell_out', 'snell_in']) {
        const v = model.layerVariables(n)[f]!;
        hooks.gradient!(v, tf.tensor(randn(g, v.shape).data, v.shape));
      }
    }
    expect(budget(19)).toBe(Math.round(0.2 * 48) + Math.round(0.2 * 40));
    const bad = snellConfigSchema.parse({ sparsity: 0.5, allocate: { initialSparsity: 0.6 } });
    expect(() => getTfForm('snell')!.training!({ model, adapter: model.activeAdapter!, config: bad, steps: 20 })).toThrow(/allocate\.initialSparsity 0.6 is above sparsity 0.5/);
    model.dispose();
  });

  it('without allocate there are no hooks; a budget below one entry per layer is refused naming allocate', () => {
    const weights = { a: tf.variable(tf.zeros([2, 2]), false), b: tf.variable(tf.zeros([2, 2]), false) };
    const model = attachAdapters(weights, { targets: ['a', 'b'], variant: 'snell', config: { sparsity: 0.9 } });
    expect(getTfForm('snell')!.training!({ model, adapter: model.activeAdapter!, config: snellConfigSchema.parse({ sparsity: 0.9 }), steps: 4 })).toEqual({});
    const cfg = snellConfigSchema.parse({ sparsity: 0.9, allocate: {} });
    expect(() => getTfForm('snell')!.training!({ model, adapter: model.activeAdapter!, config: cfg, steps: 4 })).toThrow(/allocate: sparsity 0.9 leaves 0 entries for 2 layers/);
    model.dispose();
  });
});

describe('snell: PEFT files keep the competition', () => {
  it('a config with init and allocate and per-layer counts (indices.kept) save and load back exactly, driving the same ΔW', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadPEFTAdapter, savePEFTAdapter } = await import('../../node.js');
    const rng = new Random(31);
    const cfg = { dim: 2, sparsity: 0.6, init: 'random', allocate: { every: 3, initialSparsity: 0.3 } };
    const bases = { 'model.layers.0.mlp.up_proj': randn(rng, [6, 8]), 'model.layers.0.self_attn.o_proj': randn(rng, [4, 8]) };
    const states = Object.fromEntries(Object.entries(bases).map(([m, b]) => [m, snellVariant.init(b, cfg, rng)]));
    states['model.layers.0.mlp.up_proj']!.indices.kept = Int32Array.of(30);
    states['model.layers.0.self_attn.o_proj']!.indices.kept = Int32Array.of(5);
    const dir = await mkdtemp(join(tmpdir(), 'snell-peft-'));
    try {
      await savePEFTAdapter(dir, states);
      const back = await loadPEFTAdapter(dir);
      expect(back.config).toEqual(snellConfigSchema.parse(cfg));
      for (const [m, s] of Object.entries(states)) {
        expect(back.modules[m]).toEqual(s);
        const d = snellVariant.delta(back.modules[m]! as never, bases[m as keyof typeof bases]);
        expect(Array.from(d.data)).toEqual(Array.from(snellVariant.delta(s, bases[m as keyof typeof bases]).data));
        expect(d.data.filter((x) => x !== 0).length).toBe(s.indices.kept![0]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
