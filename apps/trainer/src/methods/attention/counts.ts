// Summaries of the per-layer counts an evaluation with sparse attention takes: the share of causal tiles
// a block method computes, or the K / V sparsity a KV method reaches and the bytes its bitmap cache
// (BitmapKVCache's layout: per row ceil(headDim / 8) bit bytes, 4 bytes per kept value, an int32 row
// start) takes for one window of the evaluated context, against the dense float32 cache.

import type { AttentionCounts } from '../../run/context.js';

export interface TileSummary {
  kind: 'tiles';
  /** Tiles computed over the causal pattern's tiles, all layers. */
  density: number;
  layers: { layer: number; density: number }[];
}

export interface KVSummary {
  kind: 'kv';
  kSparsity: number;
  vSparsity: number;
  /** Bitmap cache bytes (all layers) for `positions` tokens, and the dense float32 cache's. */
  bytes: number;
  denseBytes: number;
  positions: number;
  layers: { layer: number; kSparsity: number; vSparsity: number }[];
}

export function emptyCounts(): AttentionCounts {
  return { tiles: new Map(), kv: new Map() };
}

/** The summary of `counts`, or undefined when nothing was counted; `positions` tokens x `kvHeads` rows per layer for the byte count. */
export function summarizeCounts(counts: AttentionCounts, positions: number, kvHeads: number): TileSummary | KVSummary | undefined {
  if (counts.kv.size > 0) {
    let kKept = 0;
    let vKept = 0;
    let entries = 0;
    let bytes = 0;
    let denseBytes = 0;
    const layers = [...counts.kv].sort((a, b) => a[0] - b[0]).map(([layer, c]) => {
      kKept += c.kKept;
      vKept += c.vKept;
      entries += c.entries;
      const rows = positions * kvHeads;
      const perRow = (c.kKept + c.vKept) / Math.max(1, c.rows);
      bytes += 2 * rows * Math.ceil(c.headDim / 8) + Math.round(4 * rows * perRow) + 2 * 4 * (rows + 1);
      denseBytes += 2 * rows * c.headDim * 4;
      return { layer, kSparsity: 1 - c.kKept / Math.max(1, c.entries), vSparsity: 1 - c.vKept / Math.max(1, c.entries) };
    });
    return { kind: 'kv', kSparsity: 1 - kKept / Math.max(1, entries), vSparsity: 1 - vKept / Math.max(1, entries), bytes, denseBytes, positions, layers };
  }
  if (counts.tiles.size > 0) {
    let computed = 0;
    let total = 0;
    const layers = [...counts.tiles].sort((a, b) => a[0] - b[0]).map(([layer, c]) => {
      computed += c.computed;
      total += c.total;
      return { layer, density: c.total === 0 ? 1 : c.computed / c.total };
    });
    return { kind: 'tiles', density: total === 0 ? 1 : computed / total, layers };
  }
  return undefined;
}

/** One line for the log. */
export function describeSummary(s: TileSummary | KVSummary): string {
  if (s.kind === 'tiles') return `computes ${(100 * s.density).toFixed(1)}% of the causal attention tiles (${s.layers.length} layers)`;
  return `K sparsity ${(100 * s.kSparsity).toFixed(1)}%, V sparsity ${(100 * s.vSparsity).toFixed(1)}%; bitmap KV cache ${s.bytes.toLocaleString('en-US')} bytes vs ${s.denseBytes.toLocaleString('en-US')} dense for ${s.positions} positions`;
}
