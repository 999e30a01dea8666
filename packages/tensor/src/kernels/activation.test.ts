// activationF32's reference against the closed forms in float64 (GELU's tanh form as written with tanh,
// SiLU, ReLU, squared ReLU), in place and into another array at offsets; bad arguments named.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getKernel } from './registry.js';
import { activationF32Reference } from './reference/activation.js';
import type { ActivationF32Kind } from './types.js';

const CLOSED: Record<ActivationF32Kind, (x: number) => number> = {
  'gelu-tanh': (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  silu: (x) => x / (1 + Math.exp(-x)),
  relu: (x) => Math.max(x, 0),
  relu2: (x) => Math.max(x, 0) ** 2,
};

describe('activationF32 reference', () => {
  it.each(Object.keys(CLOSED) as ActivationF32Kind[])('%s equals its closed form, in place and apart, at offsets', (kind) => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -30, max: 30, noNaN: true }), { maxLength: 40 }), fc.nat({ max: 5 }), fc.nat({ max: 5 }), (values, xo, yo) => {
        const n = values.length;
        const x = new Float32Array(xo + n + 2);
        x.set(values, xo);
        const y = new Float32Array(yo + n + 2).fill(7);
        activationF32Reference({ kind, n, x, xOffset: xo, y, yOffset: yo });
        const inPlace = Float32Array.from(x);
        activationF32Reference({ kind, n, x: inPlace, xOffset: xo, y: inPlace, yOffset: xo });
        for (let i = 0; i < n; i++) {
          const want = CLOSED[kind](Math.fround(values[i]!));
          expect(Math.abs(y[yo + i]! - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
          expect(inPlace[xo + i]).toBe(y[yo + i]);
        }
        // nothing outside the span is written
        for (let i = 0; i < yo; i++) expect(y[i]).toBe(7);
        expect(y[yo + n]).toBe(7);
      }),
      { seed: 42, numRuns: 60 },
    );
  });

  it('is what the registry hands out without native kernels', () => {
    const x = Float32Array.of(-1, 0.5, 2);
    const y = new Float32Array(3);
    getKernel('activationF32', 'reference')({ kind: 'relu2', n: 3, x, xOffset: 0, y, yOffset: 0 });
    expect(Array.from(y)).toEqual([0, 0.25, 4]);
  });

  it('names bad arguments', () => {
    const x = new Float32Array(8);
    expect(() => activationF32Reference({ kind: 'tanh' as ActivationF32Kind, n: 4, x, xOffset: 0, y: x, yOffset: 0 })).toThrow(/activationF32: kind must be one of gelu-tanh, silu, relu, relu2, got "tanh"/);
    expect(() => activationF32Reference({ kind: 'silu', n: 6, x, xOffset: 4, y: new Float32Array(6), yOffset: 0 })).toThrow(/activationF32: x has length 8 but 6 values at offset 4 need 10/);
    expect(() => activationF32Reference({ kind: 'silu', n: 4, x, xOffset: 0, y: x.subarray(2), yOffset: 0 })).toThrow(/activationF32: x overlaps y/);
    expect(() => activationF32Reference({ kind: 'silu', n: 4, x, xOffset: 0, y: x, yOffset: 1 })).toThrow(/overlaps/);
    expect(() => activationF32Reference({ kind: 'relu', n: 2, x: new Float64Array(2) as unknown as Float32Array, xOffset: 0, y: x, yOffset: 0 })).toThrow(/x must be a Float32Array/);
  });
});
