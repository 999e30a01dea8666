import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbsHistogram, ActivationMeasure, DensityAccumulator, percentileThreshold, sortedAbs } from './measure.js';

/** Heavy-tailed |x| spanning many decades, with some exact zeros (as ReLU-like activations have). */
function activations(rng: Random, n: number, zeroRate = 0.2): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() < zeroRate ? 0 : rng.normal() * Math.exp(3 * rng.normal())));
}

describe('percentileThreshold', () => {
  it('is the value with floor(q n) values strictly below and more than q n at or below (brute-force count)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (ints, a, b) => {
          fc.pre(a <= b);
          const values = ints.map((v) => v / 4);
          const n = values.length;
          const t = percentileThreshold(values, a / b);
          const k = Math.min(n - 1, Math.floor((a * n) / b)); // integer arithmetic: no rounding question
          expect(values).toContain(t);
          // t is the k-th smallest: at most k values below it, more than k at or below it.
          expect(values.filter((v) => v < t).length).toBeLessThanOrEqual(k);
          expect(values.filter((v) => v <= t).length).toBeGreaterThan(k);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('as a magnitude threshold drops exactly q of distinct values', () => {
    const rng = new Random(1);
    const x = Float32Array.from({ length: 1000 }, () => rng.normal());
    for (const q of [0, 0.1, 0.29, 0.5, 0.9]) {
      const t = percentileThreshold(Array.from(x, Math.abs), q);
      expect(Array.from(x).filter((v) => Math.abs(v) < t).length).toBe(Math.round(q * 1000));
    }
  });

  it('refuses an empty input, NaN and q outside [0, 1]', () => {
    expect(() => percentileThreshold([], 0.5)).toThrow(ArgumentError);
    expect(() => percentileThreshold([1, NaN], 0.5)).toThrow(/values\[1\] is NaN/);
    expect(() => percentileThreshold([1], 1.5)).toThrow(/q must be in \[0, 1\]/);
    expect(() => percentileThreshold([1], -0.1)).toThrow(ArgumentError);
  });
});

describe('DensityAccumulator', () => {
  /** Per-token fractions computed directly, then summarized by sorting. */
  function reference(x: Float32Array, tokens: number, f: number, pred: (v: number) => boolean, qs: number[]) {
    const fr = Array.from({ length: tokens }, (_, t) => Array.from(x.subarray(t * f, (t + 1) * f)).filter(pred).length / f);
    const sorted = [...fr].sort((a, b) => a - b);
    return {
      mean: fr.reduce((a, b) => a + b, 0) / tokens,
      min: sorted[0],
      max: sorted[tokens - 1],
      quantiles: qs.map((q) => ({ q, value: sorted[Math.min(tokens - 1, Math.floor(q * tokens + 1e-9))] })),
    };
  }

  it('equals per-token fractions computed directly, streamed in batches or merged', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 40 }), (seed, f, tokens) => {
        const rng = new Random(seed);
        const x = Float32Array.from({ length: tokens * f }, () => (rng.next() < 0.4 ? 0 : rng.next() < 0.3 ? 1e-8 : rng.normal()));
        const qs = [0, 0.1, 0.5, 0.9, 1];
        const one = new DensityAccumulator(f, { eps: 1e-6 }).add(x, tokens);
        const split = Math.floor(tokens / 2);
        const a = new DensityAccumulator(f, { eps: 1e-6 }).add(x.subarray(0, split * f), split);
        const b = new DensityAccumulator(f, { eps: 1e-6 }).add(x.subarray(split * f), tokens - split);
        a.merge(b);
        const refZeros = reference(x, tokens, f, (v) => v === 0, qs);
        const refSmall = reference(x, tokens, f, (v) => Math.abs(v) <= 1e-6, qs);
        for (const acc of [one, a, DensityAccumulator.fromState(JSON.parse(JSON.stringify(one.state())))]) {
          expect(acc.tokens).toBe(tokens);
          const z = acc.zeros(qs);
          const s = acc.small(qs);
          expect(z.mean).toBeCloseTo(refZeros.mean, 12);
          expect(s.mean).toBeCloseTo(refSmall.mean, 12);
          expect({ ...z, mean: 0 }).toEqual({ ...refZeros, mean: 0 });
          expect({ ...s, mean: 0 }).toEqual({ ...refSmall, mean: 0 });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('refuses bad shapes and options', () => {
    expect(() => new DensityAccumulator(0)).toThrow(ArgumentError);
    expect(() => new DensityAccumulator(4, { eps: -1 })).toThrow(/eps/);
    expect(() => new DensityAccumulator(4).add(new Float32Array(7), 2)).toThrow(ShapeError);
    expect(() => new DensityAccumulator(4).zeros()).toThrow(/no tokens/);
    expect(() => new DensityAccumulator(4).merge(new DensityAccumulator(5))).toThrow(ArgumentError);
  });
});

describe('AbsHistogram', () => {
  it('is exact below the cap: percentiles equal the sorted order statistic', () => {
    const rng = new Random(2);
    const x = activations(rng, 500);
    const h = new AbsHistogram({ exactCap: 1000 });
    for (let b = 0; b < 5; b++) h.add(x.subarray(b * 100, (b + 1) * 100));
    expect(h.exact).toBe(true);
    const sorted = sortedAbs(x);
    for (const q of [0, 0.1, 0.37, 0.5, 0.99, 1]) {
      const p = h.percentile(q);
      expect(p.exact).toBe(true);
      expect(p.value).toBe(sorted[Math.min(499, Math.floor(q * 500 + 1e-9))]);
      expect(p.value).toBe(percentileThreshold(sorted, q));
    }
  });

  it('above the cap brackets the true percentile within one bin (ratio 10^(1/binsPerDecade))', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 5, max: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), (seed, perDecade, q) => {
        const rng = new Random(seed);
        const x = activations(rng, 3000);
        const h = new AbsHistogram({ exactCap: 100, binsPerDecade: perDecade, minValue: 1e-4, maxValue: 1e3 });
        h.add(x);
        expect(h.exact).toBe(false);
        const truth = percentileThreshold(Array.from(x, Math.abs), q);
        const p = h.percentile(q);
        expect(p.lower).toBeLessThanOrEqual(truth);
        expect(p.upper).toBeGreaterThanOrEqual(truth);
        expect(p.value).toBeGreaterThanOrEqual(p.lower);
        expect(p.value).toBeLessThanOrEqual(p.upper);
        if (p.lower >= 1e-4 && p.upper <= 1e3) expect(p.upper / p.lower).toBeLessThanOrEqual(h.binRatio * (1 + 1e-12));
        if (truth === 0) expect(p).toEqual({ value: 0, lower: 0, upper: 0, exact: true });
      }),
      { numRuns: 100 },
    );
  });

  it('merging batch histograms equals one histogram of all values (exact and binned, any order)', () => {
    const rng = new Random(3);
    const batches = [activations(rng, 40), activations(rng, 300), activations(rng, 20), activations(rng, 500)];
    const all = new AbsHistogram({ exactCap: 200 });
    for (const b of batches) all.add(b);
    const parts = batches.map((b) => new AbsHistogram({ exactCap: 200 }).add(b));
    const merged = new AbsHistogram({ exactCap: 200 });
    for (const p of [parts[2]!, parts[3]!, parts[0]!, parts[1]!]) merged.merge(p);
    expect(merged.count).toBe(860);
    for (const q of [0, 0.05, 0.2, 0.5, 0.8, 0.999, 1]) expect(merged.percentile(q)).toEqual(all.percentile(q));
    const restored = AbsHistogram.fromState(JSON.parse(JSON.stringify(merged.state())));
    for (const q of [0.2, 0.8]) expect(restored.percentile(q)).toEqual(all.percentile(q));
    expect(() => merged.merge(new AbsHistogram({ exactCap: 10 }))).toThrow(/different options/);
  });

  it('refuses NaN, bad options, and a percentile of nothing', () => {
    expect(() => new AbsHistogram().add([1, NaN])).toThrow(ArgumentError);
    expect(() => new AbsHistogram({ minValue: 2, maxValue: 1 })).toThrow(/maxValue/);
    expect(() => new AbsHistogram().percentile(0.5)).toThrow(/no values/);
    expect(() => new AbsHistogram().add([1]).percentile(2)).toThrow(/q must be/);
  });
});

describe('ActivationMeasure', () => {
  it('keeps one density and histogram per site, streamed over batches', () => {
    const rng = new Random(4);
    const site = { name: 'h.0.mlp.act', kind: 'mlp-activation' as const, block: 0, role: 'mlp.act', features: 8 };
    const other = { name: 'h.0.mlp.c_proj.weight', kind: 'linear-input' as const, block: 0, role: 'mlp.down', features: 8, out: 4 };
    const a = activations(rng, 80, 0.5);
    const b = activations(rng, 80, 0.1);
    const m = new ActivationMeasure();
    m.add(site, a.subarray(0, 40), 5).add(other, b, 10).add(site, a.subarray(40), 5);
    const [r1, r2] = m.report([0.5]);
    expect(r1!.site).toBe('h.0.mlp.act');
    expect(r1!.tokens).toBe(10);
    expect(r1!.zeros.mean).toBeCloseTo(Array.from(a).filter((v) => v === 0).length / 80, 12);
    expect(r1!.percentiles[0]!.value).toBe(percentileThreshold(Array.from(a, Math.abs), 0.5));
    expect(r2!.zeros.mean).toBeCloseTo(Array.from(b).filter((v) => v === 0).length / 80, 12);
    expect(() => m.add({ ...site, features: 4 }, new Float32Array(4), 1)).toThrow(ShapeError);
  });
});
