import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count } from '@sparse/masks';
import { ArgumentError, Random, randomTensor } from '@sparse/tensor';
import { toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { isNM } from './mask.js';
import { patchSparsity } from './patch.js';
import { PatchGates } from './patch-gates.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('PatchGates', () => {
  it('forward uses hard gates, backward the sigmoid derivative; the masked weight mixes dense and 2:4 tiles', () => {
    const gates = new PatchGates({ shape: [4, 8], tile: [4, 4], target: 0.25, init: [0.5, -0.5] });
    expect(Array.from(gates.decisions())).toEqual([1, 0]);
    const w = toTf(randomTensor([4, 8], new Random(2), { dist: 'normal' }));
    const nm = tf.tensor([1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1], [4, 8]);
    const eff = gates.maskedWeight(w, nm).arraySync() as number[][];
    const wv = w.arraySync() as number[][];
    const nv = nm.arraySync() as number[][];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 8; j++) expect(eff[i]![j]).toBeCloseTo(j < 4 ? wv[i]![j]! * nv[i]![j]! : wv[i]![j]!, 6);
    // d/dlogit of sum(c * maskedWeight) = sigmoid'(logit) * sum over the tile of -c * w * (1 - nm).
    const c = toTf(randomTensor([4, 8], new Random(3), { dist: 'normal' }));
    const g = tf.grad(() => tf.sum(tf.mul(c, gates.maskedWeight(w, nm))))(gates.logits);
    const cv = c.arraySync() as number[][];
    for (const [t, logit] of [[0, 0.5], [1, -0.5]] as const) {
      let s = 0;
      for (let i = 0; i < 4; i++) for (let j = t * 4; j < t * 4 + 4; j++) s -= cv[i]![j]! * wv[i]![j]! * (1 - nv[i]![j]!);
      const sig = 1 / (1 + Math.exp(-logit));
      expect(g.dataSync()[t]).toBeCloseTo(s * sig * (1 - sig), 5);
    }
    expect(gates.sparsity().dataSync()[0]).toBeCloseTo(patchSparsity([4, 8], [1, 0]), 6);
    const mask = gates.mask(w);
    expect(count(mask)).toBe(32 - 8);
    gates.dispose();
  });

  it('on a toy regression the gates reach the sparsity budget and pick cheap tiles', () => {
    const rng = new Random(31);
    const [rows, cols, samples] = [16, 16, 128];
    // Tile-dependent scale: some tiles matter much less than others.
    const w0 = randomTensor([rows, cols], rng, { dist: 'normal' });
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) w0.data[i * cols + j] *= 0.2 + ((Math.floor(i / 4) * 4 + Math.floor(j / 4)) % 5);
    const w = toTf(w0);
    const x = toTf(randomTensor([samples, cols], rng, { dist: 'normal' }));
    const y = tf.matMul(x, w, false, true);
    const target = 0.25;
    // Distinct starting logits: gates with equal logits and no task signal would move (and flip) in lockstep.
    const init = Array.from({ length: 16 }, () => rng.normal(0, 0.01));
    const gates = new PatchGates({ shape: [rows, cols], tile: [4, 4], target, budgetWeight: 2000, init });
    const opt = new tf.AdamOptimizer(0.05, 0.9, 0.999);
    const task = (eff: tf.Tensor) => tf.mean(tf.square(tf.sub(tf.matMul(x, eff, false, true), y)));
    // Annealed sigmoid relaxation: temperature 0.98^step down to 0.01, so the gates end binary.
    for (let s = 0; s < 300; s++) {
      const temp = Math.max(0.01, 0.98 ** s);
      opt.minimize(() => tf.add(task(gates.maskedWeight(w, undefined, temp)), gates.budgetLoss(temp)) as tf.Scalar, false, [gates.logits]);
    }
    const decisions = gates.decisions();
    const achieved = patchSparsity([rows, cols], decisions);
    // Within one tile of the budget (one 4x4 tile at 2:4 is 8 / 256 = 3.1% sparsity); measured: exactly 8 tiles.
    expect(Math.abs(achieved - target)).toBeLessThanOrEqual(8 / 256 + 1e-9);
    const mask = gates.mask(w);
    expect(1 - count(mask) / (rows * cols)).toBeCloseTo(achieved, 12);
    const learnedLoss = task(gates.maskedWeight(w)).dataSync()[0]!;
    // Random choices of the same number of sparse tiles do worse on average (measured: 1.07 vs 6.08; the
    // learned set is the four 0.2-scaled tiles, the three 1.2-scaled ones and one 2.2-scaled one).
    const k = decisions.reduce((a, d) => a + d, 0);
    let randomMean = 0;
    for (let r = 0; r < 20; r++) {
      const pick = rng.sample(k, 16);
      const init = new Array<number>(16).fill(-1);
      for (const t of pick) init[t] = 1;
      const other = new PatchGates({ shape: [rows, cols], tile: [4, 4], target, init });
      randomMean += task(other.maskedWeight(w)).dataSync()[0]! / 20;
      other.dispose();
    }
    expect(learnedLoss).toBeLessThan(randomMean);
    gates.dispose();
  });

  it('validates its options', () => {
    expect(() => new PatchGates({ shape: [8, 8], target: 0.6 })).toThrow(/target/);
    expect(() => new PatchGates({ shape: [8, 6], target: 0.2 })).toThrow(/tiles/);
    expect(() => new PatchGates({ shape: [8, 8], target: 0.2, init: [1, 2] })).toThrow(ArgumentError);
    const g = new PatchGates({ shape: [8, 8], target: 0.2 });
    expect(() => g.maskedWeight(tf.ones([4, 4]))).toThrow(/weight shape/);
    expect(() => g.gates(0)).toThrow(/temperature/);
    // Soft form: sigmoid(logit / T).
    expect(g.gates(0.5).dataSync()[0]).toBeCloseTo(1 / (1 + Math.exp(-0.01 / 0.5)), 6);
    expect(isNM(g.mask(tf.ones([8, 8])), { n: 2, m: 4 }).valid).toBe(true);
    g.dispose();
  });
});
