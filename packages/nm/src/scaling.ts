// Weight scaling after pruning (CAST): zeroing the pruned entries shrinks each output row, so the kept
// entries of a row are multiplied by one factor that restores the row's norm before pruning.
import { isKept, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { readMatrix } from './internal.js';

export interface RescaleRowsOptions {
  /** Norm to preserve per row: 'l2' (default) or 'l1'. */
  norm?: 'l2' | 'l1';
  /** Target norm per row; default: the norms of the dense `weight` rows. */
  reference?: ArrayLike<number>;
}

export interface RescaleRowsResult {
  /** weight * mask with each row's kept entries scaled. */
  weight: Float32Tensor;
  /** Factor applied to each row (1 for a row with nothing kept or zero kept norm). */
  scales: Float64Array;
}

/** Per-row norms of a [rows, cols] matrix. */
export function rowNorms(weight: Tensor, norm: 'l2' | 'l1' = 'l2'): Float64Array {
  const { rows, cols, data } = readMatrix(weight, 'rowNorms');
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += norm === 'l1' ? Math.abs(data[i * cols + j]!) : data[i * cols + j]! ** 2;
    out[i] = norm === 'l1' ? s : Math.sqrt(s);
  }
  return out;
}

/**
 * W * mask with row i's kept entries multiplied by reference[i] / norm(kept part of row i), so every output
 * row keeps its pre-pruning norm (L2 by default). Rows with nothing kept are left at zero (scale 1).
 */
export function rescaleKeptRows(weight: Tensor, mask: Mask, opts: RescaleRowsOptions = {}): RescaleRowsResult {
  const where = 'rescaleKeptRows';
  validateMask(mask, where);
  const norm = opts.norm ?? 'l2';
  if (norm !== 'l2' && norm !== 'l1') throw new ArgumentError(`${where}: norm must be 'l2' or 'l1', got ${JSON.stringify(norm)}`);
  const { rows, cols, data } = readMatrix(weight, where);
  if (mask.shape.length !== 2 || mask.shape[0] !== rows || mask.shape[1] !== cols) {
    throw new ShapeError(`${where}: mask shape [${mask.shape.join(', ')}] differs from weight shape [${rows}, ${cols}]`);
  }
  const ref = opts.reference ?? rowNorms(weight, norm);
  if (ref.length !== rows) throw new ShapeError(`${where}: reference has ${ref.length} norms, weight has ${rows} rows`);
  const out = new Float32Array(rows * cols);
  const scales = new Float64Array(rows).fill(1);
  for (let i = 0; i < rows; i++) {
    const target = ref[i]!;
    if (!(target >= 0) || !Number.isFinite(target)) throw new ArgumentError(`${where}: reference norm of row ${i} must be finite and >= 0, got ${target}`);
    let s = 0;
    for (let j = 0; j < cols; j++) {
      if (!isKept(mask, i * cols + j)) continue;
      const v = data[i * cols + j]!;
      s += norm === 'l1' ? Math.abs(v) : v * v;
    }
    const kept = norm === 'l1' ? s : Math.sqrt(s);
    if (kept > 0) scales[i] = target / kept;
    for (let j = 0; j < cols; j++) if (isKept(mask, i * cols + j)) out[i * cols + j] = data[i * cols + j]! * scales[i]!;
  }
  return { weight: tensor(out, [rows, cols]), scales };
}

/**
 * CAST's merge of a learned per-row scale: scales[i] · (mask ⊙ W)[i, :], so the N:M pattern is kept
 * (the trainer's 'adams' method ends with it).
 */
export function mergeRowScales(weight: Tensor, mask: Mask, scales: ArrayLike<number>): Float32Tensor {
  const where = 'mergeRowScales';
  validateMask(mask, where);
  const { rows, cols, data } = readMatrix(weight, where);
  if (mask.shape.length !== 2 || mask.shape[0] !== rows || mask.shape[1] !== cols) {
    throw new ShapeError(`${where}: mask shape [${mask.shape.join(', ')}] differs from weight shape [${rows}, ${cols}]`);
  }
  if (scales.length !== rows) throw new ShapeError(`${where}: scales has ${scales.length} entries, weight has ${rows} rows`);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const s = scales[i]!;
    if (!Number.isFinite(s)) throw new ArgumentError(`${where}: scale of row ${i} must be finite, got ${s}`);
    for (let j = 0; j < cols; j++) if (isKept(mask, i * cols + j)) out[i * cols + j] = data[i * cols + j]! * s;
  }
  return tensor(out, [rows, cols]);
}
