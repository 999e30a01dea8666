// Constant fan-in dynamic sparse training (SRigL: Lasby et al., "Dynamic Sparse Training with Structured
// Sparsity", ICLR 2024). A RigL drop-and-regrow step where every output neuron (row of W[out, in]) keeps
// the same number of active inputs, or, with `nm`, every group of M keeps exactly N (which implies a
// constant fan-in too). Optional dynamic neuron ablation as in the paper.
import { isKept, topKMask, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Tensor } from '@sparse/tensor';
import { checkNM, readMatrix } from './internal.js';
import { isNM } from './mask.js';

export interface ConstantFanInOptions {
  /** Current weights: the active entries with the lowest |w| are dropped. */
  weights: Tensor;
  /** Dense gradient (or accumulated gradient): entries are regrown by the highest |g|. */
  grads: Tensor;
  /** Fraction of the active entries dropped layer-wise, in [0, 1] (e.g. from dropFractionAt of @sparse/masks). */
  fraction: number;
  /** Keep the mask N:M along rows: dropped entries are regrown inside their own group of M. */
  nm?: { n: number; m: number };
  /**
   * Dynamic neuron ablation: a neuron (row) stays active only if at least `minSalient` of its entries are
   * salient (kept after the drop, or among the layer's top-|g| regrowth candidates). `minSalient` < 1 is a
   * fraction of the current fan-in, >= 1 a count. The active-entry budget is then spread over the
   * remaining neurons (fan-in = floor(budget / active neurons), at most the row length). Not with `nm`.
   * `budget` is the layer's allowed number of active entries (default: the current count); pass the
   * same value every step so the floor rounding cannot shrink it over time.
   */
  ablation?: { minSalient: number; budget?: number };
}

export interface ConstantFanInResult {
  mask: Mask;
  /** Fan-in of every active neuron after the step. */
  fanIn: number;
  /** Rows with no active entries (ablated neurons), increasing. */
  ablated: Int32Array;
  /** Flat indices active before and pruned now, increasing. */
  dropped: Int32Array;
  /** Flat indices pruned before and active now, increasing (initialize these weights, e.g. to 0). */
  grown: Int32Array;
}

/** Sorts indices by score, highest first; ties to the lower index. */
function byScoreDesc(idx: number[], score: (i: number) => number): number[] {
  return idx.sort((a, b) => score(b) - score(a) || a - b);
}

/**
 * One SRigL drop-and-regrow step.
 *
 * 1. Drop: of the `active` entries, the floor(fraction * active) with the lowest |w| are dropped,
 *    layer-wise as in RigL (ties: the higher flat index goes first).
 * 2. Ablation (optional, row mode): neurons with fewer than `minSalient` salient entries are switched off,
 *    keeping at least ceil(budget / cols) neurons; the new fan-in is floor(budget / active neurons).
 *    A neuron above the new fan-in after the drop keeps its largest |w|.
 * 3. Regrow: every active row (or N:M group) is refilled to the fan-in (or N) with the highest-|g| entries
 *    among its entries that are not kept after the drop (ties: lower index). As in RigL and SRigL an entry
 *    dropped in step 1 is eligible, so it can come straight back; `dropped` and `grown` report net changes.
 */
export function constantFanInRegrow(mask: Mask, opts: ConstantFanInOptions): ConstantFanInResult {
  const where = 'constantFanInRegrow';
  validateMask(mask, where);
  if (mask.shape.length !== 2) throw new ShapeError(`${where}: expected a matrix mask, got shape [${mask.shape.join(', ')}]`);
  const [rows, cols] = mask.shape as [number, number];
  const { fraction, nm, ablation } = opts ?? ({} as ConstantFanInOptions);
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) throw new ArgumentError(`${where}: fraction must be a number in [0, 1], got ${String(fraction)}`);
  const w = readMatrix(opts.weights, `${where} (weights)`);
  const g = readMatrix(opts.grads, `${where} (grads)`);
  for (const [name, t] of [['weights', w], ['grads', g]] as const) {
    if (t.rows !== rows || t.cols !== cols) throw new ShapeError(`${where}: ${name} shape [${t.rows}, ${t.cols}] differs from mask shape [${rows}, ${cols}]`);
    const bad = t.data.findIndex(Number.isNaN);
    if (bad >= 0) throw new ArgumentError(`${where}: ${name} has NaN at flat index ${bad}`);
  }
  if (nm) {
    checkNM(where, nm);
    if (cols % nm.m !== 0) throw new ShapeError(`${where}: ${cols} columns are not a multiple of m = ${nm.m}`);
    if (ablation) throw new ArgumentError(`${where}: neuron ablation is not defined together with nm`);
    const check = isNM(mask, { n: nm.n, m: nm.m, exact: true });
    if (!check.valid) throw new ArgumentError(`${where}: mask is not exactly ${nm.n}:${nm.m}: row ${check.violation!.line}, group at column ${check.violation!.start} has ${check.violation!.count}`);
  }
  if (ablation && !(typeof ablation.minSalient === 'number' && ablation.minSalient > 0 && Number.isFinite(ablation.minSalient))) {
    throw new ArgumentError(`${where}: ablation.minSalient must be a positive number, got ${String(ablation?.minSalient)}`);
  }
  if (ablation?.budget !== undefined && !(Number.isSafeInteger(ablation.budget) && ablation.budget >= 0 && ablation.budget <= rows * cols)) {
    throw new ArgumentError(`${where}: ablation.budget must be an integer in [0, ${rows * cols}], got ${String(ablation.budget)}`);
  }
  // Fan-in of the active rows; rows with nothing active count as ablated.
  const size = rows * cols;
  const rowCount = new Int32Array(rows);
  let active = 0;
  for (let i = 0; i < size; i++) if (isKept(mask, i)) [rowCount[Math.floor(i / cols)], active] = [rowCount[Math.floor(i / cols)]! + 1, active + 1];
  let fanIn = 0;
  for (let r = 0; r < rows; r++) {
    if (rowCount[r] === 0) continue;
    if (fanIn === 0) fanIn = rowCount[r]!;
    else if (rowCount[r] !== fanIn) throw new ArgumentError(`${where}: mask fan-in is not constant: row ${r} has ${rowCount[r]}, an earlier row ${fanIn}`);
  }
  const absW = (i: number) => Math.abs(w.data[i]!);
  const absG = (i: number) => Math.abs(g.data[i]!);
  // 1. Layer-wise drop: keep the (active - nPrune) largest |w| among active entries (topKMask: lower index wins ties).
  const nPrune = Math.floor(fraction * active);
  const dropScores = new Float64Array(size);
  for (let i = 0; i < size; i++) dropScores[i] = isKept(mask, i) ? absW(i) : -Infinity;
  const survivors = topKMask(tensor(dropScores, [rows, cols]), active - nPrune);
  const kept = new Uint8Array(size);
  for (let i = 0; i < size; i++) if (isKept(survivors, i)) kept[i] = 1;

  // 2. Neuron ablation.
  const ablatedRow = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) if (rowCount[r] === 0) ablatedRow[r] = 1;
  let newFanIn = fanIn;
  if (ablation && active > 0) {
    // Salient: kept after the drop, or among the nPrune highest-|g| entries not kept (RigL's unstructured regrowth).
    const salient = Uint8Array.from(kept);
    const candidates = byScoreDesc([...Array(size).keys()].filter((i) => !kept[i]), absG).slice(0, nPrune);
    for (const i of candidates) salient[i] = 1;
    const counts = Array.from({ length: rows }, (_, r) => {
      let c = 0;
      for (let j = 0; j < cols; j++) c += salient[r * cols + j]!;
      return c;
    });
    const threshold = ablation.minSalient >= 1 ? ablation.minSalient : Math.max(1, Math.floor(ablation.minSalient * fanIn));
    const budget = ablation.budget ?? active;
    const minNeurons = Math.max(1, Math.ceil(budget / cols));
    const order = byScoreDesc([...Array(rows).keys()], (r) => counts[r]!);
    ablatedRow.fill(0);
    let on = 0;
    for (const r of order) {
      if (on < minNeurons || counts[r]! >= threshold) on++;
      else ablatedRow[r] = 1;
    }
    newFanIn = Math.min(cols, Math.floor(budget / on));
    for (let r = 0; r < rows; r++) {
      const rowIdx = Array.from({ length: cols }, (_, j) => r * cols + j).filter((i) => kept[i]);
      // Ablated rows lose everything; an active row above the new fan-in keeps its largest |w|.
      const keepN = ablatedRow[r] ? 0 : newFanIn;
      for (const i of byScoreDesc(rowIdx, absW).slice(keepN)) kept[i] = 0;
    }
  }

  // 3. Regrow each unit (row, or N:M group) up to its quota by |g| among its entries not kept.
  const next = Uint8Array.from(kept);
  const unitSize = nm ? nm.m : cols;
  const quota = nm ? nm.n : newFanIn;
  for (let u = 0; u < size / unitSize; u++) {
    if (!nm && ablatedRow[u]) continue;
    const idx = Array.from({ length: unitSize }, (_, q) => u * unitSize + q);
    const have = idx.reduce((a, i) => a + kept[i]!, 0);
    for (const i of byScoreDesc(idx.filter((i) => !kept[i]), absG).slice(0, quota - have)) next[i] = 1;
  }
  const bits = new Uint32Array(Math.ceil(size / 32));
  const dropped: number[] = [];
  const grown: number[] = [];
  for (let i = 0; i < size; i++) {
    if (next[i]) bits[i >>> 5]! |= 1 << (i & 31);
    const was = isKept(mask, i);
    if (was && !next[i]) dropped.push(i);
    if (!was && next[i]) grown.push(i);
  }
  const ablated = Int32Array.from([...Array(rows).keys()].filter((r) => ablatedRow[r]));
  return { mask: { shape: [rows, cols], bits }, fanIn: newFanIn, ablated, dropped: Int32Array.from(dropped), grown: Int32Array.from(grown) };
}
