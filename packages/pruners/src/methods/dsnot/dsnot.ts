// DSnoT (Zhang et al. 2024, "Dynamic Sparse No Training: Training-Free Fine-tuning for Sparse LLMs"):
// starting from a sparse layer, repeatedly regrow one pruned weight and prune one kept weight per output row
// to drive the expected reconstruction error ε_i = Σ_{j pruned} W_ij E[x_j] toward zero. No gradients, no
// weight updates: kept weights keep their dense values.
//
// A row's error on the calibration tokens splits into the square of its mean and its variance:
// (w - w')(H/2)(w - w')^T = ε² + (w - w') Σ (w - w')^T, Σ the inputs' covariance. A swap is applied only if
// it lowers |ε| (DSnoT's own objective) without raising that variance, so the total falls too; the first
// proposal that fails ends the row, as the reference's update mask does. Trading variance for mean, which a
// check of the total alone allows, lowered every layer's error yet raised perplexity on real text.

import { maskFromBooleans, maskToBooleans, type Mask } from '@sparse/masks';
import { matmul, tensor, type Float32Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { readHessian, readMask, readVector, readWeight, requireStat } from '../../internal.js';
import { checkNMShape, patternOf, type Pattern } from '../../pattern.js';
import type { LayerStats, PruneInput, PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { magnitudePruner } from '../magnitude/magnitude.js';
import { sparseGPTPruner } from '../sparsegpt/sparsegpt.js';
import { wandaColumnNorms, wandaPruner } from '../wanda/wanda.js';
import { dsnotConfigSchema, type DSnoTConfig, type DSnoTConfigInput } from './config.js';

/** Rounding allowance (float64) in the exact checks of a swap, relative to the size of the terms. */
const EXACT_MARGIN = 1e-9;

/** The mask DSnoT starts from when none is given: the configured initial pruner under the same pattern. */
function startMask(name: string, weight: PruneInput['weight'], stats: LayerStats | undefined, config: DSnoTConfig): Mask {
  const pattern = config.n !== undefined ? { n: config.n, m: config.m } : { sparsity: config.sparsity };
  switch (config.initial) {
    case 'wanda':
      return runDefinition(wandaPruner, { name, weight, stats, config: pattern }).mask;
    case 'magnitude':
      // DSnoT compares within rows (its swaps keep each row's count), so its magnitude start is per row too.
      return runDefinition(magnitudePruner, { name, weight, stats, config: { ...pattern, granularity: 'row' } }).mask;
    case 'sparsegpt':
      return runDefinition(sparseGPTPruner, { name, weight, stats, config: pattern }).mask;
  }
}

/** Per-row (w - w') H (w - w')^T / 2 for w' = w ⊙ keep, through the matmul kernel. */
function rowErrors(w: Float32Array, keep: Uint8Array, rows: number, cols: number, h32: Float32Array): Float64Array {
  const d = new Float32Array(rows * cols);
  for (let k = 0; k < d.length; k++) if (!keep[k]) d[k] = w[k]!;
  const dh = matmul(tensor(d, [rows, cols]), tensor(h32, [cols, cols])).data;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += d[r * cols + j]! * dh[r * cols + j]!;
    out[r] = s / 2;
  }
  return out;
}

interface RowContext {
  w: Float32Array;
  keep: Uint8Array;
  initial: Uint8Array;
  cols: number;
  h: Float64Array;
  mu: Float64Array;
  varPow: Float64Array;
  norms: Float64Array;
  pattern: Pattern;
  config: DSnoTConfig;
  sameSign: boolean;
}

/** Regrowth key W_ij E[x_j] / Var(x_j)^p; a constant input (variance 0) ranks at the matching end. */
function regrowKey(metric: number, varPow: number): number {
  if (varPow > 0) return metric / varPow;
  return metric > 0 ? Infinity : metric < 0 ? -Infinity : 0;
}

/**
 * Runs the swaps of one output row in place on ctx.keep; returns the exact change of (w - w')H(w - w')^T.
 * Each cycle proposes one regrowth and one pruning (the paper's criteria); the swap is applied only if the
 * expected error |ε| falls, the variance of the row's error does not rise and its total falls. The row ends
 * at the first proposal that fails, at |ε| <= updateThreshold, after maxCycles, or when a list runs out.
 */
function swapRow(r: number, ctx: RowContext, d: Float64Array, metric: Float64Array): number {
  const { w, keep, initial, cols, h, mu, varPow, norms, pattern, config } = ctx;
  const base = r * cols;
  let eps = 0;
  const regrow: number[] = [];
  const prunable: number[] = [];
  for (let j = 0; j < cols; j++) {
    metric[j] = w[base + j]! * mu[j]!;
    if (keep[base + j]) {
      d[j] = 0;
      prunable.push(j);
    } else {
      d[j] = w[base + j]!;
      eps += metric[j]!;
      regrow.push(j);
    }
  }
  const sign0 = Math.sign(eps);
  // Regrowth candidates ascending by key: the positive end lowers a positive ε most, the negative end a negative one.
  const key = (j: number) => regrowKey(metric[j]!, varPow[j]!);
  regrow.sort((a, b) => key(a) - key(b) || a - b);
  const wanda = (j: number) => Math.abs(w[base + j]!) * norms[j]!;
  // Pruning candidates (unstructured): negative contributions first by ascending Wanda score, then the positive
  // ones in reverse, so each end holds the least important weight of its sign (the reference's ordering).
  let order: number[] = [];
  if (pattern.kind === 'unstructured') {
    const byWanda = prunable.sort((a, b) => wanda(a) - wanda(b) || a - b);
    const neg = byWanda.filter((j) => metric[j]! < 0);
    const zero = byWanda.filter((j) => metric[j] === 0);
    const pos = byWanda.filter((j) => metric[j]! > 0).reverse();
    order = [...neg, ...zero, ...pos];
  }
  const tried = new Uint8Array(pattern.kind === 'nm' ? cols : 0);
  let rl = 0;
  let rh = regrow.length - 1;
  let pl = 0;
  let ph = order.length - 1;
  let change = 0;
  for (let cycle = 0; cycle < config.maxCycles; cycle++) {
    if (!(Math.abs(eps) > config.updateThreshold) || rl > rh) break;
    const ri = eps > 0 ? regrow[rh--]! : regrow[rl++]!;
    let pi = -1;
    if (pattern.kind === 'unstructured') {
      if (pl > ph) break;
      pi = eps < 0 ? order[ph--]! : order[pl++]!;
    } else {
      // N:M: prune inside the regrown weight's group, so every group keeps exactly N.
      const g0 = ri - (ri % pattern.m);
      for (let j = g0; j < g0 + pattern.m; j++) {
        if (keep[base + j] && initial[base + j] && !tried[j] && (pi < 0 || wanda(j) < wanda(pi))) pi = j;
      }
      if (pi < 0) continue; // every kept weight of this group was tried: the next regrowth candidate
      tried[pi] = 1;
    }
    const after = eps + metric[pi]! - metric[ri]!;
    if (ctx.sameSign && Math.sign(after) !== sign0) break;
    // Exact change of d H d^T when d gains w_p e_p and loses w_r e_r.
    const wp = w[base + pi]!;
    const wr = w[base + ri]!;
    let gp = 0;
    let gr = 0;
    const hp = pi * cols;
    const hr = ri * cols;
    for (let k = 0; k < cols; k++) {
      const dk = d[k]!;
      if (dk === 0) continue;
      gp += dk * h[hp + k]!;
      gr += dk * h[hr + k]!;
    }
    const t1 = 2 * wp * gp;
    const t2 = -2 * wr * gr;
    const t3 = wp * wp * h[hp + pi]!;
    const t4 = wr * wr * h[hr + ri]!;
    const t5 = -2 * wp * wr * h[hp + ri]!;
    const delta = t1 + t2 + t3 + t4 + t5;
    const size = Math.abs(t1) + Math.abs(t2) + t3 + t4 + Math.abs(t5);
    // d(H/2)d^T = ε² + dΣd^T: the change of the error's variance is delta / 2 minus the change of ε².
    const varianceChange = delta / 2 - (after * after - eps * eps);
    const accept =
      Math.abs(after) < Math.abs(eps) &&
      varianceChange <= EXACT_MARGIN * (size / 2 + after * after + eps * eps) &&
      delta < -EXACT_MARGIN * size;
    // The proposals only get worse down the lists: a failed one ends the row (the reference's update mask).
    if (!accept) break;
    keep[base + pi] = 0;
    keep[base + ri] = 1;
    d[pi] = wp;
    d[ri] = 0;
    eps = after;
    change += delta;
  }
  return change;
}

export const dsnotPruner: PrunerDefinition<typeof dsnotConfigSchema> = {
  name: 'dsnot',
  kind: 'pruner',
  describe: 'Training-free prune-and-grow on a sparse layer (DSnoT): each swap lowers the expected error |E[ε]| without raising the error variance, so the reconstruction error never rises.',
  paper: 'Zhang et al. 2024, Dynamic Sparse No Training: Training-Free Fine-tuning for Sparse LLMs (DSnoT)',
  differs: [
    'a swap is applied only if it lowers |ε| without raising the variance of the row\'s error on the calibration tokens; the paper\'s criterion looks at ε alone',
  ],
  schema: dsnotConfigSchema,
  calibration: ['columns', 'hessian'],
  prune({ name, weight, stats, mask, config }) {
    const w = readWeight('dsnot', name, weight);
    const { rows, cols } = w;
    const pattern = patternOf(config);
    if (pattern.kind === 'nm') checkNMShape('dsnot', name, cols, pattern.m);
    const h = readHessian('dsnot', name, requireStat('dsnot', name, stats?.hessian, 'hessian', 'HessianAccumulator.hessian()'), cols);
    const mu = readVector('dsnot', name, 'stats.columnMeans', requireStat('dsnot', name, stats?.columnMeans, 'columnMeans', 'ColumnNormAccumulator.means()'), cols);
    const p = config.powerOfVariance;
    const varPow = new Float64Array(cols).fill(1);
    if (p > 0) {
      const v = readVector('dsnot', name, 'stats.columnVariances', requireStat('dsnot', name, stats?.columnVariances, 'columnVariances', 'ColumnNormAccumulator.variances()'), cols, { nonNegative: true });
      for (let j = 0; j < cols; j++) varPow[j] = Math.pow(v[j]!, p);
    }
    const norms = wandaColumnNorms('dsnot', name, stats, cols);
    const start = mask !== undefined ? readMask('dsnot', name, mask, rows, cols) : startMask(name, weight, stats, config);
    const keep = maskToBooleans(start);
    const initial = keep.slice();
    const h32 = Float32Array.from(h);
    const before = rowErrors(w.data, keep, rows, cols, h32);
    const ctx: RowContext = { w: w.data, keep, initial, cols, h, mu, varPow, norms, pattern, config, sameSign: config.sameSign ?? pattern.kind === 'nm' };
    const d = new Float64Array(cols);
    const metric = new Float64Array(cols);
    // The accepted swaps' exact changes update the errors, so the result costs no second product with H.
    const perRow = before.map((e, r) => Math.max(0, e + swapRow(r, ctx, d, metric) / 2));
    const out = w.data;
    for (let k = 0; k < out.length; k++) if (!keep[k]) out[k] = 0;
    return {
      mask: maskFromBooleans(keep, [rows, cols]),
      weight: tensor(out, [rows, cols]) as Float32Tensor,
      error: { total: perRow.reduce((s, x) => s + x, 0), perRow, initial: before.reduce((s, x) => s + x, 0) },
    };
  },
};

/**
 * DSnoT on one layer: starts from input.mask, or from the `initial` pruner's mask, and returns the improved
 * mask with the dense weights under it (input.weight is the dense weight: a regrown entry gets its value back). Needs stats.hessian, stats.columnMeans and (powerOfVariance > 0)
 * stats.columnVariances; the Wanda order of pruning candidates uses stats.columnNorms or the Hessian diagonal.
 */
export function dsnotPrune(input: PruneRequest<DSnoTConfigInput>): PruneResult {
  return runDefinition(dsnotPruner, input);
}
