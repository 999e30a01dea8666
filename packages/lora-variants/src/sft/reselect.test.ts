import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sparseDelta, validateSparseDelta } from './delta.js';
import { reselectSupport, randomSupport, topKByKey } from './reselect.js';

const byItem = (a: number, b: number) => a - b;

describe('topKByKey', () => {
  it('equals sorting by (key desc, item asc) and taking k (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 40 }), fc.integer({ min: 0, max: 40 }), (keys, kk) => {
        const k = Math.min(kk, keys.length);
        const include = (i: number) => i % 3 !== 1;
        const expected = keys
          .map((x, i) => ({ x, i }))
          .filter(({ i }) => include(i))
          .sort((a, b) => b.x - a.x || a.i - b.i)
          .slice(0, k)
          .map(({ i }) => i)
          .sort(byItem);
        expect([...topKByKey(keys.length, k, (i) => keys[i]!, include)]).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('reselectSupport', () => {
  it('drops the smallest |value| active entries and grows the largest |score| previously inactive ones (brute force, property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer(), (o, i, density, frac, seed) => {
        const rng = new Random(seed);
        const size = o * i;
        const nnz = Math.floor(density * size);
        // Small integer values and scores so ties happen.
        const delta = sparseDelta([o, i], rng.sample(nnz, size), Array.from({ length: nnz }, () => rng.int(-3, 4)));
        const score = Float32Array.from({ length: size }, () => rng.int(-3, 4));
        const res = reselectSupport(delta, score, { fraction: frac });
        const count = Math.floor(frac * nnz);

        const active = [...delta.indices];
        const valueOf = new Map(active.map((f, p) => [f, delta.values[p]!]));
        const dropped = [...active].sort((a, b) => Math.abs(valueOf.get(a)!) - Math.abs(valueOf.get(b)!) || a - b).slice(0, count);
        const inactive = Array.from({ length: size }, (_, f) => f).filter((f) => !valueOf.has(f));
        const grown = inactive.sort((a, b) => Math.abs(score[b]!) - Math.abs(score[a]!) || a - b).slice(0, count);
        expect([...res.dropped]).toEqual(dropped.sort(byItem));
        expect([...res.grown]).toEqual(grown.sort(byItem));

        validateSparseDelta(res.delta);
        const kept = active.filter((f) => !dropped.includes(f));
        expect([...res.delta.indices]).toEqual([...kept, ...grown].sort(byItem));
        res.delta.indices.forEach((f, k) => {
          const src = res.sources[k]!;
          if (valueOf.has(f)) {
            expect(delta.indices[src]).toBe(f);
            expect(res.delta.values[k]).toBe(valueOf.get(f));
          } else {
            expect(src).toBe(-1);
            expect(res.delta.values[k]).toBe(0);
          }
        });
      }),
      { numRuns: 300 },
    );
  });

  it('grows fewer when fewer inactive entries exist', () => {
    const d = sparseDelta([1, 4], [0, 1, 2], [0.1, 5, 6]);
    const res = reselectSupport(d, new Float32Array([9, 9, 9, 1]), { count: 2 });
    expect([...res.dropped]).toEqual([0, 1]);
    expect([...res.grown]).toEqual([3]);
    expect([...res.delta.indices]).toEqual([2, 3]);
  });

  it('validates its inputs', () => {
    const d = sparseDelta([2, 2], [0, 3]);
    expect(() => reselectSupport(d, new Float32Array(3), { count: 1 })).toThrow(ShapeError);
    expect(() => reselectSupport(d, new Float32Array(4), { count: 3 })).toThrow(/count must be an integer in \[0, 2\]/);
    expect(() => reselectSupport(d, new Float32Array(4), {})).toThrow(ArgumentError);
    expect(() => reselectSupport(d, new Float32Array(4), { fraction: 2 })).toThrow(/fraction/);
  });

  it('randomSupport draws distinct sorted indices', () => {
    const s = randomSupport([50, 40], 300, new Random(1));
    expect(new Set(s).size).toBe(300);
    expect([...s]).toEqual([...s].sort(byItem));
    expect(Math.max(...s)).toBeLessThan(2000);
  });
});
