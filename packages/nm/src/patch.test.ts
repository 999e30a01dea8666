import { count, isKept } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, ShapeError, slice, toContiguous } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNM, nmMask } from './mask.js';
import { patchMask, patchSparsity } from './patch.js';

describe('patchMask', () => {
  it('is exactly N:M in sparse tiles (the tile\'s own N:M mask), dense elsewhere, with the stated sparsity', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom({ tile: [4, 4], n: 2, m: 4 }, { tile: [2, 8], n: 2, m: 4 }, { tile: [4, 8], n: 1, m: 4 }, { tile: [1, 8], n: 4, m: 8 }),
        (seed, cfg) => {
          const rng = new Random(seed);
          const [rows, cols] = [8, 16];
          const [th, tw] = cfg.tile as [number, number];
          const w = randomTensor([rows, cols], rng, { dist: 'normal' });
          const tiles = (rows / th) * (cols / tw);
          const decisions = Uint8Array.from({ length: tiles }, () => rng.bernoulli(0.5));
          const opts = { tile: [th, tw] as const, n: cfg.n, m: cfg.m };
          const mask = patchMask(w, decisions, opts);
          for (let t = 0; t < tiles; t++) {
            const [ti, tj] = [Math.floor(t / (cols / tw)), t % (cols / tw)];
            const sub = toContiguous(slice(w, { start: ti * th, end: (ti + 1) * th }, { start: tj * tw, end: (tj + 1) * tw }));
            const ref = decisions[t] ? nmMask(sub, { n: cfg.n, m: cfg.m }) : undefined;
            for (let i = 0; i < th; i++) {
              for (let j = 0; j < tw; j++) {
                const kept = isKept(mask, (ti * th + i) * cols + tj * tw + j);
                expect(kept).toBe(ref ? isKept(ref, i * tw + j) : true);
              }
            }
            if (ref) expect(isNM(ref, { n: cfg.n, m: cfg.m, exact: true }).valid).toBe(true);
          }
          const sparseTiles = decisions.reduce((a, d) => a + d, 0);
          const expected = (sparseTiles * (1 - cfg.n / cfg.m) * th * tw) / (rows * cols);
          expect(patchSparsity([rows, cols], decisions, opts)).toBeCloseTo(expected, 12);
          expect(1 - count(mask) / (rows * cols)).toBeCloseTo(expected, 12);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('spans 0 to 50% for 2:4 and validates the tiling', () => {
    const w = randomTensor([8, 8], new Random(1), { dist: 'normal' });
    expect(count(patchMask(w, new Uint8Array(4)))).toBe(64);
    expect(patchSparsity([8, 8], [1, 1, 1, 1])).toBe(0.5);
    expect(patchSparsity([8, 8], [1, 0, 0, 0])).toBe(0.125);
    expect(() => patchMask(w, [1, 0, 0], {})).toThrow(/needs 4/);
    expect(() => patchMask(w, [1], { tile: [3, 4] })).toThrow(ShapeError);
    expect(() => patchMask(w, [1], { tile: [4, 2] })).toThrow(/multiple of m/);
    expect(() => patchMask(w, [1], { tile: [4, 4], n: 4, m: 4 })).toThrow(ArgumentError);
  });
});
