import type { LinearCSRArgs, LinearCSRGradInputArgs, SddmmCSRArgs } from '../types.js';
import { validateLinearCSRArgs, validateLinearCSRGradInputArgs, validateSddmmCSRArgs } from '../validate.js';
import { scaleOutput, storeRow } from './common.js';

/**
 * Reference linearCSR: Y[t, i] = alpha * sum over row i's stored (j, w) of w * X[t, j] + beta * Y[t, i],
 * token by token, accumulated in float64 and rounded once on store.
 */
export function linearCSRReference(args: LinearCSRArgs): void {
  validateLinearCSRArgs(args);
  const { w, tokens, alpha, x, xOffset, ldx, beta, y, yOffset, ldy } = args;
  const out = w.shape[0];
  if (tokens === 0 || out === 0) return;
  if (alpha === 0) {
    // BLAS quick return: X and W are not read.
    scaleOutput(y, yOffset, ldy, tokens, out, beta);
    return;
  }
  const { indptr, indices, values } = w;
  const acc = new Float64Array(out);
  for (let t = 0; t < tokens; t++) {
    const xRow = xOffset + t * ldx;
    for (let i = 0; i < out; i++) {
      let s = 0;
      for (let p = indptr[i]!, end = indptr[i + 1]!; p < end; p++) s += values[p]! * x[xRow + indices[p]!]!;
      acc[i] = s;
    }
    storeRow(y, yOffset + t * ldy, acc, 0, out, alpha, beta);
  }
}

/**
 * Reference linearCSRGradInput: row t of dX accumulates, for every stored (i, j, w), w * dY[t, i] at
 * column j (float64, rounded once on store).
 */
export function linearCSRGradInputReference(args: LinearCSRGradInputArgs): void {
  validateLinearCSRGradInputArgs(args);
  const { w, tokens, alpha, dy, dyOffset, lddy, beta, dx, dxOffset, lddx } = args;
  const [out, inp] = w.shape;
  if (tokens === 0 || inp === 0) return;
  if (alpha === 0) {
    scaleOutput(dx, dxOffset, lddx, tokens, inp, beta);
    return;
  }
  const { indptr, indices, values } = w;
  const acc = new Float64Array(inp);
  for (let t = 0; t < tokens; t++) {
    acc.fill(0);
    const dyRow = dyOffset + t * lddy;
    for (let i = 0; i < out; i++) {
      const g = dy[dyRow + i]!;
      for (let p = indptr[i]!, end = indptr[i + 1]!; p < end; p++) acc[indices[p]!]! += values[p]! * g;
    }
    storeRow(dx, dxOffset + t * lddx, acc, 0, inp, alpha, beta);
  }
}

/**
 * Reference sddmmCSR: each stored entry p of row i and column j gets alpha * sum_t dY[t, i] X[t, j]
 * (float64 over the tokens, rounded once) + beta * out[p]; beta = 0 never reads out.
 */
export function sddmmCSRReference(args: SddmmCSRArgs): void {
  const nnz = validateSddmmCSRArgs(args);
  const { pattern, tokens, alpha, dy, dyOffset, lddy, x, xOffset, ldx, beta, out, outOffset } = args;
  if (nnz === 0) return;
  if (alpha === 0 || tokens === 0) {
    // Nothing to sum (or alpha = 0, where dY and X are not read): out = beta * out.
    for (let p = 0; p < nnz; p++) out[outOffset + p] = beta === 0 ? 0 : beta * out[outOffset + p]!;
    return;
  }
  const { indptr, indices } = pattern;
  const rows = pattern.shape[0];
  for (let i = 0; i < rows; i++) {
    for (let p = indptr[i]!, end = indptr[i + 1]!; p < end; p++) {
      const j = indices[p]!;
      let s = 0;
      for (let t = 0; t < tokens; t++) s += dy[dyOffset + t * lddy + i]! * x[xOffset + t * ldx + j]!;
      const at = outOffset + p;
      out[at] = beta === 0 ? alpha * s : alpha * s + beta * out[at]!;
    }
  }
}
