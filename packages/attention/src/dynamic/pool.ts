// Block pooling shared by the dynamic predictors: per-block means of q or k, each block's self-similarity,
// and the softmax of pooled scores over the key blocks a query block may see.

import { ArgumentError } from '@sparse/tensor';

/**
 * Mean of each block of `blockSize` consecutive tokens of x [heads, seq, d] → [heads, nb, d] (the last block
 * averages the tokens it has).
 */
export function blockMeans(x: Float32Array, heads: number, seq: number, d: number, blockSize: number): Float64Array {
  const nb = Math.ceil(seq / blockSize);
  const out = new Float64Array(heads * nb * d);
  for (let h = 0; h < heads; h++) {
    for (let b = 0; b < nb; b++) {
      const t0 = b * blockSize;
      const t1 = Math.min(seq, t0 + blockSize);
      const o = (h * nb + b) * d;
      for (let t = t0; t < t1; t++) {
        const xi = (h * seq + t) * d;
        for (let c = 0; c < d; c++) out[o + c]! += x[xi + c]!;
      }
      for (let c = 0; c < d; c++) out[o + c]! /= t1 - t0;
    }
  }
  return out;
}

/**
 * Self-similarity of each block: the mean over its tokens of the cosine similarity between the token and the
 * block's mean [heads, nb]. A zero vector (token or mean) counts as similarity 1 when both are zero, else 0.
 */
export function blockSelfSimilarity(x: Float32Array, means: Float64Array, heads: number, seq: number, d: number, blockSize: number): Float64Array {
  const nb = Math.ceil(seq / blockSize);
  const out = new Float64Array(heads * nb);
  for (let h = 0; h < heads; h++) {
    for (let b = 0; b < nb; b++) {
      const t0 = b * blockSize;
      const t1 = Math.min(seq, t0 + blockSize);
      const o = (h * nb + b) * d;
      let mm = 0;
      for (let c = 0; c < d; c++) mm += means[o + c]! * means[o + c]!;
      let total = 0;
      for (let t = t0; t < t1; t++) {
        const xi = (h * seq + t) * d;
        let xx = 0;
        let xm = 0;
        for (let c = 0; c < d; c++) {
          xx += x[xi + c]! * x[xi + c]!;
          xm += x[xi + c]! * means[o + c]!;
        }
        total += xx === 0 || mm === 0 ? (xx === 0 && mm === 0 ? 1 : 0) : xm / Math.sqrt(xx * mm);
      }
      out[h * nb + b] = total / (t1 - t0);
    }
  }
  return out;
}

/**
 * Pooled block scores scale · q̄_qb · k̄_kb for query head h (reading kv head h / group) [heads, nb, nb].
 */
export function pooledScores(qMeans: Float64Array, kMeans: Float64Array, heads: number, kvHeads: number, nb: number, d: number, scale: number): Float64Array {
  const group = heads / kvHeads;
  const out = new Float64Array(heads * nb * nb);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / group);
    for (let a = 0; a < nb; a++) {
      for (let b = 0; b < nb; b++) {
        let s = 0;
        const qa = (h * nb + a) * d;
        const kb = (g * nb + b) * d;
        for (let c = 0; c < d; c++) s += qMeans[qa + c]! * kMeans[kb + c]!;
        out[(h * nb + a) * nb + b] = s * scale;
      }
    }
  }
  return out;
}

/** Softmax of row[j] over the j with eligible(j), written to probs (0 elsewhere); returns false when none is eligible. */
export function softmaxWhere(row: ArrayLike<number>, n: number, eligible: (j: number) => boolean, probs: Float64Array): boolean {
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (eligible(j) && row[j]! > max) max = row[j]!;
  probs.fill(0, 0, n);
  if (max === -Infinity) return false;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    if (!eligible(j)) continue;
    probs[j] = Math.exp(row[j]! - max);
    sum += probs[j]!;
  }
  for (let j = 0; j < n; j++) probs[j]! /= sum;
  return true;
}

export function checkUnit(where: string, name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new ArgumentError(`${where}: ${name} must be a number in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}
