import { describe, expect, it } from 'vitest';
import { ArgumentError, LayoutError } from '../errors.js';
import {
  attentionBitmapKVReference,
  blockSparseAttentionBackwardReference,
  blockSparseAttentionReference,
} from './reference/attention.js';
import { getKernel } from './registry.js';
import type { AttentionBitmapKVArgs, BlockSparseAttentionArgs, BlockSparseAttentionBackwardArgs } from './types.js';

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(n: number, r: () => number, amp = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() * 2 - 1) * amp;
  return x;
}

interface Problem {
  heads: number;
  seq: number;
  d: number;
  blockSize: number;
  causal: boolean;
  blockMask: Uint8Array;
  elementMask: Uint8Array;
  perHeadElements: boolean;
  perHeadBlocks: boolean;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  scale: number;
}

function problem(seed: number, heads: number, seq: number, d: number, blockSize: number, causal: boolean, perHeadBlocks: boolean, perHeadElements: boolean): Problem {
  const r = mulberry(seed);
  const nb = Math.ceil(seq / blockSize);
  const blockMask = new Uint8Array((perHeadBlocks ? heads : 1) * nb * nb);
  for (let t = 0; t < blockMask.length; t++) blockMask[t] = Math.floor(r() * 3);
  const bits = (perHeadElements ? heads : 1) * seq * seq;
  const elementMask = new Uint8Array(Math.ceil(bits / 8));
  for (let n = 0; n < bits; n++) if (r() < 0.6) elementMask[n >> 3]! |= 1 << (n & 7);
  const size = heads * seq * d;
  return {
    heads, seq, d, blockSize, causal, blockMask, elementMask, perHeadElements, perHeadBlocks,
    q: randn(size, r), k: randn(size, r), v: randn(size, r), scale: 0.7 / Math.sqrt(d),
  };
}

/** The dense element mask the tiles imply (causal included): allowed[h][i * seq + j]. */
function denseMask(p: Problem): Uint8Array[] {
  const nb = Math.ceil(p.seq / p.blockSize);
  const masks: Uint8Array[] = [];
  for (let h = 0; h < p.heads; h++) {
    const m = new Uint8Array(p.seq * p.seq);
    for (let i = 0; i < p.seq; i++) {
      for (let j = 0; j < p.seq; j++) {
        if (p.causal && j > i) continue;
        const t = p.blockMask[(p.perHeadBlocks ? h * nb * nb : 0) + Math.floor(i / p.blockSize) * nb + Math.floor(j / p.blockSize)]!;
        const n = (p.perHeadElements ? h * p.seq * p.seq : 0) + i * p.seq + j;
        const bit = (p.elementMask[n >> 3]! >> (n & 7)) & 1;
        m[i * p.seq + j] = t === 0 ? 0 : t === 2 ? bit : 1;
      }
    }
    masks.push(m);
  }
  return masks;
}

/** Float64 dense masked attention from arbitrary float64 inputs: out and lse. */
function dense64(p: Problem, mask: Uint8Array[], q: Float64Array, k: Float64Array, v: Float64Array): { out: Float64Array; lse: Float64Array; P: Float64Array } {
  const { heads, seq, d, scale } = p;
  const out = new Float64Array(heads * seq * d);
  const lse = new Float64Array(heads * seq);
  const P = new Float64Array(heads * seq * seq);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < seq; i++) {
      let max = -Infinity;
      const s = new Float64Array(seq);
      for (let j = 0; j < seq; j++) {
        if (!mask[h]![i * seq + j]) continue;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(h * seq + i) * d + c]! * k[(h * seq + j) * d + c]!;
        s[j] = dot * scale;
        max = Math.max(max, s[j]!);
      }
      if (max === -Infinity) {
        lse[h * seq + i] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < seq; j++) if (mask[h]![i * seq + j]) sum += Math.exp(s[j]! - max);
      lse[h * seq + i] = max + Math.log(sum);
      for (let j = 0; j < seq; j++) {
        if (!mask[h]![i * seq + j]) continue;
        const w = Math.exp(s[j]! - max) / sum;
        P[(h * seq + i) * seq + j] = w;
        for (let c = 0; c < d; c++) out[(h * seq + i) * d + c]! += w * v[(h * seq + j) * d + c]!;
      }
    }
  }
  return { out, lse, P };
}

function forwardArgs(p: Problem, out: Float32Array, extra: Partial<BlockSparseAttentionArgs> = {}): BlockSparseAttentionArgs {
  return {
    heads: p.heads, seq: p.seq, headDim: p.d, q: p.q, qOffset: 0, k: p.k, kOffset: 0, v: p.v, vOffset: 0,
    out, outOffset: 0, causal: p.causal, scale: p.scale, blockSize: p.blockSize, blockMask: p.blockMask, elementMask: p.elementMask, ...extra,
  };
}

function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (w === -Infinity || g === -Infinity) {
      if (g !== w) expect.fail(`${what}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    if (!(Math.abs(g - w) <= tol * (1 + Math.abs(w)))) expect.fail(`${what}[${i}]: got ${g}, want ${w}`);
  }
}

const shapes: Array<[string, number, number, number, number, boolean, boolean, boolean]> = [
  // name, heads, seq, d, blockSize, causal, perHeadBlocks, perHeadElements
  ['shared masks', 2, 12, 5, 4, false, false, false],
  ['causal, odd seq, per-head tiles', 3, 11, 4, 4, true, true, false],
  ['per-head element mask, causal', 2, 9, 3, 2, true, false, true],
  ['one block larger than seq', 1, 5, 4, 8, false, false, false],
];

describe('blockSparseAttention with partial tiles', () => {
  it.each(shapes)('equals dense attention under the same element mask (%s), with lse and tile counts', (_, heads, seq, d, bs, causal, pb, pe) => {
    const p = problem(seq * 31 + heads, heads, seq, d, bs, causal, pb, pe);
    const mask = denseMask(p);
    const want = dense64(p, mask, Float64Array.from(p.q), Float64Array.from(p.k), Float64Array.from(p.v));
    const out = new Float32Array(heads * seq * d).fill(NaN);
    const lse = new Float32Array(heads * seq + 3).fill(NaN);
    const stats = { tiles: 5 };
    getKernel('blockSparseAttention')(forwardArgs(p, out, { lse, lseOffset: 3, stats }));
    expectNear(out, want.out, 1e-6, 'out');
    expectNear(lse.subarray(3), want.lse, 1e-6, 'lse');
    const nb = Math.ceil(seq / bs);
    let tiles = 0;
    for (let h = 0; h < heads; h++) {
      for (let bi = 0; bi < nb; bi++) for (let bj = 0; bj < nb; bj++) {
        if (causal && bj > bi) continue;
        if (p.blockMask[(pb ? h * nb * nb : 0) + bi * nb + bj] !== 0) tiles++;
      }
    }
    expect(stats.tiles).toBe(5 + tiles);
  });

  it('keeps the old behaviour without an element mask (nonzero = full tile)', () => {
    const p = problem(7, 2, 8, 4, 4, true, false, false);
    p.blockMask = Uint8Array.from([1, 0, 255, 1]);
    const mask = denseMask(p);
    const want = dense64(p, mask, Float64Array.from(p.q), Float64Array.from(p.k), Float64Array.from(p.v));
    const out = new Float32Array(2 * 8 * 4);
    blockSparseAttentionReference(forwardArgs(p, out, { elementMask: undefined }));
    expectNear(out, want.out, 1e-6, 'out');
  });

  it('rejects a partial tile without an element mask, and masks of the wrong size', () => {
    const p = problem(3, 2, 8, 4, 4, false, false, false);
    p.blockMask = Uint8Array.from([1, 2, 0, 1]);
    const out = new Float32Array(2 * 8 * 4);
    expect(() => blockSparseAttentionReference(forwardArgs(p, out, { elementMask: undefined }))).toThrow(ArgumentError);
    expect(() => blockSparseAttentionReference(forwardArgs(p, out, { elementMask: new Uint8Array(9) }))).toThrow(/elementMask has length 9/);
    expect(() => blockSparseAttentionReference(forwardArgs(p, out, { lse: new Float32Array(15) }))).toThrow(/lse has length 15/);
  });
});

function backwardArgs(p: Problem, out: Float32Array, lse: Float32Array, dOut: Float32Array, grads: Float32Array[], stats?: { tiles: number }): BlockSparseAttentionBackwardArgs {
  return {
    heads: p.heads, seq: p.seq, headDim: p.d, q: p.q, qOffset: 0, k: p.k, kOffset: 0, v: p.v, vOffset: 0,
    out, outOffset: 0, dOut, dOutOffset: 0, lse, lseOffset: 0, causal: p.causal, scale: p.scale,
    blockSize: p.blockSize, blockMask: p.blockMask, elementMask: p.elementMask,
    dq: grads[0]!, dqOffset: 0, dk: grads[1]!, dkOffset: 0, dv: grads[2]!, dvOffset: 0, stats,
  };
}

describe('blockSparseAttentionBackward', () => {
  it.each(shapes)('equals finite differences and the float64 dense masked gradient (%s)', (_, heads, seq, d, bs, causal, pb, pe) => {
    const p = problem(seq * 17 + heads * 3, heads, seq, d, bs, causal, pb, pe);
    const mask = denseMask(p);
    const size = heads * seq * d;
    const out = new Float32Array(size);
    const lse = new Float32Array(heads * seq);
    blockSparseAttentionReference(forwardArgs(p, out, { lse }));
    const dOut = randn(size, mulberry(99 + seq));
    const grads = [new Float32Array(size).fill(NaN), new Float32Array(size).fill(NaN), new Float32Array(size).fill(NaN)];
    const stats = { tiles: 0 };
    getKernel('blockSparseAttentionBackward')(backwardArgs(p, out, lse, dOut, grads, stats));
    const fwdStats = { tiles: 0 };
    blockSparseAttentionReference(forwardArgs(p, new Float32Array(size), { stats: fwdStats }));
    expect(stats.tiles).toBe(fwdStats.tiles);

    // Analytic gradient of dense masked attention in float64 (softmax Jacobian, not the D trick).
    const q = Float64Array.from(p.q);
    const k = Float64Array.from(p.k);
    const v = Float64Array.from(p.v);
    const { P } = dense64(p, mask, q, k, v);
    const gq = new Float64Array(size);
    const gk = new Float64Array(size);
    const gv = new Float64Array(size);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        const dP = new Float64Array(seq);
        let dot = 0;
        for (let j = 0; j < seq; j++) {
          for (let c = 0; c < d; c++) dP[j]! += dOut[(h * seq + i) * d + c]! * v[(h * seq + j) * d + c]!;
          dot += P[(h * seq + i) * seq + j]! * dP[j]!;
        }
        for (let j = 0; j < seq; j++) {
          const pij = P[(h * seq + i) * seq + j]!;
          const ds = pij * (dP[j]! - dot) * p.scale;
          for (let c = 0; c < d; c++) {
            gv[(h * seq + j) * d + c]! += pij * dOut[(h * seq + i) * d + c]!;
            gq[(h * seq + i) * d + c]! += ds * k[(h * seq + j) * d + c]!;
            gk[(h * seq + j) * d + c]! += ds * q[(h * seq + i) * d + c]!;
          }
        }
      }
    }
    expectNear(grads[0]!, gq, 2e-5, 'dq');
    expectNear(grads[1]!, gk, 2e-5, 'dk');
    expectNear(grads[2]!, gv, 2e-5, 'dv');

    // Central finite differences of loss = sum(dOut * out) in float64, on a few entries of each input.
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array): number => {
      const o = dense64(p, mask, qq, kk, vv).out;
      let s = 0;
      for (let x = 0; x < size; x++) s += o[x]! * dOut[x]!;
      return s;
    };
    const eps = 1e-6;
    const r = mulberry(5);
    for (const [which, base, got] of [['q', q, grads[0]!], ['k', k, grads[1]!], ['v', v, grads[2]!]] as const) {
      for (let t = 0; t < 6; t++) {
        const x = Math.floor(r() * size);
        const plus = Float64Array.from(base);
        const minus = Float64Array.from(base);
        plus[x]! += eps;
        minus[x]! -= eps;
        const args = (arr: Float64Array): [Float64Array, Float64Array, Float64Array] =>
          which === 'q' ? [arr, k, v] : which === 'k' ? [q, arr, v] : [q, k, arr];
        const fd = (loss(...args(plus)) - loss(...args(minus))) / (2 * eps);
        if (!(Math.abs(got[x]! - fd) <= 1e-4 * (1 + Math.abs(fd)))) expect.fail(`d${which}[${x}]: got ${got[x]}, finite difference ${fd}`);
      }
    }
  });

  it('rejects overlapping gradients', () => {
    const p = problem(1, 1, 4, 2, 2, false, false, false);
    const size = 8;
    const out = new Float32Array(size);
    const lse = new Float32Array(4);
    blockSparseAttentionReference(forwardArgs(p, out, { lse }));
    const g = new Float32Array(size);
    expect(() => blockSparseAttentionBackwardReference(backwardArgs(p, out, lse, new Float32Array(size), [g, g, new Float32Array(size)]))).toThrow(/dq overlaps dk/);
  });
});

/** Packs a dense [positions, kvHeads, d] cache through a keep mask into the bitmap layout. */
function packCache(dense: Float32Array, keep: (n: number) => boolean, rows: number, d: number): { bits: Uint8Array; values: Float32Array; start: Int32Array; masked: Float32Array } {
  const rowBytes = Math.ceil(d / 8);
  const bits = new Uint8Array(rows * rowBytes);
  const values: number[] = [];
  const start = new Int32Array(rows + 1);
  const masked = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    start[r] = values.length;
    for (let c = 0; c < d; c++) {
      if (!keep(r * d + c)) continue;
      bits[r * rowBytes + (c >> 3)]! |= 1 << (c & 7);
      values.push(dense[r * d + c]!);
      masked[r * d + c] = dense[r * d + c]!;
    }
  }
  start[rows] = values.length;
  return { bits, values: Float32Array.from(values), start, masked };
}

describe('attentionBitmapKV', () => {
  it.each([
    [4, 2, 12, 7],
    [8, 8, 16, 1],
    [6, 1, 9, 20],
    [2, 2, 4, 0],
  ])('equals attention over the masked dense cache (heads %i, kvHeads %i, headDim %i, positions %i)', (heads, kvHeads, d, positions) => {
    const r = mulberry(heads * 100 + d);
    const rows = positions * kvHeads;
    const kc = packCache(randn(rows * d, r), () => r() < 0.5, rows, d);
    const vc = packCache(randn(rows * d, r), () => r() < 0.7, rows, d);
    const q = randn(heads * d + 2, r);
    const out = new Float32Array(heads * d + 1).fill(NaN);
    const scale = 0.4;
    const args: AttentionBitmapKVArgs = {
      heads, kvHeads, headDim: d, positions, q, qOffset: 2, kBits: kc.bits, vBits: vc.bits, kValues: kc.values, vValues: vc.values,
      kStart: kc.start, vStart: vc.start, out, outOffset: 1, scale,
    };
    getKernel('attentionBitmapKV')(args);
    const group = heads / kvHeads;
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const s = [];
      for (let p = 0; p < positions; p++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[2 + h * d + c]! * kc.masked[(p * kvHeads + g) * d + c]!;
        s.push(dot * scale);
      }
      const max = Math.max(...s);
      const e = s.map((x) => Math.exp(x - max));
      const sum = e.reduce((a, b) => a + b, 0);
      const want = new Float64Array(d);
      for (let p = 0; p < positions; p++) for (let c = 0; c < d; c++) want[c]! += (e[p]! / sum) * vc.masked[(p * kvHeads + g) * d + c]!;
      expectNear(out.subarray(1 + h * d, 1 + (h + 1) * d), want, 1e-6, `out head ${h}`);
    }
    expect(Number.isNaN(out[0])).toBe(true);
  });

  it('rejects a row whose value count disagrees with its bitmap, and kvHeads that do not divide heads', () => {
    const d = 8;
    const kc = packCache(new Float32Array(2 * d).fill(1), (n) => n % 3 === 0, 2, d);
    const base: AttentionBitmapKVArgs = {
      heads: 2, kvHeads: 1, headDim: d, positions: 2, q: new Float32Array(2 * d), qOffset: 0, kBits: kc.bits, vBits: kc.bits,
      kValues: kc.values, vValues: kc.values, kStart: kc.start, vStart: kc.start, out: new Float32Array(2 * d), outOffset: 0,
    };
    expect(() => attentionBitmapKVReference(base)).not.toThrow();
    const badStart = Int32Array.from(kc.start);
    badStart[1]! += 1;
    expect(() => attentionBitmapKVReference({ ...base, kStart: badStart })).toThrow(LayoutError);
    expect(() => attentionBitmapKVReference({ ...base, kvHeads: 3 })).toThrow(/kvHeads must divide heads/);
  });
});
