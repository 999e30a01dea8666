import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { seerGateProbs, seerPool, seerPredict, seerTarget } from './dynamic/seer.js';
import { maxAbsDiff, normals } from './testing.js';
import { trainSeerGate, type SeerSample } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** q, k with block structure: each query block leans towards one earlier key block's direction. */
function structured(rng: Random, heads: number, seq: number, d: number, bs: number): SeerSample {
  const q = new Float32Array(heads * seq * d);
  const k = new Float32Array(heads * seq * d);
  for (let h = 0; h < heads; h++) {
    const target = Array.from({ length: Math.ceil(seq / bs) }, (_, a) => rng.int(0, a + 1));
    for (let t = 0; t < seq; t++) {
      const b = Math.floor(t / bs);
      for (let c = 0; c < d; c++) {
        q[(h * seq + t) * d + c] = (c === target[b]! % d ? 3 : 0) + 0.3 * rng.normal();
        k[(h * seq + t) * d + c] = (c === b % d ? 3 : 0) + 0.3 * rng.normal();
      }
    }
  }
  return { shape: { heads, seq, headDim: d }, q, k };
}

describe('trainSeerGate', () => {
  it('lowers its distillation loss; the trained gate predicts the high-target blocks', () => {
    const rng = new Random(7);
    const samples = [structured(rng, 2, 32, 8, 4), structured(rng, 2, 32, 8, 4)];
    const { gate, losses } = trainSeerGate(samples, { blockSize: 4, gateDim: 8, steps: 150, learningRate: 0.05, seed: 1 });
    expect(losses.length).toBe(151);
    expect(losses.every((l) => Number.isFinite(l) && l >= -1e-6)).toBe(true);
    expect(losses[150]!).toBeLessThan(0.5 * losses[0]!);
    // The loss reported equals KL(target ‖ gate) computed here from the plain-array gate.
    const kl = (s: SeerSample) => {
      const t = seerTarget(s.shape, s.q, s.k, 4);
      const p = seerGateProbs(gate, s.shape, s.q, s.k);
      let sum = 0;
      for (let x = 0; x < t.length; x++) if (t[x]! > 0) sum += t[x]! * Math.log(t[x]! / p[x]!);
      return sum;
    };
    const rows = samples.length * 2 * 8;
    expect((kl(samples[0]!) + kl(samples[1]!)) / rows).toBeCloseTo(losses[150]!, 4);
    // On a new sample, the gate's top-1 key block per query block mostly matches the target's argmax.
    const fresh = structured(rng, 2, 32, 8, 4);
    const t = seerTarget(fresh.shape, fresh.q, fresh.k, 4);
    const pred = seerPredict(gate, fresh.shape, fresh.q, fresh.k, { topK: 1 });
    let hits = 0;
    for (let r = 0; r < 16; r++) {
      const row = Array.from(t.subarray(r * 8, r * 8 + 8));
      const best = row.indexOf(Math.max(...row));
      if (pred.keep[r * 8 + best] === 1) hits++;
    }
    expect(hits).toBeGreaterThanOrEqual(13);
  });

  it('GQA: one key projection per kv head', () => {
    const rng = new Random(2);
    const [heads, kvHeads, seq, d] = [4, 2, 12, 4];
    const s: SeerSample = { shape: { heads, kvHeads, seq, headDim: d }, q: normals(rng, heads * seq * d), k: normals(rng, kvHeads * seq * d) };
    const { gate, losses } = trainSeerGate([s], { blockSize: 3, gateDim: 4, steps: 40, learningRate: 0.05 });
    expect(gate.wk.length).toBe(kvHeads * 3 * d * 4);
    expect(losses[40]!).toBeLessThan(losses[0]!);
  });

  it('rejects bad configs', () => {
    const s: SeerSample = { shape: { heads: 1, seq: 4, headDim: 2 }, q: new Float32Array(8), k: new Float32Array(8) };
    expect(() => trainSeerGate([], { blockSize: 2 })).toThrow(ArgumentError);
    expect(() => trainSeerGate([s], { blockSize: 0 })).toThrow(/blockSize/);
    expect(() => trainSeerGate([s], { blockSize: 2, learningRate: 0 })).toThrow(/learningRate/);
  });
});

describe('Seer target and pooling (brute force)', () => {
  it('target: block max of full causal attention probabilities, normalized per query block', () => {
    const rng = new Random(3);
    const [seq, d, bs] = [10, 3, 4];
    const q = normals(rng, seq * d);
    const k = normals(rng, seq * d);
    const P: number[][] = [];
    for (let i = 0; i < seq; i++) {
      const s = Array.from({ length: i + 1 }, (_, j) => q.slice(i * d, i * d + d).reduce((a, x, c) => a + x * k[j * d + c]!, 0) / Math.sqrt(d));
      const z = s.reduce((a, x) => a + Math.exp(x), 0);
      P.push(s.map((x) => Math.exp(x) / z));
    }
    const nb = 3;
    const want: number[] = [];
    for (let a = 0; a < nb; a++) {
      const row = Array.from({ length: nb }, (_, b) => {
        let m = 0;
        for (let i = a * bs; i < Math.min(seq, (a + 1) * bs); i++) for (let j = b * bs; j < Math.min(seq, (b + 1) * bs); j++) if (j <= i) m = Math.max(m, P[i]![j]!);
        return m;
      });
      const z = row.reduce((x, y) => x + y, 0);
      want.push(...row.map((x) => x / z));
    }
    expect(maxAbsDiff(seerTarget({ heads: 1, seq, headDim: d }, q, k, bs), want)).toBeLessThan(1e-12);
  });
  it('pooling: q block means; k block max, min, mean', () => {
    const q = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const k = Float32Array.from([1, -2, 3, 4, -5, 6]);
    const p = seerPool({ heads: 1, seq: 3, headDim: 2 }, q, k, 2);
    expect(Array.from(p.q)).toEqual([2, 3, 5, 6]);
    expect(Array.from(p.k)).toEqual([3, 4, 1, -2, 2, 1, -5, 6, -5, 6, -5, 6]);
  });
});

describe('maskedAttentionTensor', () => {
  it('equals maskedAttention forward; the gradient of one query row reaches only the keys it may see', async () => {
    const { maskedAttention } = await import('./attention.js');
    const { toBlockMask, and, causal, slidingWindow, or, sinks } = await import('./patterns.js');
    const { attentionBias, maskedAttentionTensor } = await import('./tfjs.js');
    const rng = new Random(11);
    const [heads, seq, d] = [2, 13, 4];
    const q = normals(rng, heads * seq * d);
    const k = normals(rng, heads * seq * d);
    const v = normals(rng, heads * seq * d);
    const mask = toBlockMask(and(causal(), or(slidingWindow(3), sinks(1))), { seq, blockSize: 4 });
    const ref = maskedAttention(mask, { heads, seq, headDim: d }, q, k, v).out;
    const [tq, tk, tv] = [q, k, v].map((x) => tf.tensor3d(x, [heads, seq, d])) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const out = maskedAttentionTensor(tq, tk, tv, mask);
    expect(maxAbsDiff(out.dataSync(), ref)).toBeLessThan(1e-5);
    // 4-d input (batch of 1) gives the same.
    const [q4, k4, v4] = [q, k, v].map((x) => tf.tensor4d(x, [1, heads, seq, d])) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const out4 = maskedAttentionTensor(q4, k4, v4, mask);
    expect(maxAbsDiff(out4.dataSync(), ref)).toBeLessThan(1e-5);
    // d/dk of sum(out) through query row 12 alone: only keys 0, 10, 11, 12 (sink and window) get a gradient.
    const g = tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(tf.slice(maskedAttentionTensor(tq, kk as tf.Tensor3D, tv, mask), [0, 12, 0], [1, 1, d]), tf.tensor1d([1, -2, 3, 0.5]))))(tk);
    const gd = g.dataSync();
    for (let j = 0; j < seq; j++) {
      const norm = Math.hypot(...Array.from(gd.slice(j * d, j * d + d)));
      if ([0, 10, 11, 12].includes(j)) expect(norm).toBeGreaterThan(0);
      else expect(norm).toBe(0);
    }
    const bias = attentionBias(mask).dataSync();
    expect(bias[12 * seq + 9]).toBe(-1e9);
    expect(bias[12 * seq + 10]).toBe(0);
  });
});
