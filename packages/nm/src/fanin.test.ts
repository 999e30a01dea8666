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

  /**
   * The ablation rule, computed here by sorting (no topKMask): salient = the (active − ⌊f·active⌋) largest
   * |w| of the active entries ∪ the ⌊f·active⌋ largest |g| of all entries; threshold max(1, ⌊γ·⌊B/rows⌋⌋),
   * lowered to the count at rank ⌊B/cols⌋ of the descending ranking; k' = ⌊B / rows that stay⌋; the rows
   * that stay keep the largest |w| of their active entries among the layer's (active − ⌊f·active⌋) best
   * (at most k' each) and are refilled by |g|.
   */
  function ablationReference(mask: Mask, w: Float32Array, g: Float32Array, fraction: number, gammaSal: number, budget: number) {
    const [rows, cols] = mask.shape as [number, number];
    const size = rows * cols;
    const all = [...Array(size).keys()];
    const active = all.filter((i) => isKept(mask, i));
    const nPrune = Math.floor(fraction * active.length);
    const nKeep = active.length - nPrune;
    const byW = (xs: number[]) => [...xs].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b);
    const byG = (xs: number[]) => [...xs].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!) || a - b);
    const salient = new Set([...byW(active).slice(0, nKeep), ...byG(all).slice(0, nPrune)]);
    const counts = Array.from({ length: rows }, (_, r) => all.filter((i) => Math.floor(i / cols) === r && salient.has(i)).length);
    let threshold = Math.max(1, Math.floor(gammaSal * Math.floor(budget / rows)));
    const ranked = [...counts].sort((a, b) => b - a);
    if (Math.floor(budget / cols) < rows) threshold = Math.min(threshold, ranked[Math.floor(budget / cols)]!);
    const ablated = counts.flatMap((c, r) => (c < threshold ? [r] : []));
    const stays = (i: number) => !ablated.includes(Math.floor(i / cols));
    const fanIn = Math.floor(budget / (rows - ablated.length));
    const best = new Set(byW(active.filter(stays)).slice(0, nKeep));
    const out = new Set<number>();
    for (let r = 0; r < rows; r++) {
      if (ablated.includes(r)) continue;
      const row = all.filter((i) => Math.floor(i / cols) === r);
      const keep = byW(row.filter((i) => best.has(i))).slice(0, fanIn);
      const grow = byG(row.filter((i) => !keep.includes(i))).slice(0, fanIn - keep.length);
      for (const i of [...keep, ...grow]) out.add(i);
    }
    return { salient: counts, threshold, ablated, fanIn, kept: out };
  }

  it('ablates exactly the neurons with fewer than max(1, floor(gammaSal * k0)) salient entries and spreads the budget over the others', () => {
    const [rows, cols, k] = [6, 10, 4];
    const budget = rows * k; // 24
    const b = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) b[r * cols + 2 * j] = 1; // columns 0, 2, 4, 6
    const mask = maskFromBooleans(b, [rows, cols]);
    const w = new Float32Array(rows * cols);
    const g = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        if (r === 1) w[i] = j === 0 ? 0.5 : 1e-3 * (j + 1); // one large weight: 1 salient entry
        else if (r === 4) w[i] = 1e-4 * (j + 1); // nothing salient
        else {
          w[i] = 1 + 0.01 * i;
          g[i] = j % 2 === 1 ? 0.1 * (1 + j + r) : 0; // inactive (odd) columns carry the regrowth scores
        }
      }
    }
    // active 24, nPrune = floor(0.3 * 24) = 7: the 17 survivors are the 16 large weights and row 1's 0.5;
    // the 7 regrowth picks are all in rows 0, 2, 3, 5. gammaSal 0.5 of k0 = 4: at least 2 salient entries.
    const r = constantFanInRegrow(mask, { weights: tensor(w, [rows, cols]), grads: tensor(g, [rows, cols]), fraction: 0.3, ablation: { gammaSal: 0.5, budget } });
    expect(r.threshold).toBe(2);
    expect(Array.from(r.salient!)).toEqual(ablationReference(mask, w, g, 0.3, 0.5, budget).salient);
    expect(r.salient![1]).toBe(1);
    expect(r.salient![4]).toBe(0);
    expect(Array.from(r.ablated)).toEqual([1, 4]);
    expect(r.fanIn).toBe(6); // floor(24 / 4)
    expect(Array.from(countPerRow(r.mask))).toEqual([6, 0, 6, 6, 0, 6]);
    expect(count(r.mask)).toBe(budget);
    // every surviving row keeps its 4 weights and regrows its 2 inactive entries with the largest |g| (columns 9 and 7)
    for (const row of [0, 2, 3, 5]) for (const j of [0, 2, 4, 6, 7, 9]) expect(isKept(r.mask, row * cols + j), `${row},${j}`).toBe(true);
    expect(keptSet(r.mask)).toEqual(ablationReference(mask, w, g, 0.3, 0.5, budget).kept);
    // the ablated rows' entries are all reported dropped
    for (const row of [1, 4]) for (const j of [0, 2, 4, 6]) expect(r.dropped).toContain(row * cols + j);
    // with gammaSal 0.25 the threshold is max(1, floor(1)) = 1: only row 4 goes, fan-in floor(24 / 5) = 4
    const lower = constantFanInRegrow(mask, { weights: tensor(w, [rows, cols]), grads: tensor(g, [rows, cols]), fraction: 0.3, ablation: { gammaSal: 0.25, budget } });
    expect(Array.from(lower.ablated)).toEqual([4]);
    expect(lower.fanIn).toBe(4);
    expect(count(lower.mask)).toBe(20);
    // the same with an explicit count of 2
    expect(Array.from(constantFanInRegrow(mask, { weights: tensor(w, [rows, cols]), grads: tensor(g, [rows, cols]), fraction: 0.3, ablation: { minSalient: 2, budget } }).ablated)).toEqual([1, 4]);
    // without ablation the same step keeps the fan-in at 4 everywhere
    expect(Array.from(countPerRow(constantFanInRegrow(mask, { weights: tensor(w, [rows, cols]), grads: tensor(g, [rows, cols]), fraction: 0.3 }).mask))).toEqual([4, 4, 4, 4, 4, 4]);
  });

  it('keeps at least floor(budget / cols) + 1 neurons: the threshold drops to the count at that rank', () => {
    const [rows, cols, k] = [4, 4, 3];
    const budget = rows * k; // 12: floor(12 / 4) + 1 = 4 neurons, all of them
    const mask = maskFromBooleans(Array.from({ length: 16 }, (_, i) => i % 4 !== 3), [rows, cols]);
    const w = Float32Array.from({ length: 16 }, (_, i) => (Math.floor(i / 4) === 2 ? 1e-6 * (i + 1) : 1 + i));
    const g = new Float32Array(16);
    const r = constantFanInRegrow(mask, { weights: tensor(w, [4, 4]), grads: tensor(g, [4, 4]), fraction: 0.5, ablation: { gammaSal: 1, budget } });
    // row 2 has no salient entry (nPrune = 6 picks of |g| = 0 go to the lowest indices, rows 0 and 1), but the 4th-ranked count is 0
    expect(r.salient![2]).toBe(0);
    expect(r.threshold).toBe(0);
    expect(r.ablated.length).toBe(0);
    expect(r.fanIn).toBe(3);
    // 6 rows of 4, budget 12: floor(12 / 4) + 1 = 4 must stay; rows 4 and 5 below the threshold (one each), rows 0-3 above
    const m6 = maskFromBooleans(Array.from({ length: 24 }, (_, i) => i % 4 < 2), [6, 4]);
    const w6 = Float32Array.from({ length: 24 }, (_, i) => (Math.floor(i / 4) >= 4 ? 1e-6 * (i + 1) : 1 + i));
    const g6 = Float32Array.from({ length: 24 }, (_, i) => (Math.floor(i / 4) >= 4 && i % 4 === 3 ? 1e-3 * i : 0));
    const r6 = constantFanInRegrow(m6, { weights: tensor(w6, [6, 4]), grads: tensor(g6, [6, 4]), fraction: 0.2, ablation: { gammaSal: 1, budget: 12 } });
    expect(Array.from(r6.salient!)).toEqual(ablationReference(m6, w6, g6, 0.2, 1, 12).salient);
    expect(Array.from(r6.ablated)).toEqual(ablationReference(m6, w6, g6, 0.2, 1, 12).ablated);
    expect(6 - r6.ablated.length).toBeGreaterThanOrEqual(4);
  });

  it('with ablation equals the rule computed by sorting, every active neuron has the same fan-in and the layer holds rows_on * floor(budget / rows_on) entries', () => {
    let ablatedSome = 0;
    let revived = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, gammaSal, fraction) => {
        const rng = new Random(seed);
        const [rows, cols, k] = [6, 8, rng.int(1, 5)];
        let mask = randomFanInMask(rows, cols, k, rng);
        const budget = count(mask);
        for (let step = 0; step < 4; step++) {
          const w = randomTensor([rows, cols], rng, { dist: 'normal' });
          const g = randomTensor([rows, cols], rng, { dist: 'normal' });
          // inactive weights are 0, as in training through the mask; some neurons get much weaker weights and gradients
          for (let i = 0; i < rows * cols; i++) if (!isKept(mask, i)) w.data[i] = 0;
          for (let r = 0; r < rows; r++) if (rng.bernoulli(0.3)) for (let j = 0; j < cols; j++) [w.data[r * cols + j], g.data[r * cols + j]] = [w.data[r * cols + j]! * 1e-3, g.data[r * cols + j]! * 1e-3];
          const r = constantFanInRegrow(mask, { weights: w, grads: g, fraction, ablation: { gammaSal, budget } });
          const ref = ablationReference(mask, w.data as Float32Array, g.data as Float32Array, fraction, gammaSal, budget);
          expect(Array.from(r.salient!)).toEqual(ref.salient);
          expect(r.threshold).toBe(ref.threshold);
          expect(Array.from(r.ablated)).toEqual(ref.ablated);
          expect(r.fanIn).toBe(ref.fanIn);
          expect(keptSet(r.mask)).toEqual(ref.kept);
          const perRow = Array.from(countPerRow(r.mask));
          const ablated = new Set(r.ablated);
          perRow.forEach((c, row) => expect(c).toBe(ablated.has(row) ? 0 : r.fanIn));
          const on = rows - ablated.size;
          expect(count(r.mask)).toBe(on * Math.floor(budget / on));
          expect(on).toBeGreaterThanOrEqual(Math.floor(budget / cols) + 1);
          const before = countPerRow(mask);
          ablatedSome += ablated.size > 0 ? 1 : 0;
          revived += perRow.filter((c, row) => c > 0 && before[row] === 0).length;
          mask = r.mask;
        }
      }),
      { numRuns: 60 },
    );
    // the runs above did ablate neurons, and brought some back
    expect(ablatedSome).toBeGreaterThan(0);
    expect(revived).toBeGreaterThan(0);
  });

  it('brings an ablated neuron back when its gradients become salient', () => {
    const rng = new Random(8);
    const [rows, cols, k] = [4, 8, 3];
    const budget = rows * k;
    const mask = randomFanInMask(rows, cols, k, rng);
    const w = randomTensor([rows, cols], rng, { dist: 'normal' });
    const g = randomTensor([rows, cols], rng, { dist: 'normal' });
    for (let j = 0; j < cols; j++) [w.data[2 * cols + j], g.data[2 * cols + j]] = [isKept(mask, 2 * cols + j) ? 1e-6 * (j + 1) : 0, 0];
    for (let i = 0; i < rows * cols; i++) if (!isKept(mask, i)) w.data[i] = 0;
    const first = constantFanInRegrow(mask, { weights: w, grads: g, fraction: 0.3, ablation: { gammaSal: 0.3, budget } });
    expect(Array.from(first.ablated)).toEqual([2]);
    expect(first.fanIn).toBe(4);
    // next update: row 2's gradients are the layer's largest
    const w2 = randomTensor([rows, cols], rng, { dist: 'normal' });
    for (let i = 0; i < rows * cols; i++) if (!isKept(first.mask, i)) w2.data[i] = 0;
    const g2 = randomTensor([rows, cols], rng, { dist: 'normal', std: 0.01 });
    for (let j = 0; j < cols; j++) g2.data[2 * cols + j] = 10 + j;
    const second = constantFanInRegrow(first.mask, { weights: w2, grads: g2, fraction: 0.3, ablation: { gammaSal: 0.3, budget } });
    expect(second.ablated.length).toBe(0);
    expect(second.fanIn).toBe(3);
    expect(Array.from(countPerRow(second.mask))).toEqual([3, 3, 3, 3]);
    expect(count(second.mask)).toBe(budget);
    // the revived row regrew its 3 largest |g| (columns 7, 6, 5), all reported grown
    for (const j of [5, 6, 7]) {
      expect(isKept(second.mask, 2 * cols + j)).toBe(true);
      expect(second.grown).toContain(2 * cols + j);
    }
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
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: {} })).toThrow(/exactly one of gammaSal and minSalient/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: { gammaSal: 0.3, minSalient: 1 } })).toThrow(/exactly one/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: { gammaSal: 1.5 } })).toThrow(/gammaSal must be a number in \(0, 1\]/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: { minSalient: 0.3 } })).toThrow(/minSalient must be an integer/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: { gammaSal: 0.3, budget: 1 } })).toThrow(/budget must be an integer in \[2, 8\]/);
    expect(() => constantFanInRegrow(ok, { weights: w, grads: w, fraction: 0.5, ablation: { gammaSal: 0.3, budget: 9 } })).toThrow(/budget/);
  });
});
