import type { AttentionArgs, AttentionBitmapKVArgs, BlockSparseAttentionArgs, BlockSparseAttentionBackwardArgs } from '../types.js';
import {
  type TileMaskInfo,
  validateAttentionArgs,
  validateAttentionBitmapKVArgs,
  validateBlockSparseAttentionArgs,
  validateBlockSparseAttentionBackwardArgs,
} from '../validate.js';

type Allowed = (h: number, i: number, j: number) => boolean;

/**
 * Straightforward two-pass attention in float64 (scores, max, exp, sum, weighted sum of values),
 * query by query, over the keys `allowed(h, i, j)` admits (causal applied here); rounding once on
 * store. A query with no allowed key gets zeros (and lse -Infinity).
 */
function attend(args: AttentionArgs, allowed: Allowed, lse?: Float32Array, lseOffset = 0): void {
  const { heads, seq, headDim: d, q, qOffset, k, kOffset, v, vOffset, out, outOffset, causal } = args;
  const scale = args.scale ?? 1 / Math.sqrt(d);
  const scores = new Float64Array(seq);
  const keep = new Uint8Array(seq);
  const acc = new Float64Array(d);
  for (let h = 0; h < heads; h++) {
    const base = h * seq * d;
    for (let i = 0; i < seq; i++) {
      let max = -Infinity;
      let any = false;
      for (let j = 0; j < seq; j++) {
        keep[j] = (!causal || j <= i) && allowed(h, i, j) ? 1 : 0;
        if (!keep[j]) continue;
        let s = 0;
        for (let c = 0; c < d; c++) s += q[qOffset + base + i * d + c]! * k[kOffset + base + j * d + c]!;
        scores[j] = s * scale;
        if (!any || scores[j]! > max) max = scores[j]!;
        any = true;
      }
      acc.fill(0);
      let sum = 0;
      if (any) {
        for (let j = 0; j < seq; j++) {
          if (!keep[j]) continue;
          const e = Math.exp(scores[j]! - max);
          sum += e;
          for (let c = 0; c < d; c++) acc[c]! += e * v[vOffset + base + j * d + c]!;
        }
      }
      for (let c = 0; c < d; c++) out[outOffset + base + i * d + c] = any ? acc[c]! / sum : 0;
      if (lse) lse[lseOffset + h * seq + i] = any ? max + Math.log(sum) : -Infinity;
    }
  }
}

/** Reference dense (optionally causal) attention; see AttentionArgs. */
export function denseAttentionReference(args: AttentionArgs): void {
  validateAttentionArgs(args);
  attend(args, () => true);
}

interface TileArgs {
  heads: number;
  seq: number;
  blockSize: number;
  blockMask: Uint8Array;
  elementMask?: Uint8Array;
  causal: boolean;
}

/** Whether query i of head h may attend to key j under the tile masks (causal not included). */
function tileAllowed(args: TileArgs, info: TileMaskInfo): Allowed {
  const { blockSize, blockMask, elementMask, seq } = args;
  const { nb } = info;
  return (h, i, j) => {
    const t = blockMask[(info.blockMaskPerHead ? h * nb * nb : 0) + Math.floor(i / blockSize) * nb + Math.floor(j / blockSize)]!;
    if (t === 0) return false;
    if (t !== 2) return true;
    const n = (info.elementMaskPerHead ? h * seq * seq : 0) + i * seq + j;
    return ((elementMask![n >> 3]! >> (n & 7)) & 1) === 1;
  };
}

/** The number of (head, tile) pairs a block-sparse kernel computes: nonzero tiles, less those causal skips entirely. */
export function countAttentionTiles(args: TileArgs, info: TileMaskInfo): number {
  const { nb, blockMaskPerHead } = info;
  let count = 0;
  const masks = blockMaskPerHead ? args.heads : 1;
  for (let h = 0; h < masks; h++) {
    for (let bi = 0; bi < nb; bi++) {
      for (let bj = 0; bj < nb; bj++) {
        if (args.causal && bj > bi) continue;
        if (args.blockMask[h * nb * nb + bi * nb + bj] !== 0) count++;
      }
    }
  }
  return blockMaskPerHead ? count : count * args.heads;
}

/**
 * Reference block-sparse attention: query block bi sees key block bj where the block mask is set
 * (elementwise per elementMask in partial tiles); writes lse and counts tiles when asked.
 */
export function blockSparseAttentionReference(args: BlockSparseAttentionArgs): void {
  const info = validateBlockSparseAttentionArgs(args);
  attend(args, tileAllowed(args, info), args.lse, args.lseOffset ?? 0);
  if (args.stats) args.stats.tiles += countAttentionTiles(args, info);
}

/**
 * Reference block-sparse attention backward in float64, straight from the definitions in
 * BlockSparseAttentionBackwardArgs (P recomputed from q, k and the given lse).
 */
export function blockSparseAttentionBackwardReference(args: BlockSparseAttentionBackwardArgs): void {
  const info = validateBlockSparseAttentionBackwardArgs(args);
  const { heads, seq, headDim: d, q, k, v, out, dOut, lse, causal } = args;
  const scale = args.scale ?? 1 / Math.sqrt(d);
  const allowed = tileAllowed(args, info);
  const dq = new Float64Array(seq * d);
  const dk = new Float64Array(seq * d);
  const dv = new Float64Array(seq * d);
  for (let h = 0; h < heads; h++) {
    const base = h * seq * d;
    dq.fill(0);
    dk.fill(0);
    dv.fill(0);
    for (let i = 0; i < seq; i++) {
      const l = lse[args.lseOffset + h * seq + i]!;
      if (l === -Infinity) continue;
      const qi = args.qOffset + base + i * d;
      const gi = args.dOutOffset + base + i * d;
      let D = 0;
      for (let c = 0; c < d; c++) D += dOut[gi + c]! * out[args.outOffset + base + i * d + c]!;
      for (let j = 0; j < seq; j++) {
        if ((causal && j > i) || !allowed(h, i, j)) continue;
        const kj = args.kOffset + base + j * d;
        const vj = args.vOffset + base + j * d;
        let s = 0;
        let dp = 0;
        for (let c = 0; c < d; c++) {
          s += q[qi + c]! * k[kj + c]!;
          dp += dOut[gi + c]! * v[vj + c]!;
        }
        const p = Math.exp(scale * s - l);
        const ds = p * (dp - D);
        for (let c = 0; c < d; c++) {
          dv[j * d + c]! += p * dOut[gi + c]!;
          dq[i * d + c]! += scale * ds * k[kj + c]!;
          dk[j * d + c]! += scale * ds * q[qi + c]!;
        }
      }
    }
    for (let x = 0; x < seq * d; x++) {
      args.dq[args.dqOffset + base + x] = dq[x]!;
      args.dk[args.dkOffset + base + x] = dk[x]!;
      args.dv[args.dvOffset + base + x] = dv[x]!;
    }
  }
  if (args.stats) args.stats.tiles += countAttentionTiles(args, info);
}

/** Expands cache row r (kept entries from values[start[r]..]) into dense[0..d), pruned entries zero. */
export function expandBitmapRow(bits: Uint8Array, values: Float32Array, start: Int32Array, r: number, d: number, dense: Float32Array | Float64Array): void {
  const rowBytes = Math.ceil(d / 8);
  let at = start[r]!;
  for (let c = 0; c < d; c++) {
    const kept = (bits[r * rowBytes + (c >> 3)]! >> (c & 7)) & 1;
    dense[c] = kept ? values[at++]! : 0;
  }
}

/** Reference attention over a bitmap KV cache (one query per head), in float64; see AttentionBitmapKVArgs. */
export function attentionBitmapKVReference(args: AttentionBitmapKVArgs): void {
  validateAttentionBitmapKVArgs(args);
  const { heads, kvHeads, headDim: d, positions, q, qOffset, out, outOffset } = args;
  const scale = args.scale ?? 1 / Math.sqrt(d);
  if (heads === 0) return;
  const group = heads / kvHeads;
  const row = new Float64Array(d);
  const scores = new Float64Array(positions);
  const acc = new Float64Array(d);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    let max = -Infinity;
    for (let p = 0; p < positions; p++) {
      expandBitmapRow(args.kBits, args.kValues, args.kStart, p * kvHeads + g, d, row);
      let s = 0;
      for (let c = 0; c < d; c++) s += q[qOffset + h * d + c]! * row[c]!;
      scores[p] = s * scale;
      if (scores[p]! > max) max = scores[p]!;
    }
    acc.fill(0);
    let sum = 0;
    for (let p = 0; p < positions; p++) {
      const e = Math.exp(scores[p]! - max);
      sum += e;
      expandBitmapRow(args.vBits, args.vValues, args.vStart, p * kvHeads + g, d, row);
      for (let c = 0; c < d; c++) acc[c]! += e * row[c]!;
    }
    for (let c = 0; c < d; c++) out[outOffset + h * d + c] = positions === 0 ? 0 : acc[c]! / sum;
  }
}
