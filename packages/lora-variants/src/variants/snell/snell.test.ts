import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { AdapterState } from '../types.js';
import { snellKernel, snellVariant } from './variant.js';
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
  badConfigs: [[{ dim: 0 }, /dim/], [{ sparsity: 1 }, /sparsity/], [{ p: 3 }, /p/], [{ scale: -1 }, /scale/]],
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
