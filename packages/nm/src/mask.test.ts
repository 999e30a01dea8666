import { count, isKept, maskFromBooleans } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, ShapeError, tensor, transpose } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNM, nmMask } from './mask.js';

/** Independent reference: all C(m, n) subsets of a group, the one with the largest sum (first found wins ties). */
function bruteBest(vals: number[], n: number): number[] {
  let best: number[] = [];
  let bestSum = -Infinity;
  const m = vals.length;
  for (let bits = 0; bits < 1 << m; bits++) {
    const idx = [...Array(m).keys()].filter((q) => (bits >> q) & 1);
    if (idx.length !== n) continue;
    const sum = idx.reduce((a, q) => a + vals[q]!, 0);
    if (sum > bestSum) [best, bestSum] = [idx, sum];
  }
  return best;
}

describe('nmMask', () => {
  it('keeps exactly N per group with the brute-force best kept sum (rows and columns)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom([1, 4], [2, 4], [3, 4], [2, 8], [4, 8], [1, 2]), fc.constantFrom('row', 'column'), (seed, [n, m], axis) => {
        const rng = new Random(seed);
        const [rows, cols] = axis === 'row' ? [3, 2 * m!] : [2 * m!, 3];
        const w = randomTensor([rows, cols], rng, { dist: 'normal' });
        const mask = nmMask(w, { n: n!, m: m!, axis: axis as 'row' | 'column' });
        expect(isNM(mask, { n: n!, m: m!, axis: axis as 'row' | 'column', exact: true }).valid).toBe(true);
        expect(count(mask)).toBe((rows * cols * n!) / m!);
        const lines = axis === 'row' ? rows : cols;
        for (let l = 0; l < lines; l++) {
          for (let g = 0; g < 2; g++) {
            const flat = [...Array(m).keys()].map((q) => (axis === 'row' ? l * cols + g * m! + q : (g * m! + q) * cols + l));
            const vals = flat.map((i) => Math.abs(w.data[i]!));
            const kept = flat.filter((i) => isKept(mask, i)).reduce((a, i) => a + Math.abs(w.data[i]!), 0);
            const best = bruteBest(vals, n!).reduce((a, q) => a + vals[q]!, 0);
            expect(kept).toBeCloseTo(best, 10);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('breaks ties toward the lower index and ranks by value on request', () => {
    const w = tensor(Float32Array.from([1, -1, 1, 1, 0, 3, -5, 2]), [1, 8]);
    expect(Array.from({ length: 8 }, (_, i) => isKept(nmMask(w, { n: 2, m: 4 }), i))).toEqual([true, true, false, false, false, true, true, false]);
    const byValue = nmMask(w, { n: 2, m: 4, rank: 'value' });
    expect(Array.from({ length: 8 }, (_, i) => isKept(byValue, i))).toEqual([true, false, true, false, false, true, false, true]);
  });

  it('ranks NaN above +Infinity (selectNM of @sparse/tensor), by value and by magnitude', () => {
    const w = tensor(Float32Array.from([-Infinity, Infinity, NaN, 1, 2, NaN, -Infinity, NaN]), [1, 8]);
    const kept = (opts: { rank?: 'value' | 'magnitude' }) => Array.from({ length: 8 }, (_, i) => isKept(nmMask(w, { n: 2, m: 4, ...opts }), i));
    expect(kept({ rank: 'value' })).toEqual([false, true, true, false, false, true, false, true]);
    // |−Infinity| ties with |Infinity|: the lower index wins.
    expect(kept({})).toEqual([true, false, true, false, false, true, false, true]);
    expect(kept({ rank: 'magnitude' })).toEqual(kept({}));
    expect(() => nmMask(w, { n: 2, m: 4, rank: 'abs' as 'value' })).toThrow(/nmMask: rank/);
  });

  it('column axis equals the row axis on the transpose', () => {
    const w = randomTensor([8, 6], new Random(3), { dist: 'normal' });
    const a = nmMask(w, { n: 2, m: 4, axis: 'column' });
    const b = nmMask(transpose(w), { n: 2, m: 4 });
    for (let i = 0; i < 8; i++) for (let j = 0; j < 6; j++) expect(isKept(a, i * 6 + j)).toBe(isKept(b, j * 8 + i));
  });

  it('throws typed errors for bad N, M and shapes', () => {
    const w = randomTensor([2, 8], new Random(1));
    expect(() => nmMask(w, { n: 4, m: 4 })).toThrow(ArgumentError);
    expect(() => nmMask(w, { n: 0, m: 4 })).toThrow(ArgumentError);
    expect(() => nmMask(w, { n: 2, m: 3 })).toThrow(ShapeError);
    expect(() => nmMask(w, { n: 1, m: 4, axis: 'column' })).toThrow(ShapeError);
  });
});

describe('isNM', () => {
  it('reports the first violating group of a mask or a tensor', () => {
    const mask = maskFromBooleans([1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0], [2, 8]);
    expect(isNM(mask, { n: 2, m: 4 })).toEqual({ valid: false, violation: { axis: 'row', line: 0, start: 4, count: 3 } });
    expect(isNM(mask, { n: 3, m: 4 }).valid).toBe(true);
    expect(isNM(mask, { n: 3, m: 4, exact: true }).violation).toEqual({ axis: 'row', line: 0, start: 0, count: 2 });
    const t = tensor(Float32Array.from([1, 0, 2, 0, 3, 4, 0, 0]), [4, 2]);
    expect(isNM(t, { n: 1, m: 2, axis: 'column' }).violation).toEqual({ axis: 'column', line: 0, start: 0, count: 2 });
    expect(isNM(t, { n: 1, m: 2, axis: 'row' }).violation).toEqual({ axis: 'row', line: 2, start: 0, count: 2 });
  });
});
