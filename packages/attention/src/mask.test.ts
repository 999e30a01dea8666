import { ArgumentError, blockSparseAttentionReference, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { kernelMaskArgs, maskedAttention } from './attention.js';
import { blockMaskFromElements, elementAllowed, maskDensity, restrictTiles, setBitRange, toDense, validateBlockMask, type BlockMask } from './mask.js';
import { and, causal, documents, slidingWindow, toBlockMask } from './patterns.js';
import { bruteAttention, maxAbsDiff, normals } from './testing.js';

describe('BlockMask from arbitrary element masks', () => {
  it('per-head random masks: toDense returns the element mask, density counts it, tiles classify it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 1 << 30 }), (heads, seq, bs, seed) => {
        const rng = new Random(seed);
        const p = rng.uniform();
        const dense = Uint8Array.from({ length: heads * seq * seq }, () => (rng.uniform() < p ? 1 : 0));
        const m = blockMaskFromElements((h, i, j) => dense[(h * seq + i) * seq + j] === 1, { seq, blockSize: bs, heads });
        validateBlockMask(m);
        expect(Array.from(toDense(m))).toEqual(Array.from(dense));
        const nb = Math.ceil(seq / bs);
        for (let h = 0; h < heads; h++) {
          for (let a = 0; a < nb; a++) {
            for (let b = 0; b < nb; b++) {
              const vals: number[] = [];
              for (let i = a * bs; i < Math.min(seq, (a + 1) * bs); i++) for (let j = b * bs; j < Math.min(seq, (b + 1) * bs); j++) vals.push(dense[(h * seq + i) * seq + j]!);
              const want = vals.every((x) => x === 1) ? 1 : vals.every((x) => x === 0) ? 0 : 2;
              expect(m.tiles[(h * nb + a) * nb + b]).toBe(want);
            }
          }
        }
        const d = maskDensity(m);
        expect(d.allowedElements).toBe(dense.reduce((s, x) => s + x, 0));
        expect(d.elements).toBeCloseTo(d.allowedElements / (heads * seq * seq), 12);
        expect(d.computedTiles).toBe(Array.from(m.tiles).filter((t) => t !== 0).length);
      }),
      { numRuns: 150 },
    );
  });
  it('setBitRange sets exactly the range, across byte boundaries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.nat(), fc.nat(), fc.nat(), (seq, a, b, r) => {
        const i = r % seq;
        const [j0, j1] = [a % (seq + 1), b % (seq + 1)].sort((x, y) => x - y) as [number, number];
        const bits = new Uint8Array(Math.ceil((2 * seq * seq) / 8));
        setBitRange(bits, seq, 1, i, j0, j1);
        for (let p = 0; p < 2 * seq * seq; p++) {
          const want = p >= (seq + i) * seq + j0 && p < (seq + i) * seq + j1 ? 1 : 0;
          expect((bits[p >> 3]! >> (p & 7)) & 1).toBe(want);
        }
      }),
    );
  });
});

describe('restrictTiles', () => {
  it('drops unselected tiles per head and keeps the element rule in the rest', () => {
    const base = toBlockMask(causal(), { seq: 9, blockSize: 3 });
    const keep = new Uint8Array(2 * 9);
    keep.set([1, 0, 0, 0, 1, 0, 1, 0, 1], 0);
    keep.set([1, 0, 0, 1, 0, 0, 0, 0, 1], 9);
    const m = restrictTiles(base, keep, 2);
    expect(m.heads).toBe(2);
    const dense = toDense(m);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 9; i++) {
        for (let j = 0; j < 9; j++) {
          const want = j <= i && keep[h * 9 + Math.floor(i / 3) * 3 + Math.floor(j / 3)] === 1 ? 1 : 0;
          expect(dense[(h * 9 + i) * 9 + j]).toBe(want);
        }
      }
    }
  });
});

describe('maskedAttention', () => {
  it('equals brute-force attention under the element mask, with GQA and per-head masks', () => {
    fc.assert(
      fc.property(fc.constantFrom([1, 1], [2, 1], [4, 2]), fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1 << 30 }), fc.boolean(), ([heads, kvHeads], seq, bs, seed, perHead) => {
        const rng = new Random(seed);
        const d = 4;
        const q = normals(rng, heads * seq * d);
        const k = normals(rng, kvHeads * seq * d);
        const v = normals(rng, kvHeads * seq * d);
        const dense = Uint8Array.from({ length: heads * seq * seq }, () => (rng.uniform() < 0.6 ? 1 : 0));
        const allowed = (h: number, i: number, j: number) => dense[((perHead ? h : 0) * seq + i) * seq + j] === 1;
        const m = blockMaskFromElements(allowed, { seq, blockSize: bs, heads: perHead ? heads : 1 });
        const { out } = maskedAttention(m, { heads, kvHeads, seq, headDim: d }, q, k, v);
        expect(maxAbsDiff(out, bruteAttention(heads, kvHeads, seq, d, q, k, v, allowed))).toBeLessThan(1e-6);
      }),
      { numRuns: 120 },
    );
  });
  it('agrees with the tensor package reference kernel on the same mask arguments', () => {
    const rng = new Random(3);
    const [heads, seq, d] = [2, 21, 8];
    const q = normals(rng, heads * seq * d);
    const k = normals(rng, heads * seq * d);
    const v = normals(rng, heads * seq * d);
    const m = toBlockMask(and(causal(), slidingWindow(7)), { seq, blockSize: 4 });
    const out = new Float32Array(heads * seq * d);
    const stats = { tiles: 0 };
    blockSparseAttentionReference({ heads, seq, headDim: d, q, qOffset: 0, k, kOffset: 0, v, vOffset: 0, out, outOffset: 0, causal: false, stats, ...kernelMaskArgs(m) });
    const mine = maskedAttention(m, { heads, seq, headDim: d }, q, k, v);
    expect(maxAbsDiff(mine.out, out)).toBeLessThan(1e-6);
    expect(mine.tiles).toBe(stats.tiles);
  });
  it('rejects masks of another length or head count', () => {
    const m = toBlockMask(causal(), { seq: 4, blockSize: 2, heads: 3 });
    const x = new Float32Array(2 * 4 * 2);
    expect(() => maskedAttention(m, { heads: 2, seq: 4, headDim: 2 }, x, x, x)).toThrow(ShapeError);
    expect(() => maskedAttention(toBlockMask(documents([0, 0, 1]), { seq: 3, blockSize: 2 }), { heads: 2, seq: 4, headDim: 2 }, x, x, x)).toThrow(/seq/);
  });
});

describe('validateBlockMask / elementAllowed', () => {
  it('name what is wrong', () => {
    const m = toBlockMask(causal(), { seq: 5, blockSize: 2 });
    expect(() => validateBlockMask({ ...m, nb: 2 })).toThrow(/nb/);
    expect(() => validateBlockMask({ ...m, tiles: new Uint8Array(4) })).toThrow(ShapeError);
    const { elementBits: _, ...noBits } = m;
    expect(() => validateBlockMask(noBits as BlockMask)).toThrow(/elementBits/);
    expect(() => validateBlockMask({ ...m, tiles: m.tiles.map(() => 3) })).toThrow(ArgumentError);
    expect(() => elementAllowed(m, 0, 5, 0)).toThrow(ArgumentError);
  });
});

describe('maskedAttention causal option', () => {
  it('causal on top of a full mask equals brute-force causal attention, and counts only tiles at or below the diagonal', () => {
    const rng = new Random(8);
    const [heads, seq, d] = [1, 10, 3];
    const q = normals(rng, seq * d);
    const k = normals(rng, seq * d);
    const v = normals(rng, seq * d);
    const m = toBlockMask(slidingWindow(100, { causal: false }), { seq, blockSize: 4 });
    const r = maskedAttention(m, { heads, seq, headDim: d }, q, k, v, { causal: true });
    expect(maxAbsDiff(r.out, bruteAttention(heads, heads, seq, d, q, k, v, (_h, i, j) => j <= i))).toBeLessThan(1e-6);
    expect(r.tiles).toBe(6);
  });
});
