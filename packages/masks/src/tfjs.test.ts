import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random, toArray } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { equals, maskFromBooleans } from './mask.js';
import { synflowScores } from './scores/index.js';
import { accumulateFisher, gradientsFor, maskedWeight, maskFromTf, maskToTf, synflowGradients } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function variable(shape: number[], seed: number, name: string): tf.Variable {
  const rng = new Random(seed);
  const v = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  return tf.variable(tf.tensor(v, shape), true, name);
}

/** Central finite differences of f with respect to every entry of v (restores v). */
function finiteDifferences(f: () => number, v: tf.Variable, h = 1e-2): number[] {
  const base = v.dataSync().slice();
  const out: number[] = [];
  for (let i = 0; i < base.length; i++) {
    const plus = base.slice();
    plus[i] = base[i]! + h;
    v.assign(tf.tensor(plus, v.shape));
    const fp = f();
    const minus = base.slice();
    minus[i] = base[i]! - h;
    v.assign(tf.tensor(minus, v.shape));
    const fm = f();
    out.push((fp - fm) / (2 * h));
  }
  v.assign(tf.tensor(base, v.shape));
  return out;
}

describe('gradientsFor', () => {
  it('matches central finite differences on a tiny two-layer tanh network', () => {
    const w1 = variable([3, 2], 1, 'fd_w1');
    const w2 = variable([2, 1], 2, 'fd_w2');
    const x = tf.tensor([0.5, -1, 2, 1, 0.3, -0.7, -1.5, 0.2, 0.9, 0, 1, -1], [4, 3]);
    const y = tf.tensor([1, -1, 0.5, 0], [4, 1]);
    const loss = () => tf.tidy(() => tf.mean(tf.square(tf.sub(tf.matMul(tf.tanh(tf.matMul(x, w1)), w2), y))) as tf.Scalar);
    const value = () => tf.tidy(() => loss().dataSync()[0]!);
    const { loss: l, gradients } = gradientsFor(loss, [w1, w2]);
    expect(l).toBeCloseTo(value(), 6);
    expect(gradients.map((g) => g.shape)).toEqual([
      [3, 2],
      [2, 1],
    ]);
    [w1, w2].forEach((v, k) => {
      const fd = finiteDifferences(value, v);
      toArray(gradients[k]!).forEach((g, i) => expect(Math.abs(g - fd[i]!)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd[i]!))));
    });
  });

  it('gives zeros for a variable the loss ignores and rejects non-trainable variables', () => {
    const a = variable([2], 3, 'used');
    const b = variable([3], 4, 'unused');
    const { gradients } = gradientsFor(() => tf.sum(tf.square(a)) as tf.Scalar, [a, b]);
    expect(toArray(gradients[1]!)).toEqual([0, 0, 0]);
    toArray(gradients[0]!).forEach((g, i) => expect(g).toBeCloseTo(2 * a.dataSync()[i]!, 5));
    const frozen = tf.variable(tf.ones([2]), false, 'frozen');
    expect(() => gradientsFor(() => tf.sum(frozen) as tf.Scalar, [frozen])).toThrow(/not trainable/);
    expect(() => gradientsFor(() => tf.scalar(0), [])).toThrow(ArgumentError);
  });
});

describe('accumulateFisher', () => {
  it('averages the squared gradients of each loss', () => {
    const w = variable([2, 2], 5, 'fisher_w');
    const batches = [0.5, -1, 2].map((c) => tf.tensor([c, 1, -c, 2], [2, 2]));
    const lossFns = batches.map((xb) => () => tf.sum(tf.square(tf.matMul(xb, w))) as tf.Scalar);
    const [acc] = accumulateFisher(lossFns, [w]);
    expect(acc!.count).toBe(3);
    const grads = lossFns.map((f) => toArray(gradientsFor(f, [w]).gradients[0]!));
    const expected = grads[0]!.map((_, i) => Math.fround(grads.reduce((s, g) => s + g[i]! ** 2, 0) / 3));
    expect(toArray(acc!.mean())).toEqual(expected);
    accumulateFisher([lossFns[0]!], [w], [acc!]);
    expect(acc!.count).toBe(4);
  });
});

describe('synflowGradients', () => {
  it('differentiates R = 1^T |W1| |W2| 1 in closed form and restores the weights', () => {
    const w1 = variable([3, 4], 6, 'sf_w1');
    const w2 = variable([4, 2], 7, 'sf_w2');
    const before1 = w1.dataSync().slice();
    const before2 = w2.dataSync().slice();
    const forward = (x: tf.Tensor) => tf.matMul(tf.matMul(x, w1), w2);
    const [g1, g2] = synflowGradients(forward, [w1, w2], [1, 3]);
    // With an all-ones input, dR/dW1[i, j] = Σ_k |W2[j, k]| and dR/dW2[j, k] = Σ_i |W1[i, j]|.
    const a1 = Array.from(before1, Math.abs);
    const a2 = Array.from(before2, Math.abs);
    const rowSum2 = [0, 1, 2, 3].map((j) => a2[j * 2]! + a2[j * 2 + 1]!);
    const colSum1 = [0, 1, 2, 3].map((j) => a1[j]! + a1[4 + j]! + a1[8 + j]!);
    toArray(g1!).forEach((g, idx) => expect(g).toBeCloseTo(rowSum2[idx % 4]!, 5));
    toArray(g2!).forEach((g, idx) => expect(g).toBeCloseTo(colSum1[Math.floor(idx / 2)]!, 5));
    expect(Array.from(w1.dataSync())).toEqual(Array.from(before1));
    expect(Array.from(w2.dataSync())).toEqual(Array.from(before2));
    // The score is |W ⊙ dR/dW|.
    const scores = synflowScores({ data: before1, shape: [3, 4], stride: [4, 1], offset: 0, dtype: 'float32' }, g1!);
    toArray(scores).forEach((s, idx) => expect(s).toBeCloseTo(a1[idx]! * rowSum2[idx % 4]!, 4));
  });

  it('restores the weights when forward throws', () => {
    const w = variable([2, 2], 8, 'sf_throw');
    const before = w.dataSync().slice();
    expect(() =>
      synflowGradients(
        () => {
          throw new Error('boom');
        },
        [w],
        [1, 2],
      ),
    ).toThrow('boom');
    expect(Array.from(w.dataSync())).toEqual(Array.from(before));
    expect(() => synflowGradients((x) => x, [w], [0, 2])).toThrow(/inputShape/);
  });
});

describe('Mask <-> tf.Tensor', () => {
  it('round-trips as float32 or bool', () => {
    const m = maskFromBooleans([1, 0, 0, 1, 1, 0], [2, 3]);
    const f = maskToTf(m);
    expect(f.dtype).toBe('float32');
    expect(Array.from(f.dataSync())).toEqual([1, 0, 0, 1, 1, 0]);
    const b = maskToTf(m, 'bool');
    expect(b.dtype).toBe('bool');
    expect(equals(maskFromTf(b), m)).toBe(true);
    expect(equals(maskFromTf(f), m)).toBe(true);
    expect(equals(maskFromTf(tf.tensor([[0, -0.5, 0], [2, 0, 0]])), maskFromBooleans([0, 1, 0, 1, 0, 0], [2, 3]))).toBe(true);
  });
});

describe('maskedWeight', () => {
  it('forward is W ⊙ M; the gradient is dy ⊙ (M + decay (1 − M)) + lambda (1 − M) ⊙ W, entry by entry', () => {
    const rng = new Random(21);
    for (let trial = 0; trial < 24; trial++) {
      const shape = [rng.int(1, 5), rng.int(1, 7)];
      const size = shape[0]! * shape[1]!;
      const w = Array.from({ length: size }, () => rng.normal());
      const m = Array.from({ length: size }, () => (rng.uniform(0, 1) < 0.5 ? 1 : 0));
      const c = Array.from({ length: size }, () => rng.normal());
      const opts = [{}, { lambda: 0.3 }, { decay: 0.25 }, { decay: 0 }, { lambda: 0.7, decay: 0.5 }][trial % 5]!;
      const lambda = (opts as { lambda?: number }).lambda ?? 0;
      const decay = (opts as { decay?: number }).decay ?? 1;
      const [W, M, C] = [tf.tensor(w, shape), tf.tensor(m, shape), tf.tensor(c, shape)];
      const fwd = maskedWeight(W, M, opts).dataSync();
      w.forEach((x, i) => expect(fwd[i]).toBeCloseTo(x * m[i]!, 6));
      // loss = Σ c ⊙ maskedWeight(W), so dy = c.
      const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(C, maskedWeight(x, M, opts))))(W).dataSync();
      w.forEach((x, i) => expect(g[i]).toBeCloseTo(c[i]! * (m[i]! + decay * (1 - m[i]!)) + lambda * (1 - m[i]!) * x, 5));
      tf.dispose([W, M, C]);
    }
  });

  it('straight through: the gradient equals the dense gradient taken at W ⊙ M (nonlinear loss)', () => {
    const rng = new Random(4);
    const W = tf.tensor(Array.from({ length: 32 }, () => rng.normal()), [4, 8]);
    const x = tf.tensor(Array.from({ length: 24 }, () => rng.normal()), [8, 3]);
    const M = tf.tensor(Array.from({ length: 32 }, (_, i) => ((i * 7) % 4 < 2 ? 1 : 0)), [4, 8]);
    const loss = (v: tf.Tensor) => tf.sum(tf.square(tf.tanh(tf.matMul(v, x))));
    const ste = tf.grad((v: tf.Tensor) => loss(maskedWeight(v, M)))(W).dataSync();
    const dense = tf.grad(loss)(tf.mul(W, M)).dataSync();
    Array.from(ste).forEach((g, i) => expect(g).toBeCloseTo(dense[i]!, 5));
  });

  it('leaves no tensors behind and validates its arguments', () => {
    const W = tf.ones([2, 2]);
    const M = tf.tensor([1, 0, 0, 1], [2, 2]);
    const before = tf.memory().numTensors;
    tf.dispose(tf.grad((v: tf.Tensor) => tf.sum(maskedWeight(v, M, { lambda: 0.1, decay: 0.5 })))(W));
    expect(tf.memory().numTensors).toBe(before);
    expect(() => maskedWeight(W, tf.ones([4]))).toThrow(/mask shape \[4\]/);
    expect(() => maskedWeight(W, [1, 0, 0, 1] as never)).toThrow(ArgumentError);
    expect(() => maskedWeight(W, M, { lambda: Number.NaN })).toThrow(/lambda must be a finite number/);
    expect(() => maskedWeight(W, M, { decay: Infinity })).toThrow(/decay must be a finite number/);
  });
});
