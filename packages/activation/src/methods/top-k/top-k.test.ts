import { ArgumentError, ConfigError, parseConfig, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actSite, linearSite, normalActs, sampleOf } from '../testing.js';
import { topKConfigSchema } from './config.js';
import { topKMethod } from './top-k.js';

const parse = (c: unknown) => parseConfig(topKConfigSchema, c, 'top-k');

/** Sort-based reference: per row, the k highest |x| (ties: lower index first). */
function bruteForce(x: Float32Array, tokens: number, f: number, k: number): boolean[] {
  const keep = new Array<boolean>(tokens * f).fill(false);
  for (let t = 0; t < tokens; t++) {
    const order = [...Array(f).keys()].sort((a, b) => Math.abs(x[t * f + b]!) - Math.abs(x[t * f + a]!) || a - b);
    for (const j of order.slice(0, k)) keep[t * f + j] = true;
  }
  return keep;
}

describe('top-k', () => {
  it('keeps the k largest |x| of every token (sort-based brute force, with ties and zeros)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 1, maxLength: 200 }),
        fc.option(fc.double({ min: 0, max: 0.99, noNaN: true }), { nil: undefined }),
        fc.integer({ min: 1, max: 30 }),
        (f, tokens, ints, sparsity, kCount) => {
          const x = Float32Array.from({ length: tokens * f }, (_, i) => ints[i % ints.length]! / 2);
          const config = parse(sparsity === undefined ? { k: kCount } : { sparsity });
          const [sp] = topKMethod.calibrate(config, [sampleOf(actSite(0, f), x.slice())]);
          const k = sparsity === undefined ? Math.min(kCount, f) : Math.round((1 - sparsity) * f);
          const ref = bruteForce(x, tokens, f, k);
          expect(Array.from(sp!.keep!(x, tokens), Boolean)).toEqual(ref);
          const y = x.slice();
          expect(sp!.apply(y, tokens)).toBe(tokens * k);
          y.forEach((v, i) => expect(v).toBe(ref[i] ? x[i] : 0));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('restores from its JSON state to identical outputs', () => {
    const rng = new Random(1);
    const site = actSite(2, 32);
    const config = parse({ sparsity: 0.7 });
    const [sp] = topKMethod.calibrate(config, [sampleOf(site, normalActs(rng, 16, 32))]);
    const back = topKMethod.restore(config, site, JSON.parse(JSON.stringify(sp!.state())));
    const x = normalActs(rng, 9, 32);
    const a = x.slice();
    const b = x.slice();
    expect(back.apply(b, 9)).toBe(sp!.apply(a, 9));
    expect(b).toEqual(a);
    expect(() => topKMethod.restore(config, site, { keep: 33 })).toThrow(ArgumentError);
    expect(() => topKMethod.restore(config, site, {})).toThrow(/state\.keep/);
  });

  it('acts on the configured roles; refuses bad configs and shapes with typed errors', () => {
    const down = linearSite('h.0.mlp.c_proj.weight', 'mlp.down', 8, 4);
    expect(topKMethod.acts(parse({}), actSite(0, 8))).toBe(true);
    expect(topKMethod.acts(parse({}), down)).toBe(false);
    expect(topKMethod.acts(parse({ roles: ['mlp.down'] }), down)).toBe(true);
    expect(parse({}).sparsity).toBe(0.5);
    expect(() => parse({ sparsity: 1 })).toThrow(ConfigError);
    expect(() => parse({ sparsity: 0.5, k: 3 })).toThrow(/either sparsity or k/);
    expect(() => parse({ roles: ['mlp.fc'] })).toThrow(/roles/);
    expect(() => parse({ k: 0 })).toThrow(ConfigError);
    expect(() => topKMethod.calibrate(parse({}), [{ site: actSite(0, 8), x: new Float32Array(7), tokens: 1 }])).toThrow(ShapeError);
    const [sp] = topKMethod.calibrate(parse({}), [sampleOf(actSite(0, 8), new Float32Array(8))]);
    expect(() => sp!.apply(new Float32Array(12), 2)).toThrow(/h\.0\.mlp\.act.*12 values/);
  });
});
