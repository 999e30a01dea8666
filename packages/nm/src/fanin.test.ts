import { count, countPerRow, isKept, maskFromBooleans, type Mask } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantFanInRegrow } from './fanin.js';
import { isNM, nmMask } from './mask.js';

/** Exhaustive: the subset of `idx` of size k with the largest sum of score (unique for continuous random scores). */
function bestSubset(idx: number[], k: number, score: (i: number) => number): Set<number> {
  let best: number[] = [];
  let bestSum = -Infinity;
  for (let bits = 0; bits < 1 << idx.length; bits++) {
    const pick = idx.filter((_, q) => (bits >> q) & 1);
    if (pick.length !== k) continue;
    const s = pick.reduce((a, i) => a + score(i), 0);
    if (s > bestSum) [best, bestSum] = [pick, s];
  }
  return new Set(best);
}

/** Brute-force reference of one step: survivors by exhaustive |w| search, then per unit the exhaustive best |g| refill. */
function reference(mask: Mask, w: Float32Array, g: Float32Array, fraction: number, unit: number, quota: (u: number) => number): Set<number> {
  const size = w.length;
  const active = [...Array(size).keys()].filter((i) => isKept(mask, i));
  const survivors = bestSubset(active, active.length - Math.floor(fraction * active.length), (i) => Math.abs(w[i]!));
  const out = new Set(survivors);
  for (let u = 0; u < size / unit; u++) {
    const idx = Array.from({ length: unit }, (_, q) => u * unit + q);
    const have = idx.filter((i) => survivors.has(i)).length;
    for (const i of bestSubset(idx.filter((i) => !survivors.has(i)), Math.max(0, quota(u) - have), (i) => Math.abs(g[i]!))) out.add(i);
  }
  return out;
}

function randomFanInMask(rows: number, cols: number, k: number, rng: Random): Mask {
  const b = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (const j of rng.sample(k, cols)) b[r * cols + j] = 1;
  return maskFromBooleans(b, [rows, cols]);
}

const keptSet = (m: Mask) => new Set([...Array(m.shape[0]! * m.shape[1]!).keys()].filter((i) => isKept(m, i)));

describe('constantFanInRegrow', () => {
  it('keeps every row at the same fan-in and equals the brute-force drop and |grad| regrowth', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 2, max: 3 }), fc.integer({ min: 4, max: 6 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, rows, cols, fraction) => {
        const rng = new Random(seed);
        const k = rng.int(1, Math.min(3, cols - 1) + 1);
        let mask = randomFanInMask(rows, cols, k, rng);
        for (let step = 0; step < 3; step++) {
          const w = randomTensor([rows, cols], rng, { dist: 'normal' });
          const g = randomTensor([rows, cols], rng, { dist: 'normal' });
          const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction });
          expect(Array.from(countPerRow(r.mask))).toEqual(new Array(rows).fill(k));
          expect(r.fanIn).toBe(k);
          expect(keptSet(r.mask)).toEqual(reference(mask, w.data, g.data, fraction, cols, () => k));
          const before = keptSet(mask);
          expect([...r.dropped].every((i) => before.has(i) && !isKept(r.mask, i))).toBe(true);
          expect([...r.grown].every((i) => !before.has(i) && isKept(r.mask, i))).toBe(true);
          mask = r.mask;
        }
      }),
      { numRuns: 60 },
    );
  });

  it('regrown entries are the highest-|grad| among each row\'s eligible entries', () => {
    const rng = new Random(21);
    const [rows, cols, k] = [6, 16, 4];
    let mask = randomFanInMask(rows, cols, k, rng);
    for (let step = 0; step < 5; step++) {
      const w = randomTensor([rows, cols], rng, { dist: 'normal' });
      const g = randomTensor([rows, cols], rng, { dist: 'normal' });
      const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction: 0.5 });
      expect(r.dropped.length).toBeGreaterThan(0);
      expect(Array.from(countPerRow(r.mask))).toEqual(new Array(rows).fill(k));
      // Survivors of the drop: the largest |w| of the previous mask (layer-wise).
      const prev = [...keptSet(mask)].sort((a, b) => Math.abs(w.data[b]!) - Math.abs(w.data[a]!));
      const survivors = new Set(prev.slice(0, prev.length - Math.floor(0.5 * prev.length)));
      for (let row = 0; row < rows; row++) {
        const eligible = Array.from({ length: cols }, (_, j) => row * cols + j).filter((i) => !survivors.has(i));
        const regrown = eligible.filter((i) => isKept(r.mask, i)).map((i) => Math.abs(g.data[i]!));
        const passed = eligible.filter((i) => !isKept(r.mask, i)).map((i) => Math.abs(g.data[i]!));
        if (regrown.length && passed.length) expect(Math.min(...regrown)).toBeGreaterThanOrEqual(Math.max(...passed));
      }
      mask = r.mask;
    }
  });

  it('with nm keeps the mask exactly N:M, regrowing inside each group (brute force)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom([2, 4], [1, 4], [2, 8]), fc.double({ min: 0, max: 1, noNaN: true }), (seed, [n, m], fraction) => {
        const rng = new Random(seed);
        const [rows, cols] = [2, m! * 2];
        let mask = nmMask(randomTensor([rows, cols], rng, { dist: 'normal' }), { n: n!, m: m! });
        for (let step = 0; step < 3; step++) {
          const w = randomTensor([rows, cols], rng, { dist: 'normal' });
          const g = randomTensor([rows, cols], rng, { dist: 'normal' });
          const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction, nm: { n: n!, m: m! } });
          expect(isNM(r.mask, { n: n!, m: m!, exact: true }).valid).toBe(true);
          expect(r.fanIn).toBe((cols * n!) / m!);
          expect(keptSet(r.mask)).toEqual(reference(mask, w.data, g.data, fraction, m!, () => n!));
          mask = r.mask;
        }
      }),
      { numRuns: 40 },
    );
  });

  it('ablates a neuron without salient entries and spreads its budget over the others', () => {
    const rng = new Random(4);
    const [rows, cols, k] = [4, 8, 3];
    const mask = randomFanInMask(rows, cols, k, rng);
    const w = randomTensor([rows, cols], rng, { dist: 'normal', mean: 0, std: 1 });
    const g = randomTensor([rows, cols], rng, { dist: 'normal' });
    // Neuron 2: tiny weights and no gradient, so none of its entries is salient.
    for (let j = 0; j < cols; j++) [w.data[2 * cols + j], g.data[2 * cols + j]] = [1e-6 * (j + 1), 0];
    for (let i = 0; i < rows * cols; i++) if (Math.floor(i / cols) !== 2) w.data[i] = Math.sign(w.data[i]!) * (0.1 + Math.abs(w.data[i]!));
    const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction: 0.3, ablation: { minSalient: 1 } });
    expect(Array.from(r.ablated)).toEqual([2]);
    expect(r.fanIn).toBe(Math.floor(12 / 3));
    expect(Array.from(countPerRow(r.mask))).toEqual([4, 4, 0, 4]);
    expect(count(r.mask)).toBeLessThanOrEqual(count(mask));
    // The active rows follow the brute-force rule with the new fan-in.
    const ref = reference(mask, w.data, g.data, 0.3, cols, (u) => (u === 2 ? 0 : 4));
    for (let row = 0; row < rows; row++) for (let j = 0; j < cols; j++) if (row !== 2) expect(isKept(r.mask, row * cols + j)).toBe(ref.has(row * cols + j));
    // Without ablation the same step keeps the fan-in at 3 everywhere.
    expect(Array.from(countPerRow(constantFanInRegrow(mask, { weights: w, grads: g, fraction: 0.3 }).mask))).toEqual([3, 3, 3, 3]);
  });

  it('with ablation, every active neuron has the same fan-in and the layer never exceeds its budget', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, minSalient, fraction) => {
        const rng = new Random(seed);
        const [rows, cols, k] = [6, 8, rng.int(1, 5)];
        let mask = randomFanInMask(rows, cols, k, rng);
        const budget = count(mask);
        for (let step = 0; step < 4; step++) {
          const w = randomTensor([rows, cols], rng, { dist: 'normal' });
          const g = randomTensor([rows, cols], rng, { dist: 'normal' });
          // Some neurons get much weaker weights and gradients.
          for (let r = 0; r < rows; r++) if (rng.bernoulli(0.3)) for (let j = 0; j < cols; j++) [w.data[r * cols + j], g.data[r * cols + j]] = [w.data[r * cols + j]! * 1e-3, g.data[r * cols + j]! * 1e-3];
          const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction, ablation: { minSalient, budget } });
          const perRow = Array.from(countPerRow(r.mask));
          const ablated = new Set(r.ablated);
          perRow.forEach((c, row) => expect(c).toBe(ablated.has(row) ? 0 : r.fanIn));
          expect(r.fanIn).toBeLessThanOrEqual(cols);
          expect(count(r.mask)).toBeLessThanOrEqual(budget);
          // floor(budget / neurons) per neuron: less than one entry per active neuron is lost to rounding.
          expect(count(r.mask)).toBeGreaterThan(budget - (rows - ablated.size));
          expect(rows - ablated.size).toBeGreaterThanOrEqual(Math.ceil(budget / cols));
          mask = r.mask;
        }
      }),
      { numRuns: 40 },
    );
  });

  it('rejects masks without constant fan-in, non-N:M masks with nm, and bad options', () => {
    const w = tensor(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4]);
    const uneven = maskFromBooleans([1, 1, 0, 0, 1, 0, 0, 0], [2, 4]);
    expect(() => constantFanInRegrow(uneven, { weights: w, grads: w, fraction: 0.5 })).toThrow(/not constant/);
    expect(() => constantFanInRegrow(uneven, { weights: w, grads: w, fraction: 0.5, nm: { n: 2, m: 4 } })).toThrow(/not exactly 2:4/);
    const ok = maskFromBooleans([1, 1, 0, 0, 1, 0, 1, 0], [2, 4]);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 2 })).toThrow(ArgumentError);
    expect(() => constantFanInRegrow(ok, { weights: tensor(new Float32Array(4), [1, 4]), grads: w, fraction: 0.5 })).toThrow(/weights shape/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, nm: { n: 2, m: 4 }, ablation: { minSalient: 1 } })).toThrow(/ablation/);
  });
});
