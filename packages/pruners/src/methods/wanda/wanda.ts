// Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"): the score of
// W_ij is |W_ij| * ||X_j||_2, compared within each output row. No weight update.

import { applyMask, keepCount, type Mask } from '@sparse/masks';
import { ArgumentError, getKernel, tensor, type Float32Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { entryIs, readHessian, readVector, readWeight, weightView, where } from '../../internal.js';
import { patternOf, selectByPattern } from '../../pattern.js';
import type { LayerStats, PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { wandaConfigSchema, type WandaConfigInput } from './config.js';

/**
 * The input column norms ||X_j||_2 from stats.columnNorms, or up to one common factor from the Hessian's
 * diagonal (H_jj = 2/n ||X_j||^2), which ranks every row identically.
 */
export function wandaColumnNorms(method: string, layer: string, stats: LayerStats | undefined, cols: number): Float64Array {
  if (stats?.columnNorms !== undefined) return readVector(method, layer, 'stats.columnNorms', stats.columnNorms, cols, { nonNegative: true });
  if (stats?.hessian !== undefined) {
    const h = readHessian(method, layer, stats.hessian, cols);
    return Float64Array.from({ length: cols }, (_, j) => Math.sqrt(Math.max(0, h[j * cols + j]!)));
  }
  throw new ArgumentError(`${where(method, layer)}: needs stats.columnNorms (ColumnNormAccumulator.norms()) or stats.hessian`);
}

/** Wanda scores |W_ij| * norms_j of a row-major [rows, cols] weight, in float64. */
export function wandaScores(w: Float32Array, rows: number, cols: number, norms: Float64Array): Float64Array {
  const s = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) s[r + j] = Math.abs(w[r + j]!) * norms[j]!;
  }
  return s;
}

/**
 * Wanda's default comparison (unstructured, per output row) in one pass of the registry's rowTopKScaledAbs
 * (native when registered): per row, the keepCount(cols, sparsity) largest |W_ij| * norms_j are kept, ties
 * to the lower column, as maskBySparsity(wandaScores(...), sparsity, 'row') keeps them, without building
 * the float64 score matrix. A float32 weight is read in place and the pruned copy written straight into a
 * new array; any other weight is copied to float32 first and pruned in that copy.
 */
function wandaRows(name: string, weight: unknown, stats: LayerStats | undefined, sparsity: number): PruneResult {
  const view = weightView('wanda', name, weight);
  const w = view ?? { ...readWeight('wanda', name, weight), offset: 0, ld: 0 };
  const { rows, cols } = w;
  const norms = wandaColumnNorms('wanda', name, stats, cols);
  const k = keepCount(cols, sparsity, where('wanda', name));
  const mask: Mask = { shape: [rows, cols], bits: new Uint32Array(Math.ceil((rows * cols) / 32)) };
  // readWeight's copy is this call's own: prune in it rather than copying again.
  const out = view === undefined ? w.data : new Float32Array(rows * cols);
  const ldw = view === undefined ? Math.max(1, cols) : w.ld;
  const bad = getKernel('rowTopKScaledAbs')({ rows, cols, w: w.data, wOffset: w.offset, ldw, scale: norms, k, mask: mask.bits, out, outOffset: 0, ldo: Math.max(1, cols) });
  if (bad >= 0) {
    const i = Math.floor(bad / cols);
    throw new ArgumentError(`${where('wanda', name)}: weight${entryIs(bad, cols, w.data[w.offset + i * ldw + (bad % cols)]!)}; weights must be finite`);
  }
  return { mask, weight: tensor(out, [rows, cols]) as Float32Tensor };
}

export const wandaPruner: PrunerDefinition<typeof wandaConfigSchema> = {
  name: 'wanda',
  kind: 'pruner',
  describe: 'Keep the largest |W_ij| * ||X_j||_2 within each output row (Wanda); unstructured or N:M.',
  paper: 'Sun et al. 2023, A Simple and Effective Pruning Approach for Large Language Models (Wanda)',
  differs: [],
  schema: wandaConfigSchema,
  calibration: ['columns'],
  prune({ name, weight, stats, config }) {
    const pattern = patternOf(config);
    if (pattern.kind === 'unstructured' && config.granularity === 'row') return wandaRows(name, weight, stats, pattern.sparsity);
    const w = readWeight('wanda', name, weight);
    const norms = wandaColumnNorms('wanda', name, stats, w.cols);
    const scores = wandaScores(w.data, w.rows, w.cols, norms);
    const mask = selectByPattern('wanda', name, scores, w.rows, w.cols, pattern, config.granularity);
    // readWeight's data is this call's own copy: zero the pruned entries in it rather than copying again.
    return { mask, weight: applyMask(mask, tensor(w.data, [w.rows, w.cols]), { inPlace: true }) as Float32Tensor };
  },
};

/** Wanda pruning of one layer (defaults: 50% unstructured, compared per output row). */
export function wandaPrune(input: PruneRequest<WandaConfigInput>): PruneResult {
  return runDefinition(wandaPruner, input);
}
