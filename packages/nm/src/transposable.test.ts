import { count, isKept } from '@sparse/masks';
import { ArgumentError, Random, randomTensor, ShapeError, tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isNM } from './mask.js';
import { transposableNMMask, transposablePatterns } from './transposable.js';

/** Independent reference: all 2^(m*m) 0/1 matrices, filtered to N per row and column. */
function bruteForcePatterns(n: number, m: number): number[][] {
  const out: number[][] = [];
  for (let b = 0; b < 2 ** (m * m); b++) {
    const cells = [...Array(m * m).keys()].filter((c) => Math.floor(b / 2 ** c) % 2 === 1);
    if (cells.length !== n * m) continue;
    const ok = [...Array(m).keys()].every((r) => cells.filter((c) => Math.floor(c / m) === r).length === n && cells.filter((c) => c % m === r).length === n);
    if (ok) out.push(cells);
  }
  return out;
}

describe('transposablePatterns', () => {
  it('lists exactly the brute-force patterns (90 for 2:4)', () => {
    for (const [n, m] of [
      [2, 4],
      [1, 4],
      [3, 4],
      [1, 3],
      [2, 3],
    ] as const) {
      const p = transposablePatterns(n, m);
      const brute = bruteForcePatterns(n, m);
      expect(p.count).toBe(brute.length);
      const ours = new Set(Array.from({ length: p.count }, (_, i) => Array.from(p.cells.subarray(i * n * m, (i + 1) * n * m)).sort((a, b) => a - b).join(',')));
      expect(ours).toEqual(new Set(brute.map((c) => c.join(','))));
    }
    expect(transposablePatterns(2, 4).count).toBe(90);
  });
});

describe('transposableNMMask', () => {
  const brute24 = bruteForcePatterns(2, 4);

  it('is N:M in both directions, equals brute force per block, and never keeps less than greedy', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
        const w = randomTensor([8, 12], new Random(seed), { dist: 'normal' });
        const exact = transposableNMMask(w, { n: 2, m: 4 });
        const greedy = transposableNMMask(w, { n: 2, m: 4, method: 'greedy' });
        for (const r of [exact, greedy]) {
          expect(isNM(r.mask, { n: 2, m: 4, axis: 'row', exact: true }).valid).toBe(true);
          expect(isNM(r.mask, { n: 2, m: 4, axis: 'column', exact: true }).valid).toBe(true);
          expect(count(r.mask)).toBe(48);
        }
        expect(exact.kept).toBeGreaterThanOrEqual(greedy.kept - 1e-9);
        // Brute force: best of all 90 patterns for every block, and the mask's kept sum matches.
        let best = 0;
        let fromMask = 0;
        for (let bi = 0; bi < 8; bi += 4) {
          for (let bj = 0; bj < 12; bj += 4) {
            const at = (c: number) => (bi + Math.floor(c / 4)) * 12 + bj + (c % 4);
            best += Math.max(...brute24.map((cells) => cells.reduce((a, c) => a + Math.abs(w.data[at(c)]!), 0)));
          }
        }
        for (let i = 0; i < 96; i++) if (isKept(exact.mask, i)) fromMask += Math.abs(w.data[i]!);
        expect(exact.kept).toBeCloseTo(best, 9);
        expect(fromMask).toBeCloseTo(best, 4);
      }),
      { numRuns: 40 },
    );
  });

  it('beats the greedy baseline on a block where largest-first is a trap', () => {
    // 1:2 blocks: greedy keeps 10 then is forced onto 0 (total 10); exact keeps 9 + 9 = 18.
    const w = tensor(Float32Array.from([10, 9, 9, 0]), [2, 2]);
    expect(transposableNMMask(w, { n: 1, m: 2, method: 'greedy' }).kept).toBe(10);
    expect(transposableNMMask(w, { n: 1, m: 2 }).kept).toBe(18);
  });

  it('rejects bad parameters and shapes', () => {
    const w = randomTensor([4, 6], new Random(0));
    expect(() => transposableNMMask(w, { n: 2, m: 4 })).toThrow(ShapeError);
    expect(() => transposableNMMask(w, { n: 2, m: 2 })).toThrow(ArgumentError);
    expect(() => transposablePatterns(4, 8)).toThrow(ArgumentError);
    expect(() => transposablePatterns(3, 6)).toThrow(/more than 200000/);
  });
});
