import { ArgumentError, attentionBitmapKVReference, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxAbsDiff, normals } from '../testing.js';
import { bitmapBreakEvenSparsity, BitmapKVCache, bitmapKVAttention, keptPerRow, topMagnitude } from './bitmap-cache.js';

/** Per-row magnitude pruning from the definition: zero every entry smaller in |x| than the keep-th largest (ties to the lower index). */
function bruteMask(x: Float32Array, rows: number, d: number, keep: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) {
      const a = Math.abs(x[r * d + c]!);
      let ahead = 0;
      for (let e = 0; e < d; e++) {
        const b = Math.abs(x[r * d + e]!);
        if (b > a || (b === a && e < c)) ahead++;
      }
      if (ahead < keep) out[r * d + c] = x[r * d + c]!;
    }
  }
  return out;
}

/** Decode attention over a dense [positions, kvHeads, d] cache, from the definition. */
function bruteDecode(k: Float32Array, v: Float32Array, q: Float32Array, heads: number, kvHeads: number, positions: number, d: number): Float64Array {
  const out = new Float64Array(heads * d);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / kvHeads));
    const s = Array.from({ length: positions }, (_, p) => {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[h * d + c]! * k[(p * kvHeads + g) * d + c]!;
      return dot / Math.sqrt(d);
    });
    const m = Math.max(...s);
    const w = s.map((x) => Math.exp(x - m));
    const z = w.reduce((a, b) => a + b, 0);
    for (let p = 0; p < positions; p++) for (let c = 0; c < d; c++) out[h * d + c]! += (w[p]! / z) * v[(p * kvHeads + g) * d + c]!;
  }
  return out;
}

describe('BitmapKVCache', () => {
  it('stores exactly the magnitude-pruned cache; attention over it equals attention over the masked dense cache', () => {
    fc.assert(
      fc.property(
        fc.constantFrom([1, 1], [4, 2], [6, 3], [2, 2]),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0, max: 0.95, noNaN: true }),
        fc.double({ min: 0, max: 0.95, noNaN: true }),
        fc.integer({ min: 0, max: 1 << 30 }),
        ([heads, kvHeads], d, positions, ks, vs, seed) => {
          const rng = new Random(seed);
          const k = normals(rng, positions * kvHeads * d);
          const v = normals(rng, positions * kvHeads * d);
          const cache = new BitmapKVCache({ kvHeads, headDim: d, kSparsity: ks, vSparsity: vs, capacity: 3 });
          cache.appendMany(k, v);
          expect(cache.positions).toBe(positions);
          const dense = cache.toDense();
          const km = bruteMask(k, positions * kvHeads, d, keptPerRow(d, ks));
          const vm = bruteMask(v, positions * kvHeads, d, keptPerRow(d, vs));
          expect(Array.from(dense.k)).toEqual(Array.from(km));
          expect(Array.from(dense.v)).toEqual(Array.from(vm));
          const q = normals(rng, heads * d);
          const out = bitmapKVAttention(cache, q, heads);
          expect(maxAbsDiff(out, bruteDecode(km, vm, q, heads, kvHeads, positions, d))).toBeLessThan(1e-6);
          // The same layout read by the tensor package's reference kernel.
          const ref = new Float32Array(heads * d);
          attentionBitmapKVReference({ heads, kvHeads, headDim: d, positions, q, qOffset: 0, kBits: cache.kBits, vBits: cache.vBits, kValues: cache.kValues, vValues: cache.vValues, kStart: cache.kStart, vStart: cache.vStart, out: ref, outOffset: 0 });
          expect(maxAbsDiff(out, ref)).toBeLessThan(1e-6);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('achieves the target sparsity exactly when it is a whole number of entries', () => {
    for (const [d, s] of [[128, 0.5], [128, 0.7], [64, 0.75], [8, 0.875]] as const) {
      const rng = new Random(d);
      const cache = new BitmapKVCache({ kvHeads: 2, headDim: d, kSparsity: s });
      for (let p = 0; p < 20; p++) cache.append(normals(rng, 2 * d), normals(rng, 2 * d));
      const want = Math.round(s * d) / d;
      expect(cache.sparsity()).toBeCloseTo(want, 12);
      if (Number.isInteger(s * d)) expect(cache.sparsity()).toBe(s);
      for (let r = 0; r < 40; r++) expect(cache.kStart[r + 1]! - cache.kStart[r]!).toBe(d - Math.round(s * d));
    }
  });

  it('bits are LSB first with zero padding; values in (position, kvHead, dim) order', () => {
    const cache = new BitmapKVCache({ kvHeads: 2, headDim: 10, kSparsity: 0.7 });
    const k = Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 5, -7, /* head 1 */ 1, 0, 0, 9, 0, 0, 0, 0, 0, 0]);
    cache.append(k, k);
    // head 0 keeps dims 8, 9 and the first of the zero ties (dim 0); head 1 keeps 0, 3 and dim 1.
    expect(Array.from(cache.kBits)).toEqual([0b00000001, 0b11, 0b00001011, 0]);
    expect(Array.from(cache.kValues)).toEqual([0, 5, -7, 1, 0, 9]);
    expect(Array.from(cache.kStart)).toEqual([0, 3, 6]);
  });

  it('is smaller than dense from the break-even sparsity on; at 50% about 0.53 of dense for headDim 128', () => {
    const rng = new Random(5);
    const d = 128;
    expect(bitmapBreakEvenSparsity(d)).toBeCloseTo(20 / 512, 12);
    for (const s of [0.03, 0.05, 0.5, 0.7, 0.9]) {
      const cache = new BitmapKVCache({ kvHeads: 4, headDim: d, kSparsity: s });
      for (let p = 0; p < 64; p++) cache.append(normals(rng, 4 * d), normals(rng, 4 * d));
      // Exact bytes: per K and V row ceil(d/8) bits + 4 * kept values + 4 start bytes, plus one final start each.
      const rows = 64 * 4;
      expect(cache.bytes()).toBe(2 * (rows * (d / 8 + 4 * keptPerRow(d, s) + 4) + 4));
      expect(cache.bytes() < cache.denseBytes()).toBe(s > bitmapBreakEvenSparsity(d));
      if (s === 0.5) expect(cache.bytes() / cache.denseBytes()).toBeCloseTo(0.5 + 20 / 512, 3);
    }
  });

  it('topMagnitude returns the largest entries in index order', () => {
    expect(Array.from(topMagnitude([3, -9, 1, 4, -4], 0, 5, 3))).toEqual([1, 3, 4]);
  });

  it('rejects bad options and shapes', () => {
    expect(() => new BitmapKVCache({ kvHeads: 0, headDim: 4, kSparsity: 0.5 })).toThrow(/kvHeads/);
    expect(() => new BitmapKVCache({ kvHeads: 1, headDim: 4, kSparsity: 1 })).toThrow(ArgumentError);
    const c = new BitmapKVCache({ kvHeads: 2, headDim: 4, kSparsity: 0.5 });
    expect(() => c.append(new Float32Array(4), new Float32Array(8))).toThrow(ShapeError);
    expect(() => bitmapKVAttention(c, new Float32Array(12), 3)).toThrow(/multiple/);
    expect(Array.from(bitmapKVAttention(c, new Float32Array(8), 2))).toEqual(new Array(8).fill(0));
  });
});

describe('topMagnitude against sorting', () => {
  it('equals the first keep indices of a stable sort by descending |x|, with many ties', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 40 }), fc.nat(), (xs, r) => {
        const keep = 1 + (r % xs.length);
        const want = xs.map((x, c) => ({ a: Math.abs(x), c })).sort((u, w) => w.a - u.a || u.c - w.c).slice(0, keep).map((o) => o.c).sort((a, b) => a - b);
        expect(Array.from(topMagnitude(Float32Array.from(xs), 0, xs.length, keep))).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
