import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import { activeRank, dynamicRankScores, dynamicRankTrainableCount, dynamicRankVariant, pruneDynamicRank } from './variant.js';
import { pruneDynamicRankModel } from './tfjs.js';
import { describeFamilyVariant, maxAbsDiff, randn } from '../helpers/family-testing.js';

/** Component i of scaling · B diag(g) A as a dense [out, in] array, by loops. */
function component(s: AdapterState, i: number): Float64Array {
  const [out, inp] = s.shape;
  const r = s.params.rank_gate!.data.length;
  const c = s.config as { alpha: number; r: number };
  const scale = (c.alpha / c.r) * s.params.rank_gate!.data[i]!;
  const d = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) for (let j = 0; j < inp; j++) d[o * inp + j] = scale * s.params.lora_B!.data[o * r + i]! * s.params.lora_A!.data[i * inp + j]!;
  return d;
}
function refDelta(s: AdapterState): Float64Array {
  const d = new Float64Array(s.shape[0] * s.shape[1]);
  for (let i = 0; i < s.params.rank_gate!.data.length; i++) component(s, i).forEach((v, k) => (d[k]! += v));
  return d;
}

describeFamilyVariant({
  name: 'dynamic-rank',
  config: { r: 4, alpha: 8 },
  closedForm: ([out, inp]) => 4 * (out + inp),
  referenceDelta: refDelta,
  badConfigs: [[{ r: 0 }, /r:/]],
});

function trained(seed: number, shape: [number, number], bScale: number): AdapterState {
  const rng = new Random(seed);
  const s = dynamicRankVariant.init(randn(rng, shape), { r: 4, alpha: 8 }, rng);
  s.params.lora_B!.data.set(randn(rng, [shape[0], 4], bScale).data);
  return s;
}

describe('dynamic-rank scoring and pruning', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('scores are ‖ΔW_i‖_F, or |⟨G, ΔW_i⟩| given the gradient (brute force)', () => {
    const s = trained(1, [6, 5], 1);
    const g = randn(new Random(2), [6, 5]);
    const mag = dynamicRankScores(s);
    const grad = dynamicRankScores(s, { gradient: g });
    for (let i = 0; i < 4; i++) {
      const c = component(s, i);
      expect(mag[i]).toBeCloseTo(Math.sqrt(c.reduce((a, v) => a + v * v, 0)), 6);
      expect(grad[i]).toBeCloseTo(Math.abs(c.reduce((a, v, k) => a + v * g.data[k]!, 0)), 6);
    }
    expect(() => dynamicRankScores(s, { gradient: randn(new Random(2), [5, 5]) })).toThrow(/gradient is \[5, 5\]/);
  });

  it('a global budget keeps the most important components over all layers; ΔW is what they add up to', () => {
    const states = { small: trained(3, [6, 5], 0.01), large: trained(4, [6, 5], 1) };
    const pruned = pruneDynamicRank(states, 3);
    // The large layer wins every slot.
    expect(activeRank(pruned.large!)).toBe(3);
    expect(activeRank(pruned.small!)).toBe(0);
    expect(dynamicRankTrainableCount(pruned.large!)).toBe(3 * 11);
    expect(dynamicRankTrainableCount(states.large)).toBe(dynamicRankVariant.trainableCount([6, 5], { r: 4, alpha: 8 }));
    // The dropped component is the weakest one.
    const scores = dynamicRankScores(states.large);
    const dropped = Array.from(pruned.large!.params.rank_gate!.data).indexOf(0);
    expect(scores[dropped]).toBe(Math.min(...scores));
    const kept = new Float64Array(30);
    for (let i = 0; i < 4; i++) if (i !== dropped) component(states.large, i).forEach((v, k) => (kept[k]! += v));
    expect(maxAbsDiff(dynamicRankVariant.delta(pruned.large! as never, randn(new Random(0), [6, 5])).data, kept)).toBeLessThan(1e-6);
    // The inputs are not modified, and pruning again cannot revive a component.
    expect(activeRank(states.large)).toBe(4);
    expect(activeRank(pruneDynamicRank(pruned, 3).large!)).toBe(3);
    expect(() => pruneDynamicRank(pruned, 4)).toThrow(/budget must be an integer in \[0, 3\]/);
  });

  it('prunes a live AdapterModel between training steps; pruned components stay off', () => {
    const rng = new Random(5);
    const w = { a: tf.variable(tf.tensor(randn(rng, [6, 8]).data, [6, 8]), false), b: tf.variable(tf.tensor(randn(rng, [6, 8]).data, [6, 8]), false) };
    const model = attachAdapters(w, { targets: ['a', 'b'], variant: 'dynamic-rank', config: { r: 4, alpha: 8 }, seed: 1 });
    const x = tf.tensor(randn(rng, [32, 8]).data, [32, 8]);
    const ya = tf.matMul(x, tf.tensor(randn(rng, [6, 8]).data, [6, 8]), false, true);
    const loss = () => tf.add(tf.losses.meanSquaredError(ya, tf.matMul(x, model.effectiveWeight('a'), false, true)), tf.mul(0.01, tf.losses.meanSquaredError(tf.zeros([32, 6]), tf.matMul(x, model.effectiveWeight('b'), false, true)))) as tf.Scalar;
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 20; s++) opt.minimize(loss, false, model.trainableVariables());
    const ranks = pruneDynamicRankModel(model, 5);
    expect(ranks.a! + ranks.b!).toBe(5);
    const before = loss().dataSync()[0]!;
    for (let s = 0; s < 20; s++) opt.minimize(loss, false, model.trainableVariables());
    expect(loss().dataSync()[0]!).toBeLessThan(before);
    const states = model.adapterStates();
    for (const n of ['a', 'b'] as const) {
      expect(activeRank(states[n]!)).toBe(ranks[n]);
      const eff = model.effectiveWeight(n).dataSync();
      const base = w[n].dataSync();
      expect(maxAbsDiff(Float64Array.from(eff, (e, k) => e - base[k]!), refDelta(states[n]!))).toBeLessThan(1e-5);
    }
    model.disableAdapters();
    expect(() => pruneDynamicRankModel(model, 4)).toThrow(/merged or disabled/);
    expect(w.a.isDisposed).toBe(false);
    model.enableAdapters();
  });
});
