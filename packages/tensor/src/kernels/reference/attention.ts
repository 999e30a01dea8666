import type { AttentionArgs, BlockSparseAttentionArgs } from '../types.js';
import { validateAttentionArgs, validateBlockSparseAttentionArgs } from '../validate.js';

/**
 * Straightforward two-pass attention in float64 (scores, max, exp, sum, weighted sum of values),
 * query by query, over the keys `allowed(h, i, j)` admits; rounding once on store. A query with no
 * allowed key gets zeros.
 */
function attend(args: AttentionArgs, allowed: (h: number, i: number, j: number) => boolean): void {
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
    }
  }
}

/** Reference dense (optionally causal) attention; see AttentionArgs. */
export function denseAttentionReference(args: AttentionArgs): void {
  validateAttentionArgs(args);
  attend(args, () => true);
}

/** Reference block-sparse attention: query block bi sees key block bj where the block mask is set. */
export function blockSparseAttentionReference(args: BlockSparseAttentionArgs): void {
  validateBlockSparseAttentionArgs(args);
  const { blockSize, blockMask, seq } = args;
  const nb = Math.ceil(seq / blockSize);
  const perHead = blockMask.length !== nb * nb;
  attend(args, (h, i, j) => blockMask[(perHead ? h * nb * nb : 0) + Math.floor(i / blockSize) * nb + Math.floor(j / blockSize)] !== 0);
}
