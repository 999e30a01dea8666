import { count, isKept, keepCount, sparsity } from '@sparse/masks';
import { ArgumentError, Random, tensor, transpose } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNM, normalMatrix } from '../../__fixtures__/layers.js';
import { globalMagnitudeMasks, magnitudePrune } from './magnitude.js';

/** Sort-based reference over flat values: the k largest |v| (ties: lower index first). */
function topK(values: ArrayLike<number>, k: number): Set<number> {
  const idx = Array.from(values, (v, i) => ({ i, s: Math.abs(v) }));
  idx.sort((a, b) => b.s - a.s || a.i - b.i);
  return new Set(idx.slice(0, k).map((e) => e.i));
}

describe('magnitude', () => {
  it('keeps the keepCount(size, s) largest |W| of the layer, and zeros the rest', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 0.99, noNaN: true }), (seed, s) => {
        const w = normalMatrix(new Random(seed), 7, 9);
        const r = magnitudePrune({ name: 'l', weight: w, config: { sparsity: s } });
        const ref = topK(w.data, keepCount(63, s));
        for (let k = 0; k < 63; k++) {
          expect(isKept(r.mask, k)).toBe(ref.has(k));
          expect(r.weight.data[k]).toBe(ref.has(k) ? w.data[k] : 0);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('per row keeps the same count in every row; N:M keeps the N largest of every group', () => {
    const w = normalMatrix(new Random(1), 6, 16);
    const rows = magnitudePrune({ name: 'l', weight: w, config: { sparsity: 0.25, granularity: 'row' } });
    for (let r = 0; r < 6; r++) {
      const ref = topK(w.data.subarray(r * 16, r * 16 + 16), keepCount(16, 0.25));
      for (let j = 0; j < 16; j++) expect(isKept(rows.mask, r * 16 + j)).toBe(ref.has(j));
    }
    const nm = magnitudePrune({ name: 'l', weight: w, config: { n: 2, m: 4 } });
    expect(isNM(nm.mask, 2, 4)).toBe(true);
    for (let g = 0; g < 6 * 16; g += 4) {
      const ref = topK(w.data.subarray(g, g + 4), 2);
      for (let t = 0; t < 4; t++) expect(isKept(nm.mask, g + t)).toBe(ref.has(t));
    }
  });

  it('reads strided views and other real dtypes', () => {
    const w = normalMatrix(new Random(2), 8, 4);
    const t = transpose(w); // [4, 8] view
    const r = magnitudePrune({ name: 'l', weight: t, config: { sparsity: 0.5 } });
    expect(r.weight.shape).toEqual([4, 8]);
    expect(count(r.mask)).toBe(16);
    const f64 = magnitudePrune({ name: 'l', weight: tensor(Float64Array.from(w.data), [8, 4]), config: { sparsity: 0.5 } });
    expect(sparsity(f64.mask)).toBe(0.5);
  });

  it('globalMagnitudeMasks ranks all layers together', () => {
    const rng = new Random(3);
    const a = normalMatrix(rng, 4, 5, 1);
    const b = normalMatrix(rng, 3, 6, 0.1); // smaller weights: loses more of them
    const masks = globalMagnitudeMasks({ a, b }, { sparsity: 0.5 });
    const all = [...a.data, ...b.data];
    const ref = topK(all, keepCount(38, 0.5));
    for (let k = 0; k < 20; k++) expect(isKept(masks.a!, k)).toBe(ref.has(k));
    for (let k = 0; k < 18; k++) expect(isKept(masks.b!, k)).toBe(ref.has(20 + k));
    expect(count(masks.a!)).toBeGreaterThan(count(masks.b!));
    expect(() => globalMagnitudeMasks({}, { sparsity: 0.5 })).toThrow(ArgumentError);
    expect(() => globalMagnitudeMasks({ a: tensor(new Float32Array([1, NaN]), [1, 2]) }, { k: 1 })).toThrow(/layer 'a'.*NaN/);
  });
});
