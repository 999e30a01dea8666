// Update sets and their overlaps against brute force over plain arrays.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LinearInfo } from '../model/types.js';
import { updateDensity, updateOverlap, updateSet } from './update-sets.js';

const layer = (name: string, out: number, inp: number) => ({ name, out, in: inp, block: 0, group: 0, role: 'mlp.up' }) as LinearInfo;

/** Two layers' values before, and two later versions each changing a random subset. */
const arb = fc
  .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }))
  .chain(([o1, i1, o2, i2]) => {
    const n1 = o1 * i1;
    const n2 = o2 * i2;
    const flips = (n: number) => fc.array(fc.boolean(), { minLength: n, maxLength: n });
    return fc.tuple(fc.constant([layer('x', o1, i1), layer('y', o2, i2)]), flips(n1), flips(n2), flips(n1), flips(n2));
  });

describe('update sets', () => {
  it('updateSet, updateDensity and updateOverlap equal brute-force counts (property)', () => {
    fc.assert(
      fc.property(arb, ([layers, ax, ay, bx, by]) => {
        const base = new Map(layers.map((l, k) => [l.name, Float32Array.from({ length: l.out * l.in }, (_, i) => (i * 7 + k) % 5 - 2)]));
        const change = (flips: boolean[][]) => new Map(layers.map((l, k) => [l.name, base.get(l.name)!.map((v, i) => (flips[k]![i] ? v + 0.5 : v))]));
        const sizes = new Map(layers.map((l) => [l.name, l.out * l.in]));
        const A = updateSet(layers, base, change([ax, ay]));
        const B = updateSet(layers, base, change([bx, by]));
        const fa = [...ax, ...ay];
        const fb = [...bx, ...by];
        const n = fa.length;
        const na = fa.filter(Boolean).length;
        const nb = fb.filter(Boolean).length;
        const inter = fa.filter((x, i) => x && fb[i]).length;
        const union = fa.filter((x, i) => x || fb[i]).length;
        const d = updateDensity(A, sizes);
        expect(d.changed).toBe(na);
        expect(d.entries).toBe(n);
        expect(d.density).toBeCloseTo(na / n, 12);
        expect(d.layers.x).toBeCloseTo(ax.filter(Boolean).length / ax.length, 12);
        const o = updateOverlap(A, B, sizes);
        expect([o.intersection, o.union, o.a, o.b, o.entries]).toEqual([inter, union, na, nb, n]);
        expect(o.iou).toBeCloseTo(union === 0 ? 0 : inter / union, 12);
        expect(o.overlap).toBeCloseTo(na === 0 ? 0 : inter / na, 12);
        expect(o.reverse).toBeCloseTo(nb === 0 ? 0 : inter / nb, 12);
        expect(o.chance).toBeCloseTo(nb / n, 12);
        expect(o.chanceReverse).toBeCloseTo(na / n, 12);
      }),
      { numRuns: 200 },
    );
  });

  it('skips layers missing or resized on either side, and counts NaN to NaN as unchanged', () => {
    const layers = [layer('x', 1, 3), layer('y', 1, 2)];
    const s = updateSet(layers, new Map([['x', Float32Array.from([NaN, 1, 2])], ['y', Float32Array.from([1, 2])]]), new Map([['x', Float32Array.from([NaN, 1, 3])]]));
    expect([...s.keys()]).toEqual(['x']);
    expect(updateDensity(s, new Map([['x', 3]])).changed).toBe(1);
  });
});
