import { ConfigError, parseConfig, Random } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tealConfigSchema } from '../teal/config.js';
import { tealMethod } from '../teal/teal.js';
import { topKConfigSchema } from '../top-k/config.js';
import { topKMethod } from '../top-k/top-k.js';
import { denseProduct, linearSite, normalActs, relativeError, sampleOf, weightOf, zeroFraction } from '../testing.js';
import { winaConfigSchema } from './config.js';
import { winaErrorSite, winaMethod } from './wina.js';

const parse = (c: unknown) => parseConfig(winaConfigSchema, c, 'wina');
const site = (f: number, out: number) => linearSite('h.0.mlp.c_proj.weight', 'mlp.down', f, out);

describe('wina', () => {
  it('keeps per token the k largest |x_j| * ||W_:,j|| (sort-based brute force)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 8 }), fc.double({ min: 0, max: 0.95, noNaN: true }), (seed, f, out, s) => {
        const rng = new Random(seed);
        const w = weightOf(rng, out, f, () => Math.exp(rng.normal()));
        const x = normalActs(rng, 5, f);
        const [sp] = winaMethod.calibrate(parse({ sparsity: s }), [sampleOf(site(f, out), x, w)]);
        const norm = (j: number) => Math.hypot(...Array.from({ length: out }, (_, o) => w.data[o * f + j]!));
        const k = Math.round((1 - s) * f);
        const keep = sp!.keep!(x, 5);
        for (let t = 0; t < 5; t++) {
          const order = [...Array(f).keys()].sort((a, b) => Math.abs(x[t * f + b]!) * norm(b) - Math.abs(x[t * f + a]!) * norm(a) || a - b);
          const kept = new Set(order.slice(0, k));
          for (let j = 0; j < f; j++) expect(keep[t * f + j]).toBe(kept.has(j) ? 1 : 0);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('on a weight with orthogonal columns, its selection is the best: no set of k channels leaves a smaller output error (brute force over all sets)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 8 }), (seed, f, kRaw) => {
        const rng = new Random(seed);
        const out = f + 3;
        // W = U S with orthonormal U's columns (Gram-Schmidt of a Gaussian) and unequal scales S: W^T W is diagonal
        const u = Array.from({ length: f }, () => Array.from({ length: out }, () => rng.normal()));
        for (let j = 0; j < f; j++) {
          for (let i = 0; i < j; i++) {
            const dot = u[j]!.reduce((a, v, o) => a + v * u[i]![o]!, 0);
            for (let o = 0; o < out; o++) u[j]![o]! -= dot * u[i]![o]!;
          }
          const n = Math.hypot(...u[j]!);
          for (let o = 0; o < out; o++) u[j]![o]! /= n;
        }
        const scale = Array.from({ length: f }, () => Math.exp(rng.normal()));
        const w = { data: new Float32Array(out * f), out, in: f };
        for (let o = 0; o < out; o++) for (let j = 0; j < f; j++) w.data[o * f + j] = u[j]![o]! * scale[j]!;
        const k = 1 + (kRaw % (f - 1));
        const x = normalActs(rng, 3, f);
        const [sp] = winaMethod.calibrate(parse({ sparsity: 1 - k / f }), [sampleOf(site(f, out), x, w)]);
        const keep = sp!.keep!(x, 3);
        // the output error of dropping everything outside `kept`, for token t, in float64
        const err = (t: number, kept: (j: number) => boolean) => {
          let e = 0;
          for (let o = 0; o < out; o++) {
            let r = 0;
            for (let j = 0; j < f; j++) if (!kept(j)) r += x[t * f + j]! * w.data[o * f + j]!;
            e += r * r;
          }
          return e;
        };
        for (let t = 0; t < 3; t++) {
          expect(keep.slice(t * f, (t + 1) * f).reduce((a, b) => a + b, 0)).toBe(k);
          const mine = err(t, (j) => keep[t * f + j] === 1);
          let best = Infinity;
          for (let set = 0; set < 1 << f; set++) {
            let bits = 0;
            for (let j = 0; j < f; j++) bits += (set >> j) & 1;
            if (bits === k) best = Math.min(best, err(t, (j) => ((set >> j) & 1) === 1));
          }
          expect(mine).toBeLessThanOrEqual(best * (1 + 1e-6) + 1e-9);
        }
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  it('output error <= TEAL at equal sparsity on a weight with unequal column norms', () => {
    const rng = new Random(21);
    const f = 64;
    const out = 32;
    const w = weightOf(rng, out, f, () => Math.exp(1.5 * rng.normal()));
    const x = normalActs(rng, 128, f, 0.3);
    const s = sampleOf(site(f, out), x, w);
    const y = denseProduct(x, 128, w);
    for (const sparsity of [0.25, 0.5, 0.75]) {
      const [wina] = winaMethod.calibrate(parse({ sparsity }), [s]);
      const [teal] = tealMethod.calibrate(parseConfig(tealConfigSchema, { sparsity, uniform: true }, 'teal'), [s]);
      const xw = x.slice();
      const xt = x.slice();
      wina!.apply(xw, 128);
      teal!.apply(xt, 128);
      expect(zeroFraction(xw)).toBe(sparsity);
      expect(zeroFraction(xt)).toBe(sparsity);
      expect(relativeError(y, denseProduct(xw, 128, w))).toBeLessThan(relativeError(y, denseProduct(xt, 128, w)));
    }
  });

  it('greedy: the incremental error equals the dense error at each level; levels meet the target; error <= uniform', () => {
    const rng = new Random(9);
    // Two layers: one whose inputs are spiky (cheap to sparsify), one plain normal.
    const spiky = Float32Array.from({ length: 48 * 16 }, () => (rng.next() < 0.15 ? 4 * rng.normal() : 0.05 * rng.normal()));
    const samples = [
      sampleOf(linearSite('h.0.attn.c_attn.weight', 'attn.qkv', 16, 24), spiky, weightOf(rng, 24, 16, () => Math.exp(rng.normal()))),
      sampleOf(linearSite('h.0.mlp.c_fc.weight', 'mlp.up', 16, 32), normalActs(rng, 48, 16), weightOf(rng, 32, 16, () => Math.exp(rng.normal()))),
    ];
    const errorOf = (sp: { apply(x: Float32Array, t: number): number }, s: (typeof samples)[number]) => {
      const xs = s.x.slice();
      sp.apply(xs, s.tokens);
      return relativeError(denseProduct(s.x, s.tokens, s.weight!), denseProduct(xs, s.tokens, s.weight!));
    };
    const site = winaErrorSite(samples[1]!, 0.1);
    for (const k of [0, 1, 2, 4, 5, 9, 3]) {
      const [sp] = winaMethod.calibrate(parse({ sparsity: k * 0.1 }), [samples[1]!]);
      expect(site.errorAt(k)).toBeCloseTo(errorOf(sp!, samples[1]!), 6);
    }
    for (const target of [0.3, 0.5, 0.7]) {
      const greedy = winaMethod.calibrate(parse({ sparsity: target, greedy: true }), samples);
      const uniform = winaMethod.calibrate(parse({ sparsity: target }), samples);
      const keeps = greedy.map((sp) => (sp.state() as { keep: number }).keep);
      const avg = (keeps[0]! * 24 + keeps[1]! * 32) / (16 * (24 + 32));
      expect(1 - avg).toBeGreaterThanOrEqual(target - 1 / 16 - 1e-9); // levels meet it; keep counts round per layer
      expect(1 - avg).toBeLessThanOrEqual(target + 0.05 + 1 / 16 + 1e-9);
      expect(keeps[0]!).toBeLessThan(keeps[1]!);
      const total = (sps: typeof greedy) => sps.reduce((a, sp, i) => a + errorOf(sp, samples[i]!), 0);
      expect(total(greedy)).toBeLessThan(total(uniform));
    }
  });

  it('equals magnitude top-k when every column has the same norm', () => {
    const rng = new Random(4);
    const base = weightOf(rng, 8, 16);
    // Rescale every column to norm 2.
    const norms = Array.from({ length: 16 }, (_, j) => Math.hypot(...Array.from({ length: 8 }, (_, o) => base.data[o * 16 + j]!)));
    const w = { ...base, data: base.data.map((v, k) => (2 * v) / norms[k % 16]!) };
    const x = normalActs(rng, 20, 16);
    const [a] = winaMethod.calibrate(parse({ sparsity: 0.5 }), [sampleOf(site(16, 8), x, w)]);
    const [b] = topKMethod.calibrate(parseConfig(topKConfigSchema, { sparsity: 0.5, roles: ['mlp.down'] }, 'top-k'), [sampleOf(site(16, 8), x)]);
    expect(a!.keep!(x, 20)).toEqual(b!.keep!(x, 20));
  });

  it('restores from state and the weight to identical outputs; needs the weight', () => {
    const rng = new Random(6);
    const w = weightOf(rng, 8, 16, (j) => j + 1);
    const config = parse({ sparsity: 0.6 });
    const [sp] = winaMethod.calibrate(config, [sampleOf(site(16, 8), normalActs(rng, 4, 16), w)]);
    const back = winaMethod.restore(config, site(16, 8), JSON.parse(JSON.stringify(sp!.state())), w);
    const x = normalActs(rng, 9, 16);
    const a = x.slice();
    const b = x.slice();
    expect(back.apply(b, 9)).toBe(sp!.apply(a, 9));
    expect(b).toEqual(a);
    expect(() => winaMethod.restore(config, site(16, 8), sp!.state())).toThrow(/needs the consuming weight/);
    expect(() => winaMethod.calibrate(config, [sampleOf(site(16, 8), normalActs(rng, 4, 16))])).toThrow(/needs the consuming weight/);
    expect(() => parse({ sparsity: -0.5 })).toThrow(ConfigError);
  });
});
