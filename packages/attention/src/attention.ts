// Plain-TypeScript attention under a BlockMask: the reference the kernels are compared with, and the way
// to run a mask without a kernel package. Skipped tiles are never read; partial tiles consult the element
// bits. Accumulates in float64.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { TILE_PARTIAL, TILE_SKIP, validateBlockMask, elementBitHeads, type BlockMask } from './mask.js';

export interface AttentionShape {
  /** Query heads. */
  heads: number;
  /** Key/value heads (default heads); divides heads: query head h reads kv head floor(h / (heads / kvHeads)). */
  kvHeads?: number;
  seq: number;
  headDim: number;
}

export interface MaskedAttentionOptions {
  /** Score scale; default 1 / sqrt(headDim). */
  scale?: number;
  /** Also mask keys after the query (on top of the mask). Default false: the mask says everything. */
  causal?: boolean;
}

export interface MaskedAttentionResult {
  /** [heads, seq, headDim]; a query with no allowed key gets zeros. */
  out: Float32Array;
  /** (head, tile) pairs computed. */
  tiles: number;
}

function posInt(where: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ArgumentError(`${where}: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Checks heads / kvHeads / seq / headDim and the lengths of q [heads, seq, d], k and v [kvHeads, seq, d]. */
export function checkQKV(where: string, shape: AttentionShape, q: Float32Array, k: Float32Array, v?: Float32Array): Required<AttentionShape> {
  const heads = posInt(where, 'heads', shape.heads);
  const kvHeads = posInt(where, 'kvHeads', shape.kvHeads ?? heads);
  const seq = posInt(where, 'seq', shape.seq);
  const headDim = posInt(where, 'headDim', shape.headDim);
  if (heads % kvHeads !== 0) throw new ShapeError(`${where}: kvHeads (${kvHeads}) must divide heads (${heads})`);
  if (!(q instanceof Float32Array) || q.length !== heads * seq * headDim) throw new ShapeError(`${where}: q must be a Float32Array [heads, seq, headDim] = ${heads * seq * headDim} values, got ${q?.length}`);
  if (!(k instanceof Float32Array) || k.length !== kvHeads * seq * headDim) throw new ShapeError(`${where}: k must be a Float32Array [kvHeads, seq, headDim] = ${kvHeads * seq * headDim} values, got ${k?.length}`);
  if (v !== undefined && (!(v instanceof Float32Array) || v.length !== kvHeads * seq * headDim)) {
    throw new ShapeError(`${where}: v must be a Float32Array [kvHeads, seq, headDim] = ${kvHeads * seq * headDim} values, got ${v?.length}`);
  }
  return { heads, kvHeads, seq, headDim };
}

/**
 * Attention of q [heads, seq, headDim] over k, v [kvHeads, seq, headDim] restricted to a BlockMask
 * (tile by tile; partial tiles element by element). The mask is shared (heads 1) or has one per query head.
 */
export function maskedAttention(mask: BlockMask, shape: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, opts: MaskedAttentionOptions = {}): MaskedAttentionResult {
  const where = 'maskedAttention';
  const { heads, kvHeads, seq, headDim: d } = checkQKV(where, shape, q, k, v);
  validateBlockMask(mask, where);
  if (mask.seq !== seq) throw new ShapeError(`${where}: mask is for seq ${mask.seq}, got ${seq}`);
  if (mask.heads !== 1 && mask.heads !== heads) throw new ShapeError(`${where}: mask has ${mask.heads} heads; expected 1 or ${heads}`);
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const { blockSize: bs, nb } = mask;
  const group = heads / kvHeads;
  const bitHeads = elementBitHeads(mask);
  const out = new Float32Array(heads * seq * d);
  const scores = new Float64Array(seq);
  const keep = new Uint8Array(seq);
  const acc = new Float64Array(d);
  let tiles = 0;
  for (let h = 0; h < heads; h++) {
    const mh = mask.heads === 1 ? 0 : h;
    const bh = bitHeads > 1 ? h : 0;
    const kvBase = Math.floor(h / group) * seq * d;
    for (let qb = 0; qb < nb; qb++) {
      const row = mask.tiles.subarray((mh * nb + qb) * nb, (mh * nb + qb + 1) * nb);
      for (let kb = 0; kb < nb; kb++) if (row[kb] !== TILE_SKIP && (!opts.causal || kb <= qb)) tiles++;
      for (let i = qb * bs; i < Math.min(seq, (qb + 1) * bs); i++) {
        const qi = (h * seq + i) * d;
        let max = -Infinity;
        keep.fill(0);
        for (let kb = 0; kb < nb; kb++) {
          const t = row[kb]!;
          if (t === TILE_SKIP) continue;
          for (let j = kb * bs; j < Math.min(seq, (kb + 1) * bs); j++) {
            if (opts.causal && j > i) break;
            if (t === TILE_PARTIAL) {
              const p = (bh * seq + i) * seq + j;
              if (((mask.elementBits![p >> 3]! >> (p & 7)) & 1) === 0) continue;
            }
            let s = 0;
            const kj = kvBase + j * d;
            for (let c = 0; c < d; c++) s += q[qi + c]! * k[kj + c]!;
            s *= scale;
            scores[j] = s;
            keep[j] = 1;
            if (s > max) max = s;
          }
        }
        if (max === -Infinity) continue;
        acc.fill(0);
        let sum = 0;
        for (let j = 0; j < seq; j++) {
          if (keep[j] === 0) continue;
          const e = Math.exp(scores[j]! - max);
          sum += e;
          const vj = kvBase + j * d;
          for (let c = 0; c < d; c++) acc[c]! += e * v[vj + c]!;
        }
        for (let c = 0; c < d; c++) out[qi + c] = acc[c]! / sum;
      }
    }
  }
  return { out, tiles };
}

/** The arguments blockSparseAttention kernels take for a mask: { blockSize, blockMask, elementMask }. */
export function kernelMaskArgs(mask: BlockMask): { blockSize: number; blockMask: Uint8Array; elementMask?: Uint8Array } {
  validateBlockMask(mask, 'kernelMaskArgs');
  return mask.elementBits === undefined ? { blockSize: mask.blockSize, blockMask: mask.tiles } : { blockSize: mask.blockSize, blockMask: mask.tiles, elementMask: mask.elementBits };
}
