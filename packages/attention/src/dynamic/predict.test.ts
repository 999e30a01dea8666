import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maskedAttention } from '../attention.js';
import { toDense } from '../mask.js';
import { bruteAttention, maxAbsDiff, normals } from '../testing.js';
import { spargePredict, topKBlocks } from './predict.js';

/** Pooled block probabilities from the definitions: block means, scaled dot products, softmax over eligible blocks. */
function brutePooled(q: Float32Array, k: Float32Array, heads: number, kvHeads: number, seq: number, d: number, bs: number, eligible: (h: number, a: number, b: number) => boolean) {
  const nb = Math.ceil(seq / bs);
  const mean = (x: Float32Array, h: number, b: number) => {
    const m = new Array<number>(d).fill(0);
    const ts = [];
    for (let t = b * bs; t < Math.min(seq, (b + 1) * bs); t++) ts.push(t);
    for (const t of ts) for (let c = 0; c < d; c++) m[c]! += x[(h * seq + t) * d + c]! / ts.length;
    return m;
  };
  const scores: number[][][] = [];
  const probs: number[][][] = [];
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / kvHeads));
    scores.push([]);
    probs.push([]);
    for (let a = 0; a < nb; a++) {
      const qa = mean(q, h, a);
      const s = Array.from({ length: nb }, (_, b) => mean(k, g, b).reduce((acc, x, c) => acc + x * qa[c]!, 0) / Math.sqrt(d));
      const e = s.map((x, b) => (eligible(h, a, b) ? Math.exp(x) : 0));
      const z = e.reduce((x, y) => x + y, 0);
      scores[h]!.push(s);
      probs[h]!.push(e.map((x) => x / z));
    }
  }
  return { nb, scores, probs };
}

describe('spargePredict', () => {
  it('cdfThreshold 1 keeps every causal tile: attention equals dense causal attention', () => {
    fc.assert(
      fc.property(fc.constantFrom([1, 1], [4, 2]), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1 << 30 }), ([heads, kvHeads], seq, bs, seed) => {
        const rng = new Random(seed);
        const d = 4;
        const q = normals(rng, heads * seq * d);
        const k = normals(rng, kvHeads * seq * d);
        const v = normals(rng, kvHeads * seq * d);
        const shape = { heads, kvHeads, seq, headDim: d };
        const pred = spargePredict(shape, q, k, { blockSize: bs, cdfThreshold: 1, simThreshold: rng.uniform(-1, 1) });
        expect(pred.density).toBe(1);
        const { out } = maskedAttention(pred.mask, shape, q, k, v);
        expect(maxAbsDiff(out, bruteAttention(heads, kvHeads, seq, d, q, k, v, (_h, i, j) => j <= i))).toBeLessThan(1e-6);
      }),
      { numRuns: 80 },
    );
  });

  it('keeps the fewest key blocks whose pooled mass reaches the threshold (every block trusted)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 7 }), fc.integer({ min: 1, max: 4 }), fc.double({ min: 0.05, max: 0.99, noNaN: true }), fc.integer({ min: 0, max: 1 << 30 }), fc.boolean(), (nbWanted, bs, tau, seed, causal) => {
        const rng = new Random(seed);
        const [heads, seq, d] = [2, nbWanted * bs, 3];
        const q = normals(rng, heads * seq * d, 2);
        const k = normals(rng, heads * seq * d, 2);
        const pred = spargePredict({ heads, seq, headDim: d }, q, k, { blockSize: bs, cdfThreshold: tau, simThreshold: -1, causal });
        const ref = brutePooled(q, k, heads, heads, seq, d, bs, (_h, a, b) => !causal || b <= a);
        for (let h = 0; h < heads; h++) {
          for (let a = 0; a < ref.nb; a++) {
            const p = ref.probs[h]![a]!;
            const kept = p.map((_, b) => pred.keep[(h * ref.nb + a) * ref.nb + b]!);
            const mass = p.reduce((s, x, b) => s + (kept[b] ? x : 0), 0);
            const count = kept.reduce((s, x) => s + x, 0);
            expect(mass).toBeGreaterThanOrEqual(tau - 1e-12);
            // No set with one block fewer reaches tau: the largest count - 1 probabilities fall short.
            const best = [...p].sort((x, y) => y - x).slice(0, count - 1).reduce((s, x) => s + x, 0);
            expect(best).toBeLessThan(tau + 1e-12);
            for (let b = 0; b < ref.nb; b++) expect(pred.probs[(h * ref.nb + a) * ref.nb + b]).toBeCloseTo(p[b]!, 9);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('on a constructed case keeps exactly the high-mass blocks', () => {
    // Query block a looks for key block target[a]: its queries and that block's keys share a direction.
    const [seq, bs, d] = [32, 4, 8];
    const nb = seq / bs;
    const target = [0, 0, 1, 3, 2, 4, 1, 6];
    const rng = new Random(9);
    const q = new Float32Array(seq * d);
    const k = new Float32Array(seq * d);
    for (let t = 0; t < seq; t++) {
      const b = Math.floor(t / bs);
      for (let c = 0; c < d; c++) {
        q[t * d + c] = (c === target[b] ? 12 : 0) + 0.05 * rng.normal();
        k[t * d + c] = (c === b ? 12 : 0) + 0.05 * rng.normal();
      }
    }
    const pred = spargePredict({ heads: 1, seq, headDim: d }, q, k, { blockSize: bs, cdfThreshold: 0.9 });
    for (let a = 0; a < nb; a++) {
      const kept = Array.from(pred.keep.subarray(a * nb, a * nb + nb)).flatMap((x, b) => (x ? [b] : []));
      expect(kept).toEqual([target[a]]);
    }
    expect(pred.density).toBeCloseTo(nb / ((nb * (nb + 1)) / 2), 12);
    // The element mask: causal inside the kept tiles only.
    const dense = toDense(pred.mask);
    for (let i = 0; i < seq; i++) for (let j = 0; j < seq; j++) expect(dense[i * seq + j]).toBe(j <= i && Math.floor(j / bs) === target[Math.floor(i / bs)] ? 1 : 0);
  });

  it('a query block that is not self-similar computes all its key blocks; an untrusted key block is computed by all', () => {
    const [seq, bs, d] = [16, 4, 6];
    const rng = new Random(4);
    const q = new Float32Array(seq * d);
    const k = new Float32Array(seq * d);
    for (let t = 0; t < seq; t++) {
      const b = Math.floor(t / bs);
      for (let c = 0; c < d; c++) {
        // Query block 2 and key block 1 are noise; the rest are tight clusters.
        q[t * d + c] = b === 2 ? rng.normal() : (c === 0 ? 10 : 0) + 0.01 * rng.normal();
        k[t * d + c] = b === 1 ? rng.normal() : (c === b ? 10 : 0) + 0.01 * rng.normal();
      }
    }
    const pred = spargePredict({ heads: 1, seq, headDim: d }, q, k, { blockSize: bs, cdfThreshold: 0.5, simThreshold: 0.8 });
    expect(pred.qSimilarity[2]).toBeLessThan(0.8);
    expect(pred.kSimilarity[1]).toBeLessThan(0.8);
    expect(Array.from(pred.keep.subarray(8, 12))).toEqual([1, 1, 1, 0]);
    for (const a of [1, 3]) expect(pred.keep[a * 4 + 1]).toBe(1);
    // Query block 3 points at key block 0 (direction 0), which is trusted and takes the mass.
    expect(Array.from(pred.keep.subarray(12, 16))).toEqual([1, 1, 0, 0]);
  });

  it('names bad arguments', () => {
    const x = new Float32Array(8);
    expect(() => spargePredict({ heads: 1, seq: 4, headDim: 2 }, x, x, { blockSize: 2, cdfThreshold: 0 })).toThrow(/cdfThreshold/);
    expect(() => spargePredict({ heads: 1, seq: 4, headDim: 2 }, x, x, { blockSize: 0, cdfThreshold: 0.5 })).toThrow(ArgumentError);
    expect(() => spargePredict({ heads: 1, seq: 5, headDim: 2 }, x, x, { blockSize: 2, cdfThreshold: 0.5 })).toThrow(ShapeError);
    expect(() => spargePredict({ heads: 3, kvHeads: 2, seq: 4, headDim: 2 }, x, x, { blockSize: 2, cdfThreshold: 0.5 })).toThrow(/kvHeads/);
  });
});

describe('topKBlocks', () => {
  it('keeps the diagonal plus the k best-scoring eligible key blocks (brute-force pooled scores)', () => {
    fc.assert(
      fc.property(fc.constantFrom([1, 1], [2, 1]), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 4 }), fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }), ([heads, kvHeads], seq, bs, kk, causal, seed) => {
        const rng = new Random(seed);
        const d = 3;
        const q = normals(rng, heads * seq * d);
        const k = normals(rng, kvHeads * seq * d);
        const pred = topKBlocks({ heads, kvHeads, seq, headDim: d }, q, k, { blockSize: bs, k: kk, causal });
        const ref = brutePooled(q, k, heads, kvHeads, seq, d, bs, () => true);
        for (let h = 0; h < heads; h++) {
          for (let a = 0; a < ref.nb; a++) {
            const s = ref.scores[h]![a]!;
            const others = s.map((x, b) => ({ x, b })).filter(({ b }) => b !== a && (!causal || b < a));
            others.sort((u, w) => w.x - u.x || u.b - w.b);
            const want = new Set([a, ...others.slice(0, kk).map((o) => o.b)]);
            for (let b = 0; b < ref.nb; b++) expect(pred.keep[(h * ref.nb + a) * ref.nb + b]).toBe(want.has(b) ? 1 : 0);
          }
        }
      }),
      { numRuns: 120 },
    );
  });
});
