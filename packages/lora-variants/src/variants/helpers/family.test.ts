import { equals, isKept, maskFromTensor } from '@sparse/masks';
import { Random, svd, tensor, transpose, type Float32Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getTfForm } from '../../tfjs-forms/index.js';
import { getVariant } from '../registry.js';
import { scaleColumns, topSVD, transposed } from './family.js';
import { familyVariants } from '../builtins.js';
import { randn, refMatmul, refTranspose, values } from './family-testing.js';

describe('topSVD', () => {
  it('the randomized path (r + 10 < min(m, n)) agrees with the exact SVD on the top triplets', () => {
    // A spectrum with a clear gap after 4 values, as trained weights have.
    const rng = new Random(1);
    const u = values(randn(rng, [60, 4]));
    const v = values(randn(rng, [4, 50]));
    const a = refMatmul(u, v, 60, 4, 50);
    const noise = randn(rng, [60, 50], 0.01);
    const m = tensor(Float32Array.from(a, (x, k) => x + noise.data[k]!), [60, 50]) as Float32Tensor;
    const t = topSVD(m, 4, new Random(2));
    const e = svd(m);
    for (let i = 0; i < 4; i++) {
      expect(t.s[i]! / e.s.data[i]!).toBeCloseTo(1, 4);
      let dot = 0;
      for (let p = 0; p < 60; p++) dot += t.u.data[p * 4 + i]! * e.u.data[p * 50 + i]!;
      expect(Math.abs(dot)).toBeCloseTo(1, 4);
    }
  });

  it('scaleColumns and transposed read strided views', () => {
    const a = randn(new Random(3), [3, 5]);
    const view = transpose(a) as Float32Tensor; // [5, 3], strides [1, 5]
    const s = [2, -1, 0.5];
    const scaled = scaleColumns(view, s);
    const back = transposed(view);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) expect(scaled.data[i * 3 + j]).toBeCloseTo(a.data[j * 5 + i]! * s[j]!, 6);
    expect(Array.from(back.data)).toEqual(Array.from(a.data));
  });
});

/** A config for `name` on a weight [out, in] with rank r, including the calibration data it needs. */
function configFor(name: string, out: number, inp: number, r: number, rng: Random): Record<string, unknown> {
  switch (name) {
    case 'lora-sb':
      return { r, gradient: randn(rng, [out, inp]) };
    case 'corda':
      return { r, inputs: randn(rng, [inp + 3, inp]) };
    case 'null-lora':
      return { r: Math.min(r, inp) };
    case 'clover':
    case 'ssf':
      return {};
    default:
      return { r };
  }
}

describe('every family variant, on random shapes (property)', () => {
  it('merge keeps a random mask bit-exactly, unmerge restores the base, merged forward == forward', () => {
    const names = familyVariants.map((v) => v.name);
    fc.assert(
      fc.property(fc.constantFrom(...names), fc.integer({ min: 2, max: 9 }), fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (name, out, inp, rr, seed) => {
        const r = Math.min(rr, out, inp);
        const rng = new Random(seed);
        const variant = getVariant(name);
        const base = randn(rng, [out, inp]);
        for (let k = 0; k < base.data.length; k++) if (rng.uniform() < 0.5) base.data[k] = 0;
        const mask = maskFromTensor(base);
        const state = variant.init(base, configFor(name, out, inp, r, rng), rng.fork('init'));
        const frozen = new Set(getTfForm(name)!.frozen ?? []);
        for (const [n, p] of Object.entries(state.params)) if (!frozen.has(n)) p.data.forEach((_v, k) => (p.data[k] = (n === 'ssf_scale' ? 1 : 0) + rng.normal(0, 0.3)));
        const merged = variant.merge(base, state);
        expect(equals(maskFromTensor(merged), mask)).toBe(true);
        for (let k = 0; k < merged.data.length; k++) if (!isKept(mask, k)) expect(Object.is(merged.data[k], 0)).toBe(true);
        const back = variant.unmerge(merged, state, { mask });
        for (let k = 0; k < back.data.length; k++) expect(Math.abs(back.data[k]! - base.data[k]!)).toBeLessThan(1e-4 * (1 + Math.abs(base.data[k]!)));
        const dense = variant.merge(base, state, { densify: true });
        const x = randn(rng, [3, inp]);
        const y = variant.forward(x, base, state);
        const yRef = refMatmul(values(x), refTranspose(values(dense), out, inp), 3, inp, out);
        const scale = 1 + yRef.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        for (let k = 0; k < yRef.length; k++) expect(Math.abs(y.data[k]! - yRef[k]!)).toBeLessThan(1e-5 * scale);
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});
