import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { istConfigSchema, istScoreUpdate, LayerImportance, weightedSampleWithoutReplacement } from './ist.js';
import { SparseFineTuner } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Exact probability of each k-set under sequential weighted draws without replacement (enumerating every draw order). */
function exactSetProbabilities(w: number[], k: number): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (left: number[], picked: number[], p: number) => {
    if (picked.length === k) {
      const key = [...picked].sort((a, b) => a - b).join();
      out.set(key, (out.get(key) ?? 0) + p);
      return;
    }
    const total = left.reduce((s, i) => s + w[i]!, 0);
    for (const i of left) walk(left.filter((j) => j !== i), [...picked, i], (p * w[i]!) / total);
  };
  walk(w.map((_, i) => i), [], 1);
  return out;
}

/** Empirical frequencies of `draw()`'s sets over n draws agree with `exact` within 5 standard errors. */
function expectFrequencies(exact: Map<string, number>, draw: () => number[], n: number) {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const key = draw().join();
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  for (const key of seen.keys()) expect(exact.has(key), key).toBe(true);
  for (const [key, p] of exact) {
    const f = (seen.get(key) ?? 0) / n;
    expect(Math.abs(f - p), `${key}: ${f} vs ${p}`).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / n) + 1e-12);
  }
}

describe('IST sampling', () => {
  it('weighted sampling without replacement: set frequencies match the exact sequential-draw probabilities', () => {
    const w = [1, 2, 3, 4, 0.5];
    const rng = new Random(11);
    for (const k of [1, 2, 3]) expectFrequencies(exactSetProbabilities(w, k), () => weightedSampleWithoutReplacement(w, k, rng), 40_000);
    // k = 1 is plain proportional sampling
    expect(exactSetProbabilities(w, 1).get('3')).toBeCloseTo(4 / 10.5, 12);
    expect(() => weightedSampleWithoutReplacement([1, 0], 1, rng)).toThrow(/weights\[1\]/);
    expect(() => weightedSampleWithoutReplacement([1, 2], 3, rng)).toThrow(/k must be in 0\.\.2/);
  });

  it('LayerImportance: the layers to update are drawn with weights σ(−s), suppression sets with σ(s), distinct', () => {
    const cfg = istConfigSchema.parse({ update: 0.5, suppress: 0.25, probes: 3 });
    const imp = new LayerImportance(4, cfg, new Random(5));
    imp.scores = Float64Array.from([2, -1, 0, 0.5]);
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    expect(imp.updated).toBe(2);
    expectFrequencies(exactSetProbabilities([...imp.scores].map((s) => sig(-s)), 2), () => imp.sampleUpdate(), 40_000);
    // suppression: 1 of 4 layers per probe, 3 distinct sets per update
    for (let i = 0; i < 50; i++) {
      const sets = imp.sampleProbes();
      expect(sets).toHaveLength(3);
      expect(new Set(sets.map((s) => s.join())).size).toBe(3);
    }
    // the first probe's set is drawn with weights σ(s)
    const probeRng = new LayerImportance(4, { ...cfg, probes: 1 }, new Random(9));
    probeRng.scores = imp.scores;
    expectFrequencies(exactSetProbabilities([...imp.scores].map(sig), 1), () => probeRng.sampleProbes()[0]!, 40_000);
    // fewer distinct sets than probes: each probed once
    expect(new LayerImportance(2, istConfigSchema.parse({ suppress: 0.5, probes: 3 }), new Random(1)).sampleProbes()).toHaveLength(2);
  });

  it('istScoreUpdate: s_l += rate · (exp(−loss_k) − mean) · σ(s_l)(1 − σ(s_l)) over the probes containing l (hand-computed)', () => {
    const s = [0, 1, -2];
    const sets = [[0, 1], [1, 2]];
    const losses = [2, 3];
    const r = [Math.exp(-2), Math.exp(-3)];
    const m = (r[0]! + r[1]!) / 2;
    const d = (x: number) => (1 / (1 + Math.exp(-x))) * (1 - 1 / (1 + Math.exp(-x)));
    const want = [0 + 10 * (r[0]! - m) * d(0), 1 + 10 * (r[0]! - m) * d(1) + 10 * (r[1]! - m) * d(1), -2 + 10 * (r[1]! - m) * d(-2)];
    Array.from(istScoreUpdate(s, sets, losses, 10)).forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 14));
    expect(() => istScoreUpdate(s, sets, [1], 10)).toThrow(/2 sets for 1 losses/);
  });

  it('state() / load() continue the same draws and scores', () => {
    const cfg = istConfigSchema.parse({});
    const a = new LayerImportance(8, cfg, new Random(3));
    a.learn(a.sampleProbes(), [1, 2, 3]);
    const saved = a.state();
    const b = new LayerImportance(8, cfg, new Random(99)).load(saved);
    expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
    for (let i = 0; i < 5; i++) expect(b.sampleUpdate()).toEqual(a.sampleUpdate());
    expect(b.learnsBefore(11)).toBe(true);
    expect(b.learnsBefore(1)).toBe(false);
    expect(b.learnsBefore(12)).toBe(false);
  });
});

describe('SparseFineTuner with IST', () => {
  it('minimize({ only }): the other weights keep their values and Adam state exactly; effectiveWeight(name, scale) is W + scale · Δ', () => {
    const rng = new Random(2);
    const w0 = Float32Array.from({ length: 12 }, () => rng.normal());
    const x = tf.tensor2d(Float32Array.from({ length: 8 * 4 }, () => rng.normal()), [8, 4]);
    const a = tf.variable(tf.tensor2d(w0.slice(0, 12), [3, 4]), false);
    const b = tf.variable(tf.tensor2d(w0.map((v) => -v), [3, 4]), false);
    const sft = new SparseFineTuner({ a, b }, { density: 0.5, seed: 1, adam: { lr: 0.1 } });
    const loss = (ws: Record<string, tf.Tensor>) => tf.tidy(() => tf.sum(tf.square(tf.matMul(tf.matMul(x, ws.a!, false, true), ws.b!)))) as tf.Scalar;
    sft.minimize(loss);
    const before = sft.state();
    sft.minimize(loss, { only: new Set(['a']) });
    const after = sft.state();
    expect(after.layers.b!.values).toEqual(before.layers.b!.values);
    expect(after.layers.b!.adam).toEqual(before.layers.b!.adam);
    expect(after.layers.a!.values).not.toEqual(before.layers.a!.values);
    const d = sft.delta('a');
    const eff = sft.effectiveWeight('a', 0.25).dataSync();
    const want = Float32Array.from(w0);
    d.indices.forEach((f, q) => (want[f] = w0[f]! + 0.25 * d.values[q]!));
    eff.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    sft.dispose();
  });
});
