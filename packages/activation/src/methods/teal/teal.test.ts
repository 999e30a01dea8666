import { ArgumentError, ConfigError, parseConfig, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SiteSample } from '../../types.js';
import { denseProduct, linearSite, normalActs, relativeError, sampleOf, weightOf } from '../testing.js';
import { tealConfigSchema } from './config.js';
import { sortedAbs } from '../../measure.js';
import { greedyLevels, layerOutputError, tealErrorSite, tealMethod } from './teal.js';

const parse = (c: unknown) => parseConfig(tealConfigSchema, c, 'teal');

/** Activations where most entries are tiny and a few are large: cheap to sparsify. */
function spikyActs(rng: Random, tokens: number, f: number): Float32Array {
  return Float32Array.from({ length: tokens * f }, () => (rng.next() < 0.15 ? 4 * rng.normal() : 0.05 * rng.normal()));
}

/** A model of `blocks` blocks, each with an attention qkv input (spiky) and an MLP up input (plain normal). */
function model(rng: Random, blocks: number, tokens = 48): SiteSample[] {
  const out: SiteSample[] = [];
  for (let b = 0; b < blocks; b++) {
    const qkv = linearSite(`h.${b}.attn.c_attn.weight`, 'attn.qkv', 16, 24, b);
    const up = linearSite(`h.${b}.mlp.c_fc.weight`, 'mlp.up', 16, 32, b);
    out.push(sampleOf(qkv, spikyActs(rng, tokens, 16), weightOf(rng, 24, 16)));
    out.push(sampleOf(up, normalActs(rng, tokens, 16), weightOf(rng, 32, 16)));
  }
  return out;
}

const levelOf = (s: unknown) => (s as { level: number }).level;
const thresholdOf = (s: unknown) => (s as { threshold: number }).threshold;

/** Output error of a site with its sparsifier applied, the dense way. */
function siteError(s: SiteSample, apply: (x: Float32Array) => void): number {
  const xs = s.x.slice();
  apply(xs);
  return relativeError(denseProduct(s.x, s.tokens, s.weight!), denseProduct(xs, s.tokens, s.weight!));
}

describe('teal', () => {
  it('thresholds are the sorted |x| percentile at each site level; greedy meets the target within one step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 0.85, noNaN: true }), fc.constantFrom(0.05, 0.1, 0.25), (seed, target, step) => {
        fc.pre(target <= 1 - step); // the highest level below 1 is 1 - step for these steps
        const rng = new Random(seed);
        const samples = model(rng, 2, 12);
        const sps = tealMethod.calibrate(parse({ sparsity: target, step }), samples);
        let weighted = 0;
        let params = 0;
        sps.forEach((sp, i) => {
          const s = samples[i]!;
          const level = levelOf(sp.state());
          const sorted = Array.from(s.x, Math.abs).sort((a, b) => a - b);
          expect(thresholdOf(sp.state())).toBe(sorted[Math.min(sorted.length - 1, Math.floor(level * sorted.length + 1e-9))]);
          expect(Math.abs(level / step - Math.round(level / step))).toBeLessThan(1e-9);
          weighted += level * s.weight!.in * s.weight!.out;
          params += s.weight!.in * s.weight!.out;
        });
        expect(weighted / params).toBeGreaterThanOrEqual(target - 1e-9);
        expect(weighted / params).toBeLessThanOrEqual(target + step + 1e-9);
      }),
      { numRuns: 30 },
    );
  });

  it('greedy error <= uniform error when layers differ in sensitivity (and the spiky inputs get the higher levels)', () => {
    const rng = new Random(11);
    const samples = model(rng, 2);
    for (const target of [0.3, 0.5, 0.7]) {
      const greedy = tealMethod.calibrate(parse({ sparsity: target }), samples);
      const uniform = tealMethod.calibrate(parse({ sparsity: target, uniform: true }), samples);
      const total = (sps: typeof greedy) => samples.reduce((a, s, i) => a + siteError(s, (x) => sps[i]!.apply(x, s.tokens)), 0);
      expect(total(greedy)).toBeLessThan(total(uniform));
      uniform.forEach((sp) => expect(levelOf(sp.state())).toBe(target));
      expect(levelOf(greedy[0]!.state())).toBeGreaterThan(levelOf(greedy[1]!.state()));
    }
  });

  it('the greedy raises the cheapest site per unit of work and stops at the target', () => {
    // Error of site i at k steps: c_i * k² (convex). Cheapest marginal cost per param first.
    const sites = [
      { params: 1, errorAt: (k: number) => 4 * k * k },
      { params: 2, errorAt: (k: number) => 1 * k * k },
    ];
    const steps = greedyLevels(sites, 0.5, 0.1);
    // Reference: simulate by brute force over every order of single-step raises, taking the min-cost each time.
    const ref = [0, 0];
    while ((ref[0]! * 1 + ref[1]! * 2) / 3 < 5 - 1e-9) {
      const costs = sites.map((s, i) => (s.errorAt(ref[i]! + 1) - s.errorAt(ref[i]!)) / (s.params * 0.1));
      ref[costs[0]! < costs[1]! ? 0 : 1]!++;
    }
    expect(steps).toEqual(ref);
    expect(() => greedyLevels(sites, 0.97, 0.05)).toThrow(ArgumentError);
  });

  it('the incremental error of a site equals the dense output error at every level (and after a restart)', () => {
    const rng = new Random(8);
    const [s] = model(rng, 1, 20);
    const site = tealErrorSite(s!, sortedAbs(s!.x), 0.1);
    const sorted = Array.from(s!.x, Math.abs).sort((a, b) => a - b);
    const dense = (k: number) => {
      const t = sorted[Math.min(sorted.length - 1, Math.floor(k * 0.1 * sorted.length + 1e-9))]!;
      return siteError(s!, (x) => x.forEach((v, i) => (x[i] = Math.abs(v) < t ? 0 : v)));
    };
    for (const k of [0, 1, 2, 3, 5, 6, 9, 2, 4]) {
      expect(site.errorAt(k)).toBeCloseTo(dense(k), 6);
      const t = sorted[Math.min(sorted.length - 1, Math.floor(k * 0.1 * sorted.length + 1e-9))]!;
      expect(layerOutputError(s!.x, s!.tokens, s!.weight!, Uint8Array.from(s!.x, (v) => (Math.abs(v) < t ? 0 : 1)))).toBeCloseTo(dense(k), 6);
    }
  });

  it('scope block meets the target in every block', () => {
    const rng = new Random(5);
    const samples = model(rng, 3, 16);
    const sps = tealMethod.calibrate(parse({ sparsity: 0.4, scope: 'block' }), samples);
    for (let b = 0; b < 3; b++) {
      const [a, c] = [sps[2 * b]!, sps[2 * b + 1]!].map((sp) => levelOf(sp.state()));
      const avg = (a! * 16 * 24 + c! * 16 * 32) / (16 * 24 + 16 * 32);
      expect(avg).toBeGreaterThanOrEqual(0.4 - 1e-9);
      expect(avg).toBeLessThanOrEqual(0.45 + 1e-9);
    }
  });

  it('restores from its JSON state to identical outputs; refuses missing weights and bad configs', () => {
    const rng = new Random(3);
    const samples = model(rng, 1, 16);
    const config = parse({ sparsity: 0.5 });
    const sps = tealMethod.calibrate(config, samples);
    sps.forEach((sp, i) => {
      const s = samples[i]!;
      const back = tealMethod.restore(config, s.site, JSON.parse(JSON.stringify(sp.state())), s.weight);
      const x = spikyActs(rng, 7, 16);
      const a = x.slice();
      const b = x.slice();
      expect(back.apply(b, 7)).toBe(sp.apply(a, 7));
      expect(b).toEqual(a);
    });
    const noWeight = samples.map(({ site, x, tokens }) => ({ site, x, tokens }));
    expect(() => tealMethod.calibrate(config, noWeight)).toThrow(/needs the consuming weight/);
    expect(tealMethod.calibrate(parse({ uniform: true }), noWeight)).toHaveLength(2);
    const bad = { ...samples[0]!, weight: { ...samples[0]!.weight!, in: 8 } };
    expect(() => tealMethod.calibrate(config, [bad])).toThrow(ShapeError);
    expect(() => parse({ step: 0 })).toThrow(ConfigError);
    expect(() => parse({ scope: 'layer' })).toThrow(/scope/);
    expect(tealMethod.acts(config, samples[0]!.site)).toBe(true);
    expect(tealMethod.acts(config, { ...samples[0]!.site, role: 'mlp.act', kind: 'mlp-activation' })).toBe(false);
  });
});
