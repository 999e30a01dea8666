import { ArgumentError, ConfigError, parseConfig, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { linearSite, normalActs, sampleOf } from '../testing.js';
import { nmActivationConfigSchema } from './config.js';
import { nmActivationMethod } from './nm.js';

const parse = (c: unknown) => parseConfig(nmActivationConfigSchema, c, 'nm');
const site = (f: number) => linearSite('h.0.mlp.c_fc.weight', 'mlp.up', f, 4);

/** Sort-based reference: in each group of m features of a row, the n highest |x| (ties: lower index). */
function bruteForce(x: Float32Array, tokens: number, f: number, n: number, m: number): boolean[] {
  const keep = new Array<boolean>(tokens * f).fill(false);
  for (let t = 0; t < tokens; t++) {
    for (let g = 0; g < f; g += m) {
      const idx = [...Array(m).keys()].map((j) => t * f + g + j);
      idx.sort((a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b);
      for (const i of idx.slice(0, n)) keep[i] = true;
    }
  }
  return keep;
}

describe('nm activations', () => {
  it('keeps the n largest |x| of every m consecutive features per token (brute force, with ties)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom([1, 2], [2, 4], [1, 4], [4, 8], [3, 8]),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 100 }),
        ([n, m], groups, tokens, ints) => {
          const f = groups * m!;
          const x = Float32Array.from({ length: tokens * f }, (_, i) => ints[i % ints.length]!);
          const config = parse({ n, m });
          const [sp] = nmActivationMethod.calibrate(config, [sampleOf(site(f), x)]);
          const ref = bruteForce(x, tokens, f, n!, m!);
          expect(Array.from(sp!.keep!(x, tokens), Boolean)).toEqual(ref);
          const y = x.slice();
          expect(sp!.apply(y, tokens)).toBe(tokens * groups * n!);
          y.forEach((v, i) => expect(v).toBe(ref[i] ? x[i] : 0));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('restores to identical outputs; refuses bad configs, shapes and state', () => {
    const rng = new Random(1);
    const config = parse({});
    expect(config).toMatchObject({ n: 2, m: 4 });
    const [sp] = nmActivationMethod.calibrate(config, [sampleOf(site(16), normalActs(rng, 4, 16))]);
    const back = nmActivationMethod.restore(config, site(16), JSON.parse(JSON.stringify(sp!.state())));
    const x = normalActs(rng, 6, 16);
    const a = x.slice();
    const b = x.slice();
    expect(back.apply(b, 6)).toBe(sp!.apply(a, 6));
    expect(b).toEqual(a);
    expect(() => parse({ n: 4, m: 4 })).toThrow(ConfigError);
    expect(() => parse({ n: 4, m: 4 })).toThrow(/N < M/);
    expect(() => nmActivationMethod.calibrate(config, [sampleOf(site(6), new Float32Array(12))])).toThrow(ShapeError);
    expect(() => nmActivationMethod.restore(config, site(16), { n: 1, m: 4 })).toThrow(ArgumentError);
    expect(nmActivationMethod.acts(config, site(16))).toBe(true);
    expect(nmActivationMethod.acts(config, { ...site(16), role: 'mlp.act', kind: 'mlp-activation' })).toBe(false);
  });
});
