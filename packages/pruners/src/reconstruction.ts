// Measuring what a pruner did to a layer: the reconstruction error of its outputs on calibration inputs.

import { ArgumentError, matmul, ShapeError, tensor, type Tensor } from '@sparse/tensor';
import { readWeight } from './internal.js';
import { readBatch } from './calibration/read.js';

/**
 * ||W X^T - W' X^T||_F for a dense weight W and a pruned W' (both [out, in]) on inputs X [tokens, in]
 * (or [..., in]): the layer-wise error that SparseGPT and Wanda minimize. The product goes through the
 * matmul kernel; the sum of squares is float64.
 */
export function reconstructionError(weight: Tensor, pruned: Tensor, inputs: Tensor): number {
  const w = readWeight('reconstructionError', 'weight', weight);
  const p = readWeight('reconstructionError', 'pruned', pruned);
  if (w.rows !== p.rows || w.cols !== p.cols) {
    throw new ShapeError(`reconstructionError: pruned is [${p.rows}, ${p.cols}] but weight is [${w.rows}, ${w.cols}]`);
  }
  if (w.cols === 0) throw new ArgumentError('reconstructionError: the weight has no input columns');
  const x = readBatch('reconstructionError', undefined, inputs, w.cols, 'inputs');
  const diff = new Float32Array(w.data.length);
  for (let k = 0; k < diff.length; k++) diff[k] = w.data[k]! - p.data[k]!;
  const out = matmul(tensor(diff, [w.rows, w.cols]), x, { transB: true }).data;
  let s = 0;
  for (let k = 0; k < out.length; k++) s += out[k]! * out[k]!;
  return Math.sqrt(s);
}
