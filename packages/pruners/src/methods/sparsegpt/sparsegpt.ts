// SparseGPT (Frantar & Alistarh 2023, "Massive Language Models Can Be Accurately Pruned in One-Shot"):
// prune columns left to right and, after each column, update the columns still to come with the optimal
// brain surgeon (OBS) correction. The sequence of inverse Hessians it needs is read off one Cholesky factor
// of H^-1; updates inside a block are immediate, the columns after a block get one lazy batch update.
// With actOrder (GPTQ's act-order) the columns are processed by descending diag(H) and put back after.

import { isKept, keepCount, maskFromBooleans, maskToBooleans, topKMask } from '@sparse/masks';
import { ArgumentError, getKernel, selectNMGroup, tensor, type Float32Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { readHessian, readMask, readWeight, requireStat, where } from '../../internal.js';
import { checkNMShape, patternOf } from '../../pattern.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { sparseGPTConfigSchema, type SparseGPTConfig, type SparseGPTConfigInput } from './config.js';

/**
 * The upper Cholesky factor U of (H + damp I)^-1 (H^-1 = U^T U), after the reference's handling of dead
 * inputs: a zero on H's diagonal becomes 1 (that input never fires, so its weights are set to 0 by the
 * caller). Row i of U is the first row of the inverse Hessian of columns i.. scaled by 1 / sqrt of its
 * first entry, which is all the OBS step for column i needs.
 *
 * The reference inverts H and factors the inverse; here U comes from one factorization of the reversed
 * matrix: if J H J = L L^T then H = R R^T with R = J L J upper, so H^-1 = (R^-1)^T R^-1 and U = J L^-1 J.
 * Same matrix (the factor is unique), half the work, and H^-1 is never formed. `damp` is the λ added to
 * the diagonal (percdamp * mean diag H, after the dead inputs' 1s). `h` is consumed: u is returned in
 * its storage.
 */
export function sparseGPTInverseFactor(layer: string, h: Float64Array, n: number, percdamp: number): { u: Float64Array; dead: Uint8Array; damp: number } {
  const dead = new Uint8Array(n);
  let trace = 0;
  for (let j = 0; j < n; j++) {
    if (h[j * n + j] === 0) {
      dead[j] = 1;
      h[j * n + j] = 1;
    }
    trace += h[j * n + j]!;
  }
  const damp = n > 0 ? (percdamp * trace) / n : 0;
  for (let j = 0; j < n; j++) h[j * n + j]! += damp;
  // All in h's own storage (H is not needed again): J H J = L L^T factored in place, L inverted in
  // place, and J L^-1 J is U. One n x n float64 array at the peak.
  reverseInPlace(h, n);
  const failed = getKernel('choleskyF64')({ n, a: h, aOffset: 0, lda: n });
  if (failed !== null) {
    throw new ArgumentError(
      `${where('sparsegpt', layer)}: the dampened Hessian is not positive definite (cholesky: pivot ${failed.index} is ${failed.pivot}); raise percdamp (now ${percdamp}) or calibrate on more tokens`,
    );
  }
  const bad = getKernel('triangularInverseF64')({ n, l: h, lOffset: 0, ldl: n, x: h, xOffset: 0, ldx: n });
  if (bad >= 0) throw new ArgumentError(`${where('sparsegpt', layer)}: the Cholesky factor of the dampened Hessian has diagonal entry ${bad} = ${h[bad * n + bad]}`);
  reverseInPlace(h, n);
  return { u: h, dead, damp };
}

/** J A J in place: entry (i, j) trades places with (n-1-i, n-1-j), i.e. the whole array reversed. */
function reverseInPlace(a: Float64Array, n: number): void {
  a.subarray(0, n * n).reverse();
}

/** How many entries of each block of columns to prune so the layer prunes exactly size - keepCount(size, s). */
function blockPruneCounts(rows: number, cols: number, sparsity: number, blocksize: number): number[] {
  const total = rows * cols - keepCount(rows * cols, sparsity);
  const counts: number[] = [];
  // Cumulative rounding: each block gets its share, and the shares add up to the total exactly.
  for (let i1 = 0; i1 < cols; i1 += blocksize) {
    const i2 = Math.min(i1 + blocksize, cols);
    counts.push(Math.round((total * i2) / cols) - Math.round((total * i1) / cols));
  }
  return counts;
}

/**
 * GPTQ's activation order: the columns by descending diag(H), ties to the lower index (so dead inputs,
 * diag 0, come last). order[k] is the layer column processed k-th.
 */
export function actOrderPermutation(h: Float64Array, n: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, j) => j);
  return order.sort((a, b) => h[b * n + b]! - h[a * n + a]! || a - b);
}

/** Columns of a row-major [rows, cols] array taken in `order`: out[r, k] = a[r, order[k]]. */
function permuteColumns<T extends Float32Array | Uint8Array>(a: T, rows: number, cols: number, order: Int32Array): T {
  const out = new (a.constructor as new (n: number) => T)(a.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) out[r * cols + k] = a[r * cols + order[k]!]!;
  return out;
}

/** The inverse of permuteColumns: out[r, order[k]] = a[r, k]. */
function unpermuteColumns<T extends Float32Array | Uint8Array>(a: T, rows: number, cols: number, order: Int32Array): T {
  const out = new (a.constructor as new (n: number) => T)(a.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) out[r * cols + order[k]!] = a[r * cols + k]!;
  return out;
}

/** H with rows and columns taken in `order`. */
function permuteSymmetric(h: Float64Array, n: number, order: Int32Array): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = h[order[i]! * n + order[j]!]!;
  return out;
}

interface ObsResult {
  keep: Uint8Array;
  w: Float32Array;
  perRow: Float64Array;
  dampenedPerRow: Float64Array;
}

/** `given`: keep flags of a fixed mask (row-major), or undefined to choose the mask by the pattern. */
function obsPrune(layer: string, w: Float32Array, rows: number, cols: number, h: Float64Array, config: SparseGPTConfig, given: Uint8Array | undefined): ObsResult {
  const pattern = patternOf(config);
  if (given === undefined && pattern.kind === 'nm') checkNMShape('sparsegpt', layer, cols, pattern.m);
  const { u, dead, damp } = sparseGPTInverseFactor(layer, h, cols, config.percdamp);
  for (let j = 0; j < cols; j++) if (dead[j]) for (let r = 0; r < rows; r++) w[r * cols + j] = 0;
  // W with the dead inputs zeroed, the start of the OBS steps: the final weight is start - E U (below).
  const start = w.slice();
  const u32 = Float32Array.from(u); // the lazy batch update runs through the gemm kernel in float32, as the reference does
  const gemm = getKernel('gemm');
  const pruned = new Uint8Array(rows * cols);
  const losses = new Float64Array(rows);
  const bs = config.blocksize;
  const counts = given === undefined && pattern.kind === 'unstructured' ? blockPruneCounts(rows, cols, pattern.sparsity, bs) : [];
  // N:M: one group's saliencies and the positions selectNMGroup keeps, reused by every row and group.
  const groupScore = new Float64Array(pattern.kind === 'nm' ? pattern.m : 0);
  const groupKept = new Int32Array(pattern.kind === 'nm' ? pattern.n : 0);

  for (let i1 = 0, b = 0; i1 < cols; i1 += bs, b++) {
    const i2 = Math.min(i1 + bs, cols);
    const B = i2 - i1;
    const w1 = new Float64Array(rows * B);
    for (let r = 0; r < rows; r++) for (let i = 0; i < B; i++) w1[r * B + i] = w[r * cols + i1 + i]!;
    const p1 = new Uint8Array(rows * B);
    if (given !== undefined) {
      for (let r = 0; r < rows; r++) for (let i = 0; i < B; i++) p1[r * B + i] = given[r * cols + i1 + i] ? 0 : 1;
    } else if (pattern.kind === 'unstructured') {
      // OBS saliency w^2 / [H_F^-1]_00 of every entry of the block, taken before any of the block is pruned.
      const score = new Float64Array(rows * B);
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < B; i++) {
          const d = u[(i1 + i) * cols + i1 + i]!;
          score[r * B + i] = (w1[r * B + i]! * w1[r * B + i]!) / (d * d);
        }
      }
      const keep = topKMask(tensor(score, [rows, B]), rows * B - counts[b]!);
      for (let k = 0; k < rows * B; k++) p1[k] = isKept(keep, k) ? 0 : 1;
    }
    const err1 = new Float32Array(rows * B);
    for (let i = 0; i < B; i++) {
      const col = i1 + i;
      if (given === undefined && pattern.kind === 'nm' && i % pattern.m === 0) {
        // N:M: each group's saliencies use the weights as updated by the columns before it.
        const { n, m } = pattern;
        for (let r = 0; r < rows; r++) {
          for (let t = 0; t < m; t++) {
            const d = u[(col + t) * cols + col + t]!;
            groupScore[t] = (w1[r * B + i + t]! * w1[r * B + i + t]!) / (d * d);
            p1[r * B + i + t] = 1;
          }
          selectNMGroup(groupScore, n, m, groupKept);
          for (let t = 0; t < n; t++) p1[r * B + i + groupKept[t]!] = 0;
        }
      }
      const d = u[col * cols + col]!;
      const urow = col * cols + i1; // U[col, i1 + j] = u[urow + j]
      for (let r = 0; r < rows; r++) {
        const k = r * B + i;
        if (!p1[k]) continue; // a kept weight stays as it is: no error, nothing to compensate
        const e = w1[k]! / d;
        losses[r]! += e * e;
        err1[k] = e;
        // The OBS update of this row's remaining block columns; it sets column i itself to exactly 0.
        for (let j = k + 1, t = urow + i + 1, end = (r + 1) * B; j < end; j++, t++) w1[j]! -= e * u[t]!;
        w1[k] = 0;
      }
    }
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < B; i++) {
        w[r * cols + i1 + i] = w1[r * B + i]!;
        pruned[r * cols + i1 + i] = p1[r * B + i]!;
      }
    }
    if (i2 < cols) {
      // Lazy batch update of every column after the block, in place: W[:, i2:] -= Err1 U[i1:i2, i2:].
      const rest = cols - i2;
      gemm({ transA: false, transB: false, m: rows, n: rest, k: B, alpha: -1, a: err1, aOffset: 0, lda: B, b: u32, bOffset: i1 * cols + i2, ldb: cols, beta: 1, c: w, cOffset: i2, ldc: cols });
    }
  }
  const keepFlags = new Uint8Array(rows * cols);
  for (let k = 0; k < keepFlags.length; k++) {
    keepFlags[k] = pruned[k] ? 0 : 1;
    if (pruned[k]) w[k] = 0;
  }
  // The OBS steps give start - W' = E U, with E the errors e = w / U_qq of the pruned entries and U the
  // upper Cholesky factor of (H + λI)^-1, so (start - W')(H + λI)(start - W')^T = E U (H + λI) U^T E^T = E E^T:
  // the sum of the e^2 is the error against the DAMPENED Hessian, which overstates the real one by
  // λ ||start - W'||^2. The real error subtracts that term (a dead input's column is 0 in start and W',
  // so H's 1 there adds nothing); halving turns (.)H(.)^T with H = 2/n X^T X into ||(W - W')X^T||^2 / n.
  const dampenedPerRow = losses.map((x) => x / 2);
  const perRow = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) sq += (start[j]! - w[j]!) ** 2;
    perRow[r] = Math.max(0, (losses[r]! - damp * sq) / 2);
  }
  return { keep: keepFlags, w, perRow, dampenedPerRow };
}

export const sparseGPTPruner: PrunerDefinition<typeof sparseGPTConfigSchema> = {
  name: 'sparsegpt',
  kind: 'pruner',
  describe: 'OBS pruning with weight reconstruction from the input Hessian (SparseGPT); unstructured, N:M, or a given mask.',
  paper: 'Frantar & Alistarh 2023, SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot',
  differs: [
    'actOrder: true (off by default) adds GPTQ\'s act-order column order, which the paper does not use; refused with N:M',
  ],
  schema: sparseGPTConfigSchema,
  calibration: ['hessian'],
  prune({ name, weight, stats, mask, config }) {
    const w = readWeight('sparsegpt', name, weight);
    const hessian = requireStat('sparsegpt', name, stats?.hessian, 'hessian', 'HessianAccumulator.hessian()');
    const h = readHessian('sparsegpt', name, hessian, w.cols);
    const { rows, cols } = w;
    let given = mask === undefined ? undefined : maskToBooleans(readMask('sparsegpt', name, mask, rows, cols));
    let r: ObsResult;
    if (config.actOrder) {
      // Process the columns in activation order, then put the mask and the weights back in the layer's order.
      const order = actOrderPermutation(h, cols);
      if (given !== undefined) given = permuteColumns(given, rows, cols, order);
      r = obsPrune(name, permuteColumns(w.data, rows, cols, order), rows, cols, permuteSymmetric(h, cols, order), config, given);
      r = { ...r, keep: unpermuteColumns(r.keep, rows, cols, order), w: unpermuteColumns(r.w, rows, cols, order) };
    } else {
      r = obsPrune(name, w.data, rows, cols, h, config, given);
    }
    const sum = (a: Float64Array) => a.reduce((s, x) => s + x, 0);
    return {
      mask: maskFromBooleans(r.keep, [rows, cols]),
      weight: tensor(r.w, [rows, cols]) as Float32Tensor,
      error: { total: sum(r.perRow), perRow: r.perRow, dampened: sum(r.dampenedPerRow) },
    };
  },
};

/**
 * SparseGPT on one layer (defaults of the reference: blocksize 128, percdamp 0.01, 50% unstructured, no
 * act-order). With input.mask the mask is kept as given and only the weights are reconstructed. error.total
 * is the real ||(W - W')X^T||^2 / tokens of the result; error.dampened the same against H + λI.
 */
export function sparseGPTPrune(input: PruneRequest<SparseGPTConfigInput>): PruneResult {
  return runDefinition(sparseGPTPruner, input);
}
