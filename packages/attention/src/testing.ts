// Test helpers (used by the tests only; not exported by the package): random operands and brute-force references.

import { Random } from '@sparse/tensor';

export function normals(rng: Random, n: number, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * std);
}

/**
 * Softmax attention written out from its definition, in float64: for every head and query, the scores of
 * the keys allowed(h, i, j) admits, exp relative to their max, normalized, times v. kv head = h / (heads / kvHeads).
 */
export function bruteAttention(
  heads: number,
  kvHeads: number,
  seq: number,
  d: number,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  allowed: (h: number, i: number, j: number) => boolean,
  scale = 1 / Math.sqrt(d),
): Float64Array {
  const out = new Float64Array(heads * seq * d);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / kvHeads));
    for (let i = 0; i < seq; i++) {
      const js: number[] = [];
      const s: number[] = [];
      for (let j = 0; j < seq; j++) {
        if (!allowed(h, i, j)) continue;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(h * seq + i) * d + c]! * k[(g * seq + j) * d + c]!;
        js.push(j);
        s.push(dot * scale);
      }
      if (js.length === 0) continue;
      const m = Math.max(...s);
      const w = s.map((x) => Math.exp(x - m));
      const z = w.reduce((a, b) => a + b, 0);
      js.forEach((j, n) => {
        for (let c = 0; c < d; c++) out[(h * seq + i) * d + c]! += (w[n]! / z) * v[(g * seq + j) * d + c]!;
      });
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
