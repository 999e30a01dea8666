import { ArgumentError, ConfigError, parseConfig, Random } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actSite, normalActs, sampleOf, zeroFraction } from '../testing.js';
import { catsMethod } from './cats.js';
import { catsConfigSchema } from './config.js';

const parse = (c: unknown) => parseConfig(catsConfigSchema, c, 'cats');

/** SiLU(z) of normal z: the activated gate of a gated MLP (heavy on small values, one-sided tail). */
function siluActs(rng: Random, tokens: number, features: number): Float32Array {
  return Float32Array.from({ length: tokens * features }, () => {
    const z = 2 * rng.normal();
    return z / (1 + Math.exp(-z));
  });
}

describe('cats', () => {
  it('threshold per layer is the sparsity-quantile of |a| found by sorting', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 0.99, noNaN: true }), fc.integer({ min: 1, max: 30 }), (seed, s, tokens) => {
        const rng = new Random(seed);
        const samples = [sampleOf(actSite(0, 8), siluActs(rng, tokens, 8)), sampleOf(actSite(1, 8), normalActs(rng, tokens, 8, 1))];
        const sps = catsMethod.calibrate(parse({ sparsity: s }), samples);
        sps.forEach((sp, i) => {
          const sorted = Array.from(samples[i]!.x, Math.abs).sort((a, b) => a - b);
          const n = sorted.length;
          expect(sp.site).toBe(samples[i]!.site.name);
          expect((sp.state() as { threshold: number }).threshold).toBe(sorted[Math.min(n - 1, Math.floor(s * n + 1e-9))]);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('zeroes exactly |a| < t, and hits the target sparsity on held-out data within 0.02', () => {
    // Calibration 16384 values, held-out 16384 from the same distribution: by the DKW inequality each
    // empirical CDF is within 0.01 of the true one with probability 1 - 2 exp(-2 n 0.01²) > 0.99, so the
    // held-out sparsity is within 0.02 of the target (and this seed is fixed).
    const rng = new Random(7);
    for (const s of [0.4, 0.5, 0.7, 0.9]) {
      const site = actSite(3, 64);
      const [sp] = catsMethod.calibrate(parse({ sparsity: s }), [sampleOf(site, siluActs(rng, 256, 64))]);
      const t = (sp!.state() as { threshold: number }).threshold;
      const held = siluActs(rng, 256, 64);
      const y = held.slice();
      const kept = sp!.apply(y, 256);
      y.forEach((v, i) => expect(v).toBe(Math.abs(held[i]!) < t ? 0 : held[i]));
      expect(kept).toBe(Array.from(held).filter((v) => Math.abs(v) >= t).length);
      expect(Math.abs(zeroFraction(y) - s)).toBeLessThan(0.02);
    }
  });

  it('restores from its JSON state to identical outputs; refuses bad state, config and empty samples', () => {
    const rng = new Random(2);
    const site = actSite(0, 16);
    const config = parse({ sparsity: 0.6 });
    const [sp] = catsMethod.calibrate(config, [sampleOf(site, siluActs(rng, 32, 16))]);
    const back = catsMethod.restore(config, site, JSON.parse(JSON.stringify(sp!.state())));
    const x = siluActs(rng, 5, 16);
    const a = x.slice();
    const b = x.slice();
    expect(back.apply(b, 5)).toBe(sp!.apply(a, 5));
    expect(b).toEqual(a);
    expect(() => catsMethod.restore(config, site, { threshold: -1 })).toThrow(ArgumentError);
    expect(() => catsMethod.restore(config, site, null)).toThrow(/h\.0\.mlp\.act/);
    expect(() => parse({ sparsity: 1.2 })).toThrow(ConfigError);
    expect(() => parse({ sparsity: 0.5, k: 2 })).toThrow(/Unrecognized key/);
    expect(() => catsMethod.calibrate(config, [sampleOf(site, new Float32Array(0))])).toThrow(/no calibration tokens/);
    expect(() => catsMethod.calibrate(config, [sampleOf(site, new Float32Array(16).fill(NaN))])).toThrow(/NaN/);
  });
});
