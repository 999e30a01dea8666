import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { applyMask, equals, isKept, maskFromBooleans } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, tensor, toArray } from '@sparse/tensor';
import { fromTf, toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamSOptimizer, adamsStep, distillationLoss, KeyedAdamS, rowScaledWeight } from './adams.js';
import { isNM, nmMask } from './mask.js';
import { mergeRowScales, rescaleKeptRows, rowNorms } from './scaling.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('AdamSOptimizer', () => {
  it.each(['Mask', 'tf.Tensor'] as const)('updates equal the hand formula: decay after the first moment, inside the second (starting mask as a %s)', (form) => {
    const w0 = [0.5, -1, 0.25, -0.75, 2, 0.1, -0.3, 0.6];
    // Two steps with different gradients, so the moments (not just the sign of one step) are checked.
    const grads = [
      [0.2, -0.1, 0.05, 0.3, -0.4, 0.0, 0.1, -0.2],
      [-0.3, 0.4, 0.2, -0.1, 0.1, 0.3, -0.6, 0.05],
    ];
    const mask = [1, 1, 0, 0, 1, 0, 0, 1];
    const start = form === 'Mask' ? maskFromBooleans(mask, [2, 4]) : tf.tensor(mask, [2, 4]);
    const [lr, b1, b2, eps, lambda] = [0.1, 0.9, 0.99, 1e-8, 0.5];
    const v = tf.variable(tf.tensor(w0, [2, 4]), true, 'adams_hand');
    const opt = new AdamSOptimizer({ lr, beta1: b1, beta2: b2, eps, n: 2, m: 4, variables: [v], lambda, masks: { adams_hand: start } });
    expect(Array.from(opt.getMask('adams_hand')!.dataSync())).toEqual(mask);
    const w = [...w0];
    const m1 = new Array<number>(8).fill(0);
    const m2 = new Array<number>(8).fill(0);
    grads.forEach((g, t) => {
      opt.applyGradients({ adams_hand: tf.tensor(g, [2, 4]) } as never);
      for (let i = 0; i < 8; i++) {
        // m from the loss gradient only; u = m + lambda (1 - mask) sign(W); v from u
        m1[i] = b1 * m1[i]! + (1 - b1) * g[i]!;
        const u = m1[i]! + lambda * (1 - mask[i]!) * Math.sign(w[i]!);
        m2[i] = b2 * m2[i]! + (1 - b2) * u * u;
        const vHat = m2[i]! / (1 - b2 ** (t + 1));
        w[i] = w[i]! - ((lr / (1 - b1 ** (t + 1))) * u) / (Math.sqrt(vHat) + eps);
      }
      const got = v.dataSync();
      w.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 5));
    });
    opt.dispose();
    v.dispose();
  });

  it('recomputes the N:M masks from |W| every k steps and leaves other variables to plain Adam', () => {
    const rng = new Random(3);
    const a = tf.variable(toTf(randomTensor([4, 8], rng, { dist: 'normal' })), true, 'adams_a');
    const b = tf.variable(toTf(randomTensor([3], rng, { dist: 'normal' })), true, 'adams_b');
    const opt = new AdamSOptimizer({ lr: 0.2, n: 2, m: 4, variables: ['adams_a'], lambda: 0.1, every: 3 });
    const ref = new tf.AdamOptimizer(0.2, 0.9, 0.999);
    const b2 = tf.variable(b.clone(), true, 'adams_b_ref');
    for (let step = 0; step < 7; step++) {
      const wBefore = fromTf(a);
      const gA = toTf(randomTensor([4, 8], rng, { dist: 'normal' }));
      const gB = toTf(randomTensor([3], rng, { dist: 'normal' }));
      opt.applyGradients({ adams_a: gA, adams_b: gB } as never);
      ref.applyGradients({ adams_b_ref: gB } as never);
      if (step % 3 === 0) expect(equals(maskBitsOf(opt.getMask('adams_a')!), nmMask(wBefore, { n: 2, m: 4 }))).toBe(true);
    }
    Array.from(b.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(b2.dataSync()[i]!, 6));
    expect(opt.step).toBe(7);
    for (const x of [opt, ref, a, b, b2]) x.dispose();
  });

  it('on least squares, drives pruned weights toward zero and beats Adam + one-shot 2:4 masking', () => {
    const { xs, ys, wInit } = leastSquaresProblem(17);
    const masked = (w: tf.Tensor, m: ReturnType<typeof nmMask>) => tf.tidy(() => tf.mul(w, toTf(maskAsTensor(m))));
    const lossOf = (w: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(tf.matMul(xs, w, false, true), ys))).dataSync()[0]!);
    const steps = 600;
    const train = (w: tf.Variable, opt: tf.Optimizer) => {
      for (let s = 0; s < steps; s++) opt.minimize(() => tf.mean(tf.square(tf.sub(tf.matMul(xs, w, false, true), ys))) as tf.Scalar, false, [w]);
    };
    // Plain Adam, then one-shot 2:4 by magnitude.
    const wAdam = tf.variable(wInit.clone(), true, 'ls_adam');
    train(wAdam, new tf.AdamOptimizer(0.02, 0.9, 0.999));
    const adamMask = nmMask(fromTf(wAdam), { n: 2, m: 4 });
    const adamLoss = lossOf(masked(wAdam, adamMask));
    // AdamS with a ramped decay, then the final hard mask.
    const wS = tf.variable(wInit.clone(), true, 'ls_adams');
    const opt = new AdamSOptimizer({ lr: 0.02, n: 2, m: 4, variables: [wS], lambda: (s) => 0.5 * Math.min(1, s / 200), every: 10 });
    train(wS, opt);
    const dense = fromTf(wS);
    const finalMask = opt.finalize().ls_adams!;
    expect(isNM(finalMask, { n: 2, m: 4, exact: true }).valid).toBe(true);
    const prunedMag = (t: ReturnType<typeof fromTf>) => meanOver(t, (i) => !isKept(finalMask, i));
    // Pruned weights went toward zero (relative to their start).
    expect(prunedMag(dense)).toBeLessThan(0.1 * prunedMag(fromTf(wInit)));
    expect(toArray(fromTf(wS)).filter((x, i) => !isKept(finalMask, i) && x !== 0)).toEqual([]);
    const adamsLoss = lossOf(wS);
    // Measured on this seed: Adam + one-shot 2:4 gives 18.8, AdamS + final mask 1.11 (dense Adam: 0.12).
    expect(adamsLoss).toBeLessThan(0.5 * adamLoss);
    for (const x of [wAdam, wS, opt, xs, ys, wInit]) x.dispose();
  });

  it('finalize with scale restores each row norm of the dense weight', () => {
    const rng = new Random(8);
    const v = tf.variable(toTf(randomTensor([3, 8], rng, { dist: 'normal' })), true, 'adams_scale');
    const before = rowNorms(fromTf(v));
    const opt = new AdamSOptimizer({ lr: 0.1, n: 2, m: 4, variables: [v], lambda: 0 });
    const masks = opt.finalize({ scale: true });
    expect(isNM(fromTf(v), { n: 2, m: 4 }).valid).toBe(true);
    const after = rowNorms(fromTf(v));
    before.forEach((b, i) => expect(after[i]).toBeCloseTo(b, 5));
    // The returned mask is the 2:4 pattern the weight now has (random normal weights: no kept zeros).
    const final = fromTf(v);
    expect(isNM(masks.adams_scale!, { n: 2, m: 4, exact: true }).valid).toBe(true);
    expect(Array.from(final.data, (_, i) => isKept(masks.adams_scale!, i))).toEqual(Array.from(final.data, (x) => x !== 0));
    opt.dispose();
    v.dispose();
  });

  it('validates its options', () => {
    const base = { lr: 0.1, n: 2, m: 4, variables: ['x'], lambda: 0.1 };
    expect(() => new AdamSOptimizer({ ...base, n: 4 })).toThrow(ArgumentError);
    expect(() => new AdamSOptimizer({ ...base, every: 0 })).toThrow(/every/);
    expect(() => new AdamSOptimizer({ ...base, lambda: -1 })).toThrow(/lambda/);
    expect(() => new AdamSOptimizer({ ...base, variables: [] })).toThrow(/variables/);
    expect(() => new AdamSOptimizer({ ...base, masks: { y: tf.ones([2, 4]) } })).toThrow(/"y"/);
    expect(() => new AdamSOptimizer({ ...base, masks: { x: [1, 0, 1, 0] as never } })).toThrow(/masks\["x"\] \(a Mask or a tf\.Tensor\)/);
  });
});

describe('KeyedAdamS', () => {
  it('a tensor without a mask takes Adam (tf.AdamOptimizer on the same gradients)', () => {
    const rng = new Random(11);
    const w0 = toTf(randomTensor([2, 4], rng, { dist: 'normal' }));
    const a = tf.variable(w0.clone(), true, 'keyed_a');
    const b = tf.variable(w0.clone(), true, 'keyed_b_ref');
    const keyed = new KeyedAdamS(0.9, 0.95, 1e-8);
    const ref = new tf.AdamOptimizer(0.05, 0.9, 0.95, 1e-8);
    for (let t = 0; t < 4; t++) {
      const g = toTf(randomTensor([2, 4], rng, { dist: 'normal' }));
      keyed.apply([{ key: 'a', variable: a, grad: g }], 0.05);
      ref.applyGradients({ keyed_b_ref: g } as never);
    }
    Array.from(a.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(b.dataSync()[i]!, 5));
    expect(keyed.t).toBe(4);
    for (const x of [keyed, ref, a, b, w0]) x.dispose();
  });

  it('a sparsified tensor at lambda 0 is not Adam: v tracks m², against the hand formula over 4 steps', () => {
    const rng = new Random(13);
    const w0 = randomTensor([2, 4], rng, { dist: 'normal' });
    const a = tf.variable(toTf(w0));
    const keyed = new KeyedAdamS(0.9, 0.95, 1e-8);
    const w = Array.from(w0.data, Number);
    const m = new Array<number>(8).fill(0);
    const v = new Array<number>(8).fill(0);
    for (let t = 1; t <= 4; t++) {
      const g = randomTensor([2, 4], rng, { dist: 'normal' });
      keyed.apply([{ key: 'a', variable: a, grad: toTf(g), mask: tf.ones([2, 4]), lambda: 0 }], 0.05);
      for (let i = 0; i < 8; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * Number(g.data[i]);
        v[i] = 0.95 * v[i]! + 0.05 * m[i]! * m[i]!;
        w[i] = w[i]! - ((0.05 / (1 - 0.9 ** t)) * m[i]!) / (Math.sqrt(v[i]! / (1 - 0.95 ** t)) + 1e-8);
      }
      Array.from(a.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(w[i]!, 5));
    }
    keyed.dispose();
    a.dispose();
  });

  it('a state round trip continues exactly (same weights as an uninterrupted run)', () => {
    const rng = new Random(12);
    const w0 = toTf(randomTensor([2, 4], rng, { dist: 'normal' }));
    const grads = Array.from({ length: 5 }, () => toTf(randomTensor([2, 4], rng, { dist: 'normal' })));
    const mask = tf.tensor([1, 0, 1, 0, 0, 1, 1, 0], [2, 4]);
    const run = (stopAt?: number) => {
      const v = tf.variable(w0.clone());
      let opt = new KeyedAdamS();
      grads.forEach((g, t) => {
        if (t === stopAt) {
          const saved = opt.state();
          opt.dispose();
          opt = new KeyedAdamS();
          opt.load(saved);
        }
        opt.apply([{ key: 'w', variable: v, grad: g, mask, lambda: 0.3 }], 0.1);
      });
      const out = Array.from(v.dataSync());
      opt.dispose();
      v.dispose();
      return out;
    };
    expect(run(3)).toEqual(run());
    expect(() => new KeyedAdamS().load({ t: 1, m: { w: { data: new Float32Array(1), shape: [1] } }, v: {} })).toThrow(/"w"/);
  });

  it('adamsStep refuses mismatched shapes and a bad lambda or t', () => {
    const z = tf.zeros([2, 2]);
    expect(() => adamsStep({ w: z, g: tf.zeros([4]), m: z, v: z, lambda: 0, lr: 1, t: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8 })).toThrow(/one shape/);
    expect(() => adamsStep({ w: z, g: z, m: z, v: z, lambda: -1, lr: 1, t: 1, beta1: 0.9, beta2: 0.9, eps: 1e-8 })).toThrow(/lambda/);
    expect(() => adamsStep({ w: z, g: z, m: z, v: z, lambda: 0, lr: 1, t: 0, beta1: 0.9, beta2: 0.9, eps: 1e-8 })).toThrow(/t must/);
  });
});

describe('CAST weight scaling and self-distillation', () => {
  it('rowScaledWeight is diag(s) W and the scales get the gradient sum_j W_kj dL/dWeff_kj', () => {
    const w = tf.tensor([1, -2, 3, 0.5, 2, -1], [2, 3]);
    const s = tf.tensor([2, -0.5]);
    expect(Array.from(rowScaledWeight(w, s).dataSync())).toEqual([2, -4, 6, -0.25, -1, 0.5]);
    // loss = sum(c * Weff): dL/ds_k = sum_j c_kj W_kj = [1 - 4 + 9, 2 + 10 - 6]
    const c = tf.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const gs = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(c, rowScaledWeight(w, x))))(s);
    expect(Array.from(gs.dataSync())).toEqual([6, 6]);
    // and W's gradient is the scale times c (row by row)
    const gw = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(c, rowScaledWeight(x, s))))(w);
    expect(Array.from(gw.dataSync())).toEqual([2, 4, 6, -2, -2.5, -3]);
    expect(() => rowScaledWeight(w, tf.ones([3]))).toThrow(/one entry per row/);
  });

  it('distillationLoss equals T² · mean_tokens sum_c p_t (log p_t - log p_s), computed directly', () => {
    const rng = new Random(21);
    const [tokens, vocab, T] = [5, 7, 2];
    const st = randomTensor([tokens, vocab], rng, { dist: 'normal' });
    const te = randomTensor([tokens, vocab], rng, { dist: 'normal' });
    const logSoftmax = (row: number[]) => {
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      return row.map((x) => x - lse);
    };
    let want = 0;
    for (let i = 0; i < tokens; i++) {
      const ls = logSoftmax(Array.from(st.data.slice(i * vocab, (i + 1) * vocab), (x) => Number(x) / T));
      const lt = logSoftmax(Array.from(te.data.slice(i * vocab, (i + 1) * vocab), (x) => Number(x) / T));
      want += lt.reduce((a, l, c) => a + Math.exp(l) * (l - ls[c]!), 0);
    }
    want = (T * T * want) / tokens;
    expect(distillationLoss(toTf(st), toTf(te), T).dataSync()[0]).toBeCloseTo(want, 5);
    // zero when the student is the teacher, positive otherwise
    expect(distillationLoss(toTf(te), toTf(te), T).dataSync()[0]).toBeCloseTo(0, 6);
    expect(want).toBeGreaterThan(0);
    expect(() => distillationLoss(toTf(st), tf.zeros([5, 6]))).toThrow(/\[tokens, vocab\]/);
    expect(() => distillationLoss(toTf(st), toTf(te), 0)).toThrow(/temperature/);
  });
});

describe('mergeRowScales', () => {
  it('is scales[i] * (mask ⊙ W)[i, j], against a direct loop, and keeps the pattern', () => {
    const rng = new Random(31);
    const w = randomTensor([3, 8], rng, { dist: 'normal' });
    const mask = nmMask(w, { n: 2, m: 4 });
    const scales = [1.5, -0.25, 2];
    const got = mergeRowScales(w, mask, scales);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 8; j++) expect(got.data[i * 8 + j]).toBeCloseTo(isKept(mask, i * 8 + j) ? Number(w.data[i * 8 + j]) * scales[i]! : 0, 6);
    expect(isNM(got, { n: 2, m: 4 }).valid).toBe(true);
    expect(() => mergeRowScales(w, mask, [1, 2])).toThrow(/scales has 2/);
    expect(() => mergeRowScales(w, mask, [1, Number.NaN, 1])).toThrow(/row 1/);
  });
});

describe('rescaleKeptRows', () => {
  it('scales each row so its kept L2 / L1 norm equals the dense row norm, against a direct computation', () => {
    const rng = new Random(5);
    const w = randomTensor([4, 8], rng, { dist: 'normal' });
    const mask = nmMask(w, { n: 2, m: 4 });
    for (const norm of ['l2', 'l1'] as const) {
      const { weight, scales } = rescaleKeptRows(w, mask, { norm });
      const masked = toArray(applyMask(mask, w));
      for (let i = 0; i < 4; i++) {
        const row = w.data.slice(i * 8, i * 8 + 8);
        const keptRow = masked.slice(i * 8, i * 8 + 8);
        const f = norm === 'l2' ? (r: ArrayLike<number>) => Math.hypot(...Array.from(r)) : (r: ArrayLike<number>) => Array.from(r).reduce((a, x) => a + Math.abs(x), 0);
        expect(scales[i]).toBeCloseTo(f(row) / f(keptRow), 5);
        for (let j = 0; j < 8; j++) expect(weight.data[i * 8 + j]).toBeCloseTo(keptRow[j]! * scales[i]!, 5);
      }
    }
    const zeroRow = maskFromBooleans([0, 0, 0, 0, 1, 1, 0, 0], [2, 4]);
    const r = rescaleKeptRows(tensor(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4]), zeroRow);
    expect(r.scales[0]).toBe(1);
    expect(r.scales[1]).toBeCloseTo(Math.hypot(5, 6, 7, 8) / Math.hypot(5, 6), 12);
    expect(() => rescaleKeptRows(w, zeroRow)).toThrow(/mask shape/);
    expect(() => rescaleKeptRows(w, mask, { reference: [1] })).toThrow(/reference/);
  });
});

function maskBitsOf(t: tf.Tensor) {
  return maskFromBooleans(t.dataSync(), t.shape);
}

function maskAsTensor(m: ReturnType<typeof nmMask>) {
  const n = m.shape[0]! * m.shape[1]!;
  return tensor(Float32Array.from({ length: n }, (_, i) => (isKept(m, i) ? 1 : 0)), m.shape);
}

function meanOver(t: ReturnType<typeof fromTf>, pick: (i: number) => boolean): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < t.data.length; i++) if (pick(i)) [s, c] = [s + Math.abs(t.data[i] as number), c + 1];
  return s / c;
}

/** y = X W*^T with strongly correlated input features, so kept weights can absorb the pruned ones' work. */
function leastSquaresProblem(seed: number) {
  const rng = new Random(seed);
  const [samples, din, dout, latent] = [256, 16, 4, 6];
  const z = toTf(randomTensor([samples, latent], rng, { dist: 'normal' }));
  const mix = toTf(randomTensor([latent, din], rng, { dist: 'normal' }));
  const noise = toTf(randomTensor([samples, din], rng, { dist: 'normal', std: 0.1 }));
  const xs = tf.add(tf.matMul(z, mix), noise);
  const wTrue = toTf(randomTensor([dout, din], rng, { dist: 'normal' }));
  const ys = tf.matMul(xs, wTrue, false, true);
  const wInit = toTf(randomTensor([dout, din], rng, { dist: 'normal', std: 0.5 }));
  tf.dispose([z, mix, noise, wTrue]);
  return { xs, ys, wInit };
}
