// Dynamic block sparsity predicted from q and k before attention is computed: SpargeAttn-style cumulative
// mass selection over pooled block scores, and plain top-k key blocks per query block. Both return a
// per-head BlockMask (the kept tiles intersected with the causal or full pattern) and its density.

import { ArgumentError } from '@sparse/tensor';
import { checkQKV, type AttentionShape } from '../attention.js';
import { restrictTiles, TILE_SKIP, type BlockMask } from '../mask.js';
import { causal as causalPattern, full, toBlockMask } from '../patterns.js';
import { blockMeans, blockSelfSimilarity, checkUnit, pooledScores, softmaxWhere } from './pool.js';

export interface DynamicBlockMask {
  /** Per query head: [heads, nb, nb] tiles; causal tiles on the diagonal are partial (element bits shared). */
  mask: BlockMask;
  /** [heads, nb, nb]: 1 = key block selected for the query block (before intersecting with the pattern). */
  keep: Uint8Array;
  /** Tiles computed over the tiles the causal (or full) pattern computes: 1 = dense. */
  density: number;
}

export interface BlockPredictOptions {
  blockSize: number;
  /** Restrict to key blocks at or before the query block, and mask elementwise on the diagonal (default true). */
  causal?: boolean;
  /** Scale of the pooled scores; default 1 / sqrt(headDim), as attention's. */
  scale?: number;
}

export interface SpargeOptions extends BlockPredictOptions {
  /** Cumulative probability mass of pooled scores to keep per query block, in (0, 1]; 1 keeps every block. */
  cdfThreshold: number;
  /**
   * Blocks whose tokens' mean cosine similarity to the block mean is below this are not trusted to pooling:
   * a query block below it computes every key block, a key block below it is computed by every query block.
   * In [-1, 1]; -1 trusts every block. Default 0.5.
   */
  simThreshold?: number;
}

export interface SpargePrediction extends DynamicBlockMask {
  /** [heads, nb, nb] pooled block probabilities per query block (0 for blocks outside the softmax). */
  probs: Float64Array;
  /** [heads, nb] query-block and [kvHeads, nb] key-block self-similarities. */
  qSimilarity: Float64Array;
  kSimilarity: Float64Array;
}

function blockSizeOf(where: string, opts: BlockPredictOptions | undefined): number {
  if (opts === null || typeof opts !== 'object') throw new ArgumentError(`${where}: expected options`);
  const b = opts.blockSize;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1) throw new ArgumentError(`${where}: blockSize must be a positive integer, got ${String(b)}`);
  return b;
}

// The base masks the predictors intersect with, by causal / seq / blockSize: a prediction runs per
// sequence and layer, and building the mask (element bits included) costs more than the prediction.
// Read only (restrictTiles copies what it keeps); the few most recent are kept.
const baseMasks = new Map<string, BlockMask>();
const BASE_MASKS_KEPT = 8;

function baseMask(causal: boolean, seq: number, blockSize: number): BlockMask {
  const key = `${causal ? 'c' : 'f'}:${seq}:${blockSize}`;
  let m = baseMasks.get(key);
  if (m === undefined) {
    m = toBlockMask(causal ? causalPattern() : full(), { seq, blockSize });
    if (baseMasks.size >= BASE_MASKS_KEPT) baseMasks.delete(baseMasks.keys().next().value!);
    baseMasks.set(key, m);
  }
  return m;
}

/** The mask of kept tiles intersected with the base pattern, and its density relative to that pattern. */
export function finishDynamic(keep: Uint8Array, heads: number, seq: number, blockSize: number, causal: boolean): DynamicBlockMask {
  const base = baseMask(causal, seq, blockSize);
  const mask = restrictTiles(base, keep, heads);
  const nb = base.nb;
  let baseTiles = 0;
  for (let t = 0; t < nb * nb; t++) if (base.tiles[t] !== TILE_SKIP) baseTiles++;
  let computed = 0;
  for (let t = 0; t < mask.tiles.length; t++) if (mask.tiles[t] !== TILE_SKIP) computed++;
  return { mask, keep, density: computed / (baseTiles * heads) };
}

/**
 * SpargeAttn-style prediction: mean-pool q and k per block, softmax the pooled scores of each query block
 * over its key blocks, keep the fewest key blocks whose probability mass reaches cdfThreshold. Blocks that
 * are not self-similar (simThreshold) bypass the prediction and are computed in full.
 */
export function spargePredict(shape: AttentionShape, q: Float32Array, k: Float32Array, opts: SpargeOptions): SpargePrediction {
  const where = 'spargePredict';
  const blockSize = blockSizeOf(where, opts);
  const { heads, kvHeads, seq, headDim: d } = checkQKV(where, shape, q, k);
  const tau = checkUnit(where, 'cdfThreshold', opts.cdfThreshold, Number.MIN_VALUE, 1);
  const theta = checkUnit(where, 'simThreshold', opts.simThreshold ?? 0.5, -1, 1);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const nb = Math.ceil(seq / blockSize);
  const qm = blockMeans(q, heads, seq, d, blockSize);
  const km = blockMeans(k, kvHeads, seq, d, blockSize);
  const qSimilarity = blockSelfSimilarity(q, qm, heads, seq, d, blockSize);
  const kSimilarity = blockSelfSimilarity(k, km, kvHeads, seq, d, blockSize);
  const scores = pooledScores(qm, km, heads, kvHeads, nb, d, scale);
  const group = heads / kvHeads;
  const keep = new Uint8Array(heads * nb * nb);
  const probs = new Float64Array(heads * nb * nb);
  const p = new Float64Array(nb);
  const order: number[] = [];
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    const kSim = (b: number) => kSimilarity[g * nb + b]! >= theta;
    for (let a = 0; a < nb; a++) {
      const row = (h * nb + a) * nb;
      const last = causal ? a : nb - 1;
      if (qSimilarity[h * nb + a]! < theta) {
        for (let b = 0; b <= last; b++) keep[row + b] = 1;
        continue;
      }
      // Untrusted key blocks are computed anyway and left out of the softmax.
      for (let b = 0; b <= last; b++) if (!kSim(b)) keep[row + b] = 1;
      if (!softmaxWhere(scores.subarray(row, row + nb), nb, (b) => b <= last && kSim(b), p)) continue;
      probs.set(p, row);
      order.length = 0;
      for (let b = 0; b <= last; b++) if (kSim(b)) order.push(b);
      if (tau >= 1) {
        for (const b of order) keep[row + b] = 1;
        continue;
      }
      order.sort((x, y) => p[y]! - p[x]! || x - y);
      let mass = 0;
      for (const b of order) {
        keep[row + b] = 1;
        mass += p[b]!;
        if (mass >= tau) break;
      }
    }
  }
  return { ...finishDynamic(keep, heads, seq, blockSize, causal), probs, qSimilarity, kSimilarity };
}

export interface TopKBlocksOptions extends BlockPredictOptions {
  /** Key blocks kept per query block besides the diagonal one. */
  k: number;
}

/**
 * Per query block: the diagonal key block plus the k other (eligible) key blocks with the highest pooled
 * score scale · q̄ · k̄ (ties to the earlier block).
 */
export function topKBlocks(shape: AttentionShape, q: Float32Array, k: Float32Array, opts: TopKBlocksOptions): DynamicBlockMask {
  const where = 'topKBlocks';
  const blockSize = blockSizeOf(where, opts);
  const { heads, kvHeads, seq, headDim: d } = checkQKV(where, shape, q, k);
  if (typeof opts.k !== 'number' || !Number.isInteger(opts.k) || opts.k < 0) throw new ArgumentError(`${where}: k must be an integer >= 0, got ${String(opts.k)}`);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const nb = Math.ceil(seq / blockSize);
  const scores = pooledScores(blockMeans(q, heads, seq, d, blockSize), blockMeans(k, kvHeads, seq, d, blockSize), heads, kvHeads, nb, d, scale);
  const keep = new Uint8Array(heads * nb * nb);
  const order: number[] = [];
  for (let h = 0; h < heads; h++) {
    for (let a = 0; a < nb; a++) {
      const row = (h * nb + a) * nb;
      keep[row + a] = 1;
      order.length = 0;
      for (let b = 0; b < (causal ? a : nb); b++) if (b !== a) order.push(b);
      order.sort((x, y) => scores[row + y]! - scores[row + x]! || x - y);
      for (let r = 0; r < Math.min(opts.k, order.length); r++) keep[row + order[r]!] = 1;
    }
  }
  return finishDynamic(keep, heads, seq, blockSize, causal);
}
