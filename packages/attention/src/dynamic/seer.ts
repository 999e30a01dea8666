// SeerAttention-style learned block gate, the parts that need no autodiff: pooling q and k per block, the
// gate's block probabilities from its trained projections, the distillation target (the block-wise
// max-pooled attention map of full attention) and the block mask the gate selects. Training is in /tfjs.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { checkQKV, type AttentionShape } from '../attention.js';
import { finishDynamic, type DynamicBlockMask } from './predict.js';
import { blockMeans, checkUnit, softmaxWhere } from './pool.js';

/** A trained gate: per-head linear projections of pooled q and pooled k into a small gate space. */
export interface SeerGate {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Width of the gate space. */
  gateDim: number;
  blockSize: number;
  /** [heads, headDim, gateDim]: pooled q (block mean) → gate space. */
  wq: Float32Array;
  /** [kvHeads, 3 · headDim, gateDim]: pooled k (block max, min and mean, concatenated) → gate space. */
  wk: Float32Array;
}

export interface SeerPooled {
  nb: number;
  /** [heads, nb, headDim]: each query block's mean. */
  q: Float64Array;
  /** [kvHeads, nb, 3 · headDim]: each key block's max, min and mean, per dimension. */
  k: Float64Array;
}

/** The gate's inputs: q pooled by mean, k by max, min and mean per block. */
export function seerPool(shape: AttentionShape, q: Float32Array, k: Float32Array, blockSize: number): SeerPooled {
  const { heads, kvHeads, seq, headDim: d } = checkQKV('seerPool', shape, q, k);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ArgumentError(`seerPool: blockSize must be a positive integer, got ${String(blockSize)}`);
  const nb = Math.ceil(seq / blockSize);
  const qp = blockMeans(q, heads, seq, d, blockSize);
  const km = blockMeans(k, kvHeads, seq, d, blockSize);
  const kp = new Float64Array(kvHeads * nb * 3 * d);
  for (let g = 0; g < kvHeads; g++) {
    for (let b = 0; b < nb; b++) {
      const o = (g * nb + b) * 3 * d;
      for (let c = 0; c < d; c++) {
        let mx = -Infinity;
        let mn = Infinity;
        for (let t = b * blockSize; t < Math.min(seq, (b + 1) * blockSize); t++) {
          const x = k[(g * seq + t) * d + c]!;
          if (x > mx) mx = x;
          if (x < mn) mn = x;
        }
        kp[o + c] = mx;
        kp[o + d + c] = mn;
        kp[o + 2 * d + c] = km[(g * nb + b) * d + c]!;
      }
    }
  }
  return { nb, q: qp, k: kp };
}

export function checkGate(where: string, gate: SeerGate, shape: AttentionShape): void {
  if (gate === null || typeof gate !== 'object') throw new ArgumentError(`${where}: expected a SeerGate`);
  const kvHeads = shape.kvHeads ?? shape.heads;
  if (gate.heads !== shape.heads || gate.kvHeads !== kvHeads || gate.headDim !== shape.headDim) {
    throw new ShapeError(`${where}: the gate is for heads ${gate.heads}, kvHeads ${gate.kvHeads}, headDim ${gate.headDim}; got ${shape.heads}, ${kvHeads}, ${shape.headDim}`);
  }
  if (!(gate.wq instanceof Float32Array) || gate.wq.length !== gate.heads * gate.headDim * gate.gateDim) throw new ShapeError(`${where}: gate.wq must be [heads, headDim, gateDim]`);
  if (!(gate.wk instanceof Float32Array) || gate.wk.length !== gate.kvHeads * 3 * gate.headDim * gate.gateDim) throw new ShapeError(`${where}: gate.wk must be [kvHeads, 3 * headDim, gateDim]`);
}

/** Gate logits [heads, nb, nb]: (q̄ Wq) · (k̃ Wk) / sqrt(gateDim) (not masked). */
export function seerGateLogits(gate: SeerGate, shape: AttentionShape, q: Float32Array, k: Float32Array): Float64Array {
  checkGate('seerGateLogits', gate, shape);
  const { heads, kvHeads, headDim: d, gateDim: e, blockSize } = gate;
  const pooled = seerPool(shape, q, k, blockSize);
  const nb = pooled.nb;
  const group = heads / kvHeads;
  const project = (x: Float64Array, rows: number, inDim: number, w: Float32Array, wOff: number, xOff: number) => {
    const out = new Float64Array(rows * e);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < inDim; c++) {
        const xv = x[xOff + r * inDim + c]!;
        if (xv === 0) continue;
        for (let o = 0; o < e; o++) out[r * e + o]! += xv * w[wOff + c * e + o]!;
      }
    }
    return out;
  };
  const kg = Array.from({ length: kvHeads }, (_, g) => project(pooled.k, nb, 3 * d, gate.wk, g * 3 * d * e, g * nb * 3 * d));
  const logits = new Float64Array(heads * nb * nb);
  const scale = 1 / Math.sqrt(e);
  for (let h = 0; h < heads; h++) {
    const qg = project(pooled.q, nb, d, gate.wq, h * d * e, h * nb * d);
    const kh = kg[Math.floor(h / group)]!;
    for (let a = 0; a < nb; a++) {
      for (let b = 0; b < nb; b++) {
        let s = 0;
        for (let o = 0; o < e; o++) s += qg[a * e + o]! * kh[b * e + o]!;
        logits[(h * nb + a) * nb + b] = s * scale;
      }
    }
  }
  return logits;
}

/** The gate's block probabilities [heads, nb, nb]: softmax of its logits over each query block's eligible key blocks. */
export function seerGateProbs(gate: SeerGate, shape: AttentionShape, q: Float32Array, k: Float32Array, opts: { causal?: boolean } = {}): Float64Array {
  const logits = seerGateLogits(gate, shape, q, k);
  const nb = Math.ceil(shape.seq / gate.blockSize);
  const causal = opts.causal ?? true;
  const probs = new Float64Array(logits.length);
  const p = new Float64Array(nb);
  for (let h = 0; h < gate.heads; h++) {
    for (let a = 0; a < nb; a++) {
      const row = (h * nb + a) * nb;
      softmaxWhere(logits.subarray(row, row + nb), nb, (b) => !causal || b <= a, p);
      probs.set(p, row);
    }
  }
  return probs;
}

/**
 * The distillation target [heads, nb, nb]: full (causal) attention probabilities of the frozen q and k,
 * max-pooled over each tile, then normalized to sum 1 over each query block's key blocks.
 */
export function seerTarget(shape: AttentionShape, q: Float32Array, k: Float32Array, blockSize: number, opts: { causal?: boolean; scale?: number } = {}): Float64Array {
  const { heads, kvHeads, seq, headDim: d } = checkQKV('seerTarget', shape, q, k);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ArgumentError(`seerTarget: blockSize must be a positive integer, got ${String(blockSize)}`);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const nb = Math.ceil(seq / blockSize);
  const group = heads / kvHeads;
  const out = new Float64Array(heads * nb * nb);
  const s = new Float64Array(seq);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < seq; i++) {
      const last = causal ? i : seq - 1;
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(h * seq + i) * d + c]! * k[(g * seq + j) * d + c]!;
        s[j] = dot * scale;
        if (s[j]! > max) max = s[j]!;
      }
      let z = 0;
      for (let j = 0; j <= last; j++) z += Math.exp(s[j]! - max);
      const row = (h * nb + Math.floor(i / blockSize)) * nb;
      for (let j = 0; j <= last; j++) {
        const p = Math.exp(s[j]! - max) / z;
        const t = row + Math.floor(j / blockSize);
        if (p > out[t]!) out[t] = p;
      }
    }
    for (let a = 0; a < nb; a++) {
      const row = (h * nb + a) * nb;
      let z = 0;
      for (let b = 0; b < nb; b++) z += out[row + b]!;
      for (let b = 0; b < nb; b++) out[row + b]! /= z;
    }
  }
  return out;
}

export interface SeerSelectOptions {
  /** Keep the diagonal plus the k other key blocks of highest gate probability. */
  topK?: number;
  /** Keep the diagonal plus every key block whose gate probability is at least this, in (0, 1]. */
  threshold?: number;
  causal?: boolean;
}

/** The gate's selection as a per-head block mask (exactly one of topK or threshold). */
export function seerPredict(gate: SeerGate, shape: AttentionShape, q: Float32Array, k: Float32Array, opts: SeerSelectOptions): DynamicBlockMask & { probs: Float64Array } {
  const where = 'seerPredict';
  if (opts === null || typeof opts !== 'object' || (opts.topK === undefined) === (opts.threshold === undefined)) throw new ArgumentError(`${where}: give exactly one of topK or threshold`);
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK < 0)) throw new ArgumentError(`${where}: topK must be an integer >= 0, got ${String(opts.topK)}`);
  if (opts.threshold !== undefined) checkUnit(where, 'threshold', opts.threshold, Number.MIN_VALUE, 1);
  const causal = opts.causal ?? true;
  const probs = seerGateProbs(gate, shape, q, k, { causal });
  const nb = Math.ceil(shape.seq / gate.blockSize);
  const keep = new Uint8Array(gate.heads * nb * nb);
  const order: number[] = [];
  for (let h = 0; h < gate.heads; h++) {
    for (let a = 0; a < nb; a++) {
      const row = (h * nb + a) * nb;
      keep[row + a] = 1;
      order.length = 0;
      for (let b = 0; b < (causal ? a : nb); b++) if (b !== a) order.push(b);
      if (opts.threshold !== undefined) {
        for (const b of order) if (probs[row + b]! >= opts.threshold) keep[row + b] = 1;
        continue;
      }
      order.sort((x, y) => probs[row + y]! - probs[row + x]! || x - y);
      for (let r = 0; r < Math.min(opts.topK!, order.length); r++) keep[row + order[r]!] = 1;
    }
  }
  return { ...finishDynamic(keep, gate.heads, shape.seq, gate.blockSize, causal), probs };
}
