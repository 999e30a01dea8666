import '@tensorflow/tfjs-backend-cpu';
// An application registers tfjs-core's gradients (the @tensorflow/tfjs umbrella does it); so does this test.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { equals } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, tensor } from '@sparse/tensor';
import { maskedWeight, type MaskedWeightOptions } from '@sparse/masks/tfjs';
import { toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { nmMask } from './mask.js';
import { gradientFlowDecay, maskDecayedWeight, nmMaskedWeight, PeriodicNMMask, progressiveMaskedWeight, srSTEMaskedWeight, steMaskedWeight, type MaskEstimator } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const w = () => tf.tensor([1, -2, 3, 0.5], [2, 2]);
const mask = () => tf.tensor([1, 0, 0, 1], [2, 2]);
const c = () => tf.tensor([1, 2, 3, 4], [2, 2]);
// loss = sum(c * W_masked), so dL/dW_masked = c.
const gradOf = (f: (x: tf.Tensor) => tf.Tensor) => Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(c(), f(x))))(w()).dataSync());

describe('masked weight ops', () => {
  it('forward equals the masked weight for every estimator', () => {
    for (const f of [steMaskedWeight(w(), mask()), srSTEMaskedWeight(w(), mask(), 0.1), progressiveMaskedWeight(w(), mask(), 0.3)]) {
      expect(Array.from(f.dataSync(), (v) => v + 0)).toEqual([1, 0, 0, 0.5]);
    }
  });

  it('SR-STE gradient equals dy + lambda * (1 - mask) * W on a hand-computed example', () => {
    // [1, 2 + 0.1 * -2, 3 + 0.1 * 3, 4] = [1, 1.8, 3.3, 4]
    gradOf((x) => srSTEMaskedWeight(x, mask(), 0.1)).forEach((g, i) => expect(g).toBeCloseTo([1, 1.8, 3.3, 4][i]!, 6));
  });

  it('progressive gradient flow scales the pruned entries by the decay', () => {
    gradOf((x) => progressiveMaskedWeight(x, mask(), 0.25)).forEach((g, i) => expect(g).toBeCloseTo([1, 0.5, 0.75, 4][i]!, 6));
    gradOf((x) => nmMaskedWeight(x, mask(), { kind: 'progressive', decay: 0 })).forEach((g, i) => expect(g).toBeCloseTo([1, 0, 0, 4][i]!, 6));
  });

  it('each estimator is maskedWeight of @sparse/masks/tfjs with its options (same forward, same gradient)', () => {
    const cases: [MaskEstimator, MaskedWeightOptions][] = [
      [{ kind: 'ste' }, {}],
      [{ kind: 'sr-ste', lambda: 0.2 }, { lambda: 0.2 }],
      [{ kind: 'progressive', decay: 0.4 }, { decay: 0.4 }],
    ];
    for (const [estimator, opts] of cases) {
      const ours = gradOf((x) => nmMaskedWeight(x, mask(), estimator));
      expect(ours).toEqual(gradOf((x) => maskedWeight(x, mask(), opts)));
      expect(Array.from(nmMaskedWeight(w(), mask(), estimator).dataSync())).toEqual(Array.from(maskedWeight(w(), mask(), opts).dataSync()));
    }
  });

  it('MDGF mask decay: forward W * (mask + beta (1 - mask)), gradient dy on every entry (closed form)', () => {
    // W = [1, -2, 3, 0.5], mask = [1, 0, 0, 1], beta = 0.25: [1, -0.5, 0.75, 0.5]
    expect(Array.from(maskDecayedWeight(w(), mask(), 0.25).dataSync())).toEqual([1, -0.5, 0.75, 0.5]);
    expect(Array.from(nmMaskedWeight(w(), mask(), { kind: 'mask-decay', beta: 1 }).dataSync())).toEqual([1, -2, 3, 0.5]);
    expect(Array.from(nmMaskedWeight(w(), mask(), { kind: 'mask-decay', beta: 0 }).dataSync(), (v) => v + 0)).toEqual([1, 0, 0, 0.5]);
    // loss = sum(c * W_eff): dL/dW = c everywhere, whatever beta
    for (const beta of [0, 0.3, 1]) expect(gradOf((x) => maskDecayedWeight(x, mask(), beta))).toEqual([1, 2, 3, 4]);
    // the gradient reaching an input through the decayed weight is the product rule's: y = x W_effᵀ
    const x = tf.tensor([[2, -1]]);
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.matMul(xx, maskDecayedWeight(w(), mask(), 0.5), false, true)))(x);
    // column sums of W_eff = [1, -1, 1.5, 0.5] as [2, 2]: [1 + 1.5, -1 + 0.5]
    expect(Array.from(dx.dataSync())).toEqual([2.5, -0.5]);
    expect(() => maskDecayedWeight(w(), mask(), 1.5)).toThrow(/beta/);
    expect(() => maskDecayedWeight(w(), tf.ones([4]), 0.5)).toThrow(ArgumentError);
  });

  it('SDGF: each frame trains through its binary mask straight-through (forward W * mask_k, gradient dy everywhere)', () => {
    // W [1, 8] scored by |W|: the stepwise 1:8 frames keep the 7, 4, 2, 1 largest of the group
    const wv = [0.5, -8, 3, 0.25, -6, 1, 7, -2];
    const order = [1, 6, 4, 2, 7, 5, 0, 3]; // indices by decreasing |W|
    for (const n of [7, 4, 2, 1]) {
      const m = nmMask(tensor(Float32Array.from(wv), [1, 8]), { n, m: 8 });
      const keep = new Set(order.slice(0, n));
      const mt = tf.tensor(Array.from({ length: 8 }, (_, i) => (keep.has(i) ? 1 : 0)), [1, 8]);
      expect(Array.from(mt.dataSync())).toEqual(Array.from({ length: 8 }, (_, i) => (m.bits[0]! >>> i) & 1));
      const x = tf.tensor(wv, [1, 8]);
      expect(Array.from(nmMaskedWeight(x, mt, { kind: 'ste' }).dataSync(), (v) => v + 0)).toEqual(wv.map((v, i) => (keep.has(i) ? v : 0)));
      const cc = tf.tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 8]);
      const g = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(cc, nmMaskedWeight(y, mt, { kind: 'ste' }))))(x);
      expect(Array.from(g.dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    }
  });

  it('validates arguments', () => {
    expect(() => steMaskedWeight(w(), tf.ones([3]))).toThrow(ArgumentError);
    expect(() => srSTEMaskedWeight(w(), mask(), Number.NaN)).toThrow(ArgumentError);
  });
});

describe('gradientFlowDecay', () => {
  it('follows linear and cosine ramps and clamps after the end', () => {
    expect(gradientFlowDecay(50, { kind: 'linear', steps: 100 })).toBeCloseTo(0.5, 12);
    expect(gradientFlowDecay(25, { kind: 'linear', steps: 100, from: 1, to: 0.2 })).toBeCloseTo(0.8, 12);
    expect(gradientFlowDecay(50, { kind: 'cosine', steps: 100 })).toBeCloseTo(0.5, 12);
    expect(gradientFlowDecay(25, { kind: 'cosine', steps: 100 })).toBeCloseTo((1 + Math.SQRT1_2) / 2, 12);
    expect(gradientFlowDecay(500, { kind: 'cosine', steps: 100, to: 0.1 })).toBeCloseTo(0.1, 12);
    expect(gradientFlowDecay(3, (s) => 1 / (1 + s))).toBe(0.25);
  });
});

describe('PeriodicNMMask', () => {
  it('recomputes the N:M mask every k steps and counts the flips', () => {
    const rng = new Random(9);
    const a = randomTensor([4, 8], rng, { dist: 'normal' });
    const b = tensor(Float32Array.from(a.data, (v) => -v * (1 + rng.uniform())), [4, 8]);
    const periodic = new PeriodicNMMask({ n: 2, m: 4, every: 2 });
    const m0 = periodic.update(0, toTf(a));
    expect(Array.from(m0.dataSync())).toEqual(Array.from(tf.tensor(Array.from(maskBits(nmMask(a, { n: 2, m: 4 })))).dataSync()));
    expect(periodic.update(1, toTf(b))).toBe(m0);
    periodic.update(2, toTf(b));
    expect(equals(periodic.mask!, nmMask(b, { n: 2, m: 4 }))).toBe(true);
    // The flips are the entries where the masks of a and b differ, counted here bit by bit.
    const before = maskBits(nmMask(a, { n: 2, m: 4 }));
    const after = maskBits(nmMask(b, { n: 2, m: 4 }));
    const flips = before.filter((v, i) => v !== after[i]).length;
    expect(flips).toBeGreaterThan(0);
    expect(periodic.lastFlips).toBe(flips);
    periodic.dispose();
    expect(() => new PeriodicNMMask({ n: 2, m: 4, every: 0 })).toThrow(ArgumentError);
  });

  it('transposable: every row and every column keeps 2 of each group of 4, with the best block sums, and counts the flips', () => {
    const rng = new Random(10);
    const t = new PeriodicNMMask({ n: 2, m: 4, every: 1, transposable: true });
    const w0 = randomTensor([8, 12], rng, { dist: 'normal' });
    const w1 = randomTensor([8, 12], rng, { dist: 'normal' });
    const m0 = t.update(0, toTf(w0));
    const bits0 = maskBits(t.mask!);
    expect(Array.from(m0.dataSync())).toEqual(bits0);
    expectTransposable24(bits0, w0.data, 8, 12);
    const m1 = t.update(1, toTf(w1));
    expect(m1).not.toBe(m0);
    const bits1 = maskBits(t.mask!);
    expect(Array.from(m1.dataSync())).toEqual(bits1);
    expectTransposable24(bits1, w1.data, 8, 12);
    expect(t.lastFlips).toBe(bits0.filter((v, i) => v !== bits1[i]).length);
    expect(t.lastFlips).toBeGreaterThan(0);
    t.dispose();
  });
});

/**
 * Brute force: each row's groups of 4 columns and each column's groups of 4 rows keep exactly 2, and
 * every 4 x 4 block keeps the largest |w| sum over all 2^16 0/1 blocks with two ones per row and column.
 */
function expectTransposable24(bits: number[], w: ArrayLike<number>, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    for (let g = 0; g < cols; g += 4) expect(bits[i * cols + g]! + bits[i * cols + g + 1]! + bits[i * cols + g + 2]! + bits[i * cols + g + 3]!, `row ${i} cols ${g}..`).toBe(2);
  }
  for (let j = 0; j < cols; j++) {
    for (let g = 0; g < rows; g += 4) expect(bits[g * cols + j]! + bits[(g + 1) * cols + j]! + bits[(g + 2) * cols + j]! + bits[(g + 3) * cols + j]!, `col ${j} rows ${g}..`).toBe(2);
  }
  for (let bi = 0; bi < rows; bi += 4) {
    for (let bj = 0; bj < cols; bj += 4) {
      const at = (c: number) => (bi + (c >> 2)) * cols + bj + (c & 3);
      let best = -Infinity;
      for (let p = 0; p < 1 << 16; p++) {
        let ok = true;
        for (let r = 0; r < 4 && ok; r++) ok = ((p >> (4 * r)) & 0xf).toString(2).replace(/0/g, '').length === 2;
        for (let c = 0; c < 4 && ok; c++) ok = ((p >> c) & 1) + ((p >> (c + 4)) & 1) + ((p >> (c + 8)) & 1) + ((p >> (c + 12)) & 1) === 2;
        if (!ok) continue;
        let sum = 0;
        for (let c = 0; c < 16; c++) if ((p >> c) & 1) sum += Math.abs(w[at(c)]!);
        best = Math.max(best, sum);
      }
      let kept = 0;
      for (let c = 0; c < 16; c++) if (bits[at(c)]) kept += Math.abs(w[at(c)]!);
      expect(kept, `block ${bi},${bj}`).toBeCloseTo(best, 9);
    }
  }
}

function maskBits(m: ReturnType<typeof nmMask>): number[] {
  return Array.from({ length: m.shape[0]! * m.shape[1]! }, (_, i) => (m.bits[i >>> 5]! >>> (i & 31)) & 1);
}
