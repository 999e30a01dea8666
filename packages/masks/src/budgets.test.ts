import { ArgumentError, Random } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { istImportanceUpdate, layerBudgets, sampleLayers, type LayerSpec } from './budgets.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const sum = (s: readonly number[]) => s.reduce((a, b) => a + b, 0);

/**
 * Real-valued densities of RigL's get_sparsities_erdos_renyi, written from its description: eps solves
 * eps * sum(p_i n_i) = K - dense entries over the non-dense layers; layers whose eps * p_i exceeds 1 become
 * dense (those with the largest p_i first) and eps is solved again.
 */
function riglDensities(layers: LayerSpec[], K: number, kernel: boolean, power = 1): number[] {
  const n = layers.map((l) => prod(l.shape));
  const p = layers.map((l) => {
    if (kernel) return (sum(l.shape) / prod(l.shape)) ** power;
    const [a, b] = l.shape.slice(-2) as [number, number];
    return (a + b) / (a * b);
  });
  const dense = layers.map((l) => l.dense === true);
  for (;;) {
    const rhs = K - sum(n.filter((_, i) => dense[i]));
    const divisor = sum(n.map((ni, i) => (dense[i] ? 0 : p[i]! * ni)));
    const eps = rhs / divisor;
    const maxP = Math.max(...p.filter((_, i) => !dense[i]));
    if (maxP * eps > 1) {
      p.forEach((pi, i) => !dense[i] && pi === maxP && (dense[i] = true));
      continue;
    }
    return p.map((pi, i) => (dense[i] ? 1 : eps * pi));
  }
}

const layersArb = fc.array(
  fc.record({
    shape: fc.oneof(
      fc.tuple(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 })),
      fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 16 })),
    ),
  }),
  { minLength: 1, maxLength: 6 },
);

describe('layerBudgets', () => {
  it('meets the global count exactly, never exceeds a layer, and rounds each RigL quota to floor or ceil', () => {
    fc.assert(
      fc.property(layersArb, fc.double({ min: 0, max: 0.99, noNaN: true }), fc.constantFrom('uniform', 'er', 'erk'), (layers, s, method) => {
        const budgets = layerBudgets(layers, s, { method });
        const total = sum(layers.map((l) => prod(l.shape)));
        const K = Math.round((1 - s) * total);
        expect(sum(budgets.map((b) => b.keep))).toBe(K);
        const ref =
          method === 'uniform' ? layers.map(() => K / total) : riglDensities(layers, K, method === 'erk');
        budgets.forEach((b, i) => {
          expect(b.size).toBe(prod(layers[i]!.shape));
          expect(Number.isInteger(b.keep) && b.keep >= 0, `keep ${b.keep}`).toBe(true);
          expect(b.keep).toBeLessThanOrEqual(b.size);
          expect(b.density).toBeLessThanOrEqual(1);
          expect(b.density).toBeCloseTo(b.keep / b.size, 12);
          expect(Math.abs(b.keep - ref[i]! * b.size)).toBeLessThan(1 + 1e-9);
        });
      }),
    );
  });

  it('caps at density 1: a small layer next to a large one becomes dense under ERK at low sparsity', () => {
    const layers = [{ shape: [4, 4], name: 'small' }, { shape: [256, 256], name: 'big' }];
    const [small, big] = layerBudgets(layers, 0.5, { method: 'erk' });
    expect(small!.density).toBe(1);
    expect(small!.keep + big!.keep).toBe(Math.round(0.5 * (16 + 65536)));
    expect(big!.keep).toBe(32776 - 16);
    expect(small!.name).toBe('small');
    const ref = riglDensities(layers, 32776, true);
    expect(ref[0]).toBe(1);
  });

  it('uses the last two dims for ER, all dims for ERK, and honours erkPowerScale', () => {
    const conv = { shape: [3, 3, 16, 32] };
    const fc1 = { shape: [512, 10] };
    const er = layerBudgets([conv, fc1], 0.9, { method: 'er' });
    const erk = layerBudgets([conv, fc1], 0.9, { method: 'erk' });
    const K = Math.round(0.1 * (4608 + 5120));
    for (const [got, ref] of [
      [er, riglDensities([conv, fc1], K, false)],
      [erk, riglDensities([conv, fc1], K, true)],
      [layerBudgets([conv, fc1], 0.9, { method: 'erk', erkPowerScale: 0.5 }), riglDensities([conv, fc1], K, true, 0.5)],
    ] as const) {
      got.forEach((b, i) => expect(Math.abs(b.keep - ref[i]! * b.size)).toBeLessThan(1));
    }
    expect(er[0]!.density).not.toBeCloseTo(erk[0]!.density, 3);
    expect(() => layerBudgets([{ shape: [10] }], 0.5, { method: 'er' })).toThrow(/rank >= 2/);
  });

  it('keeps dense layers dense and counts them in the budget; refuses an infeasible budget', () => {
    const layers = [{ shape: [10, 10], dense: true }, { shape: [30, 30] }, { shape: [20, 20] }];
    for (const method of ['uniform', 'er', 'erk'] as const) {
      const b = layerBudgets(layers, 0.8, { method });
      expect(b[0]!.keep).toBe(100);
      expect(sum(b.map((x) => x.keep))).toBe(Math.round(0.2 * 1400));
    }
    const uni = layerBudgets(layers, 0.8);
    expect(Math.abs(uni[1]!.density - uni[2]!.density)).toBeLessThan(1 / 400 + 1 / 900);
    expect(() => layerBudgets([{ shape: [10, 10], dense: true }, { shape: [2, 2] }], 0.5)).toThrow(/dense layers keep 100/);
    expect(() => layerBudgets(layers, 1)).toThrow(/sparsity must be a number in \[0, 1\)/);
    expect(() => layerBudgets([], 0.5)).toThrow(ArgumentError);
    expect(() => layerBudgets(layers, 0.5, { method: 'random' as 'er' })).toThrow(/method/);
  });
});

describe('IST layer sampling', () => {
  it('samples k distinct sorted layers, reproducibly from the seed', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 12 }), fc.nat(), fc.integer(), (imp, kSeed, seed) => {
        const k = kSeed % (imp.length + 1);
        const a = sampleLayers(imp, k, new Random(seed));
        expect(a.length).toBe(k);
        expect(new Set(a).size).toBe(k);
        for (let i = 1; i < k; i++) expect(a[i]!).toBeGreaterThan(a[i - 1]!);
        expect(Array.from(sampleLayers(imp, k, new Random(seed)))).toEqual(Array.from(a));
      }),
    );
  });

  it('draws each layer with probability proportional to sigmoid(importance) (k = 1, 40000 draws)', () => {
    const imp = [-2, 0, 1, 3];
    const w = imp.map((x) => 1 / (1 + Math.exp(-x)));
    const total = sum(w);
    const rng = new Random(123);
    const hits = [0, 0, 0, 0];
    const draws = 40_000;
    for (let t = 0; t < draws; t++) hits[sampleLayers(imp, 1, rng)[0]!]!++;
    hits.forEach((h, i) => expect(Math.abs(h / draws - w[i]! / total)).toBeLessThan(0.01));
  });

  it('never picks a zero-weight layer while positive weights remain (proportional weighting)', () => {
    const rng = new Random(5);
    for (let t = 0; t < 200; t++) expect(Array.from(sampleLayers([0, 2, 0, 1], 2, rng, { weighting: 'proportional' }))).toEqual([1, 3]);
    expect(Array.from(sampleLayers([0, 2, 0, 1], 4, rng, { weighting: 'proportional' }))).toEqual([0, 1, 2, 3]);
    expect(() => sampleLayers([1, -1], 1, rng, { weighting: 'proportional' })).toThrow(/importance\[1\]/);
    expect(() => sampleLayers([1, NaN], 1, rng)).toThrow(/importance\[1\] is NaN/);
    expect(() => sampleLayers([1, 2], 3, rng)).toThrow(/k must be an integer in \[0, 2\]/);
  });

  it('istImportanceUpdate applies -lr * (r - mean r) * p (1 - p) to each suppressed layer', () => {
    const imp = [0.5, -1, 2, 0];
    const trials = [
      { suppressed: [0, 2], loss: 1.2 },
      { suppressed: [1, 2], loss: 0.7 },
      { suppressed: [3], loss: 2.5 },
    ];
    const lr = 3;
    const r = trials.map((t) => Math.exp(-t.loss));
    const mean = sum(r) / r.length;
    const expected = [...imp];
    trials.forEach((t, j) =>
      t.suppressed.forEach((i) => {
        const p = 1 / (1 + Math.exp(-imp[i]!));
        expected[i] = expected[i]! - lr * (r[j]! - mean) * p * (1 - p);
      }),
    );
    const got = istImportanceUpdate(imp, trials, lr);
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 14));
    expect(() => istImportanceUpdate(imp, [{ suppressed: [4], loss: 1 }])).toThrow(/suppressed\[0\] = 4/);
  });
});
