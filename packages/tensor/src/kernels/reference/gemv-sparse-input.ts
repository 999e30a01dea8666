import type { GemvSparseInputArgs } from '../types.js';
import { validateGemvSparseInputArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/** Indices p < cols whose row X[p, 0:n] has a nonzero (NaN counts as nonzero): the channels gemvSparseInput reads. */
export function activeInputChannels(x: Float32Array, xOffset: number, ldx: number, cols: number, n: number): Int32Array {
  const out: number[] = [];
  for (let p = 0; p < cols; p++) {
    const row = xOffset + p * ldx;
    for (let j = 0; j < n; j++) {
      if (x[row + j] !== 0) {
        out.push(p);
        break;
      }
    }
  }
  return Int32Array.from(out);
}

/**
 * Reference gemvSparseInput: Y = alpha * op(W) * X + beta * Y over the active input channels only
 * (float64 accumulation, one rounding on store). Weights of all-zero channels are never read.
 */
export function gemvSparseInputReference(args: GemvSparseInputArgs): void {
  validateGemvSparseInputArgs(args);
  const { transW, rows, cols, n, alpha, w, wOffset, ldw, x, xOffset, ldx, beta, y, yOffset, ldy } = args;
  if (rows === 0 || n === 0) return;
  if (alpha === 0) {
    scaleOutput(y, yOffset, ldy, rows, n, beta);
    return;
  }
  const active = activeInputChannels(x, xOffset, ldx, cols, n);
  // Stride of op(W) along the input channel p and along the output row i.
  const stepP = transW ? ldw : 1;
  const stepI = transW ? 1 : ldw;
  const acc = new Float64Array(n);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (const p of active) {
      const wip = w[wOffset + i * stepI + p * stepP]!;
      const xRow = xOffset + p * ldx;
      for (let j = 0; j < n; j++) acc[j]! += wip * x[xRow + j]!;
    }
    storeRow(y, yOffset + i * ldy, acc, 0, n, alpha, beta);
  }
}
