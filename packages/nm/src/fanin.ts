// Constant fan-in dynamic sparse training (SRigL: Lasby et al., "Dynamic Sparse Training with Structured
// Sparsity", ICLR 2024). A RigL drop-and-regrow step where every output neuron (row of W[out, in]) keeps
// the same number of active inputs, or, with `nm`, every group of M keeps exactly N (which implies a
// constant fan-in too). Optional dynamic neuron ablation as in the paper.
//
// The ablation rule follows the paper's method and, for its details, the authors' released code (class
// RigLConstFanScheduler, methods _get_neurons_to_ablate / _get_drop_mask / _get_grow_mask, and
// get_fan_in_after_ablation, with the default configuration: min_salient_weights_per_neuron 0.3 taken as
// a fraction of the sparse fan-in, use_sparse_const_fan_in_for_ablation true). In our words:
//   - a weight is salient if RigL's criterion wants it: it is among the layer's `active − ⌊f · active⌋`
//     largest |w| (it survives the drop), or among the layer's ⌊f · active⌋ largest |g| of all entries
//     (a regrowth pick; this set is taken over every entry, active or not, as the released code does);
//   - a neuron (row) with fewer than max(1, ⌊γ_sal · k₀⌋) salient weights is ablated, k₀ = ⌊B / rows⌋
//     the fan-in of the layer's budget B spread over all its rows (not the current, grown fan-in);
//   - never below ⌊B / cols⌋ + 1 neurons: when the neuron at that position of the salient-count ranking
//     is under the threshold, the threshold drops to its count (so ties stay together);
//   - the remaining neurons share the budget: fan-in k' = ⌊B / active neurons⌋, so the layer holds
//     active · k' ≤ B entries (less than one entry per active neuron is lost to the floor);
//   - the decision is taken afresh at every update, so an ablated neuron whose gradients become salient
//     comes back (its entries regrown at the new fan-in).

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
   * SRigL's dynamic neuron ablation (not with `nm`): a neuron (row) stays active only if enough of its
   * entries are salient (see the file comment). Give exactly one of `gammaSal` (γ_sal in (0, 1], the
   * paper's fraction, 0.3 in its experiments, of k₀ = ⌊budget / rows⌋) or `minSalient` (a count, an
   * integer >= 1). `budget` is the layer's allowed number of active entries B (default: the current
   * count); pass the same value at every step, the count before any neuron was ablated, so that the
   * floor in ⌊B / active neurons⌋ cannot shrink it over time. At least `rows`.
   */
  ablation?: { gammaSal?: number; minSalient?: number; budget?: number };
}

export interface ConstantFanInResult {
  mask: Mask;
  /** Fan-in of every active neuron after the step. */
  fanIn: number;
  /** Rows with no active entries (ablated neurons), increasing. */
  ablated: Int32Array;
  /** With `ablation`: each row's number of salient entries. */
  salient?: Int32Array;
  /** With `ablation`: the salient count a neuron needed to stay (after the lower bound on neurons). */
  threshold?: number;
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
 * Without ablation:
 * 1. Drop: of the `active` entries, the ⌊fraction · active⌋ with the lowest |w| are dropped,
 *    layer-wise as in RigL (ties: the higher flat index goes first).
 * 2. Regrow: every active row (or N:M group) is refilled to the fan-in (or N) with the highest-|g| entries
 *    among its entries that are not kept after the drop (ties: lower index). As in RigL and SRigL an entry
 *    dropped in step 1 is eligible, so it can come straight back; `dropped` and `grown` report net changes.
 *    Rows with no active entry stay empty.
 *
 * With ablation (row mode), before the drop: count each row's salient entries, ablate the rows below the
 * threshold and set the fan-in to ⌊budget / active rows⌋ (file comment). The drop then keeps the
 * `active − ⌊fraction · active⌋` largest |w| among the active entries of the rows that stay (all of
 * them when there are fewer), a row above the new fan-in keeps its largest |w|, and step 2 refills the
 * rows that stay, a revived row from nothing. Ablated rows end with no active entry.
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
  if (ablation) {
    const { gammaSal, minSalient } = ablation;
    if ((gammaSal === undefined) === (minSalient === undefined)) throw new ArgumentError(`${where}: ablation takes exactly one of gammaSal and minSalient`);
    if (gammaSal !== undefined && !(typeof gammaSal === 'number' && gammaSal > 0 && gammaSal <= 1)) throw new ArgumentError(`${where}: ablation.gammaSal must be a number in (0, 1], got ${String(gammaSal)}`);
    if (minSalient !== undefined && !(Number.isSafeInteger(minSalient) && minSalient >= 1)) throw new ArgumentError(`${where}: ablation.minSalient must be an integer >= 1, got ${String(minSalient)}`);
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
  const budget = ablation?.budget ?? active;
  if (ablation && !(Number.isSafeInteger(budget) && budget >= rows && budget <= size)) {
    throw new ArgumentError(`${where}: ablation.budget must be an integer in [${rows}, ${size}] (rows to rows · cols), got ${String(ablation.budget ?? `the current count ${active}`)}`);
  }
  const absW = (i: number) => Math.abs(w.data[i]!);
  const absG = (i: number) => Math.abs(g.data[i]!);
  // Layer-wise drop: keep the (active - nPrune) largest |w| among active entries (topKMask: lower index wins ties).
  const nPrune = Math.floor(fraction * active);
  const dropScores = new Float64Array(size);
  for (let i = 0; i < size; i++) dropScores[i] = isKept(mask, i) ? absW(i) : -Infinity;
  const survivors = topKMask(tensor(dropScores, [rows, cols]), active - nPrune);
  const kept = new Uint8Array(size);
  for (let i = 0; i < size; i++) if (isKept(survivors, i)) kept[i] = 1;

  const ablatedRow = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) if (rowCount[r] === 0) ablatedRow[r] = 1;
  let newFanIn = fanIn;
  let salientPerRow: Int32Array | undefined;
  let threshold: number | undefined;
  if (ablation) {
    // Salient: survives the drop, or among the layer's nPrune largest |g| over all entries.
    const regrowPicks = topKMask(tensor(Float64Array.from(g.data, Math.abs), [rows, cols]), nPrune);
    salientPerRow = new Int32Array(rows);
    for (let i = 0; i < size; i++) if (kept[i] || isKept(regrowPicks, i)) salientPerRow[Math.floor(i / cols)]!++;
    const k0 = Math.floor(budget / rows);
    threshold = ablation.minSalient ?? Math.max(1, Math.floor(ablation.gammaSal! * k0));
    // At least ⌊B / cols⌋ + 1 neurons stay (fewer could not hold B below the dense fan-in): the count at
    // that rank of the descending ranking caps the threshold.
    const floorNeurons = Math.floor(budget / cols);
    if (floorNeurons < rows) {
      const ranked = Array.from(salientPerRow).sort((a, b) => b - a);
      threshold = Math.min(threshold, ranked[floorNeurons]!);
    } else threshold = 0; // B = rows · cols: a dense layer, nothing can go
    let on = 0;
    for (let r = 0; r < rows; r++) {
      ablatedRow[r] = salientPerRow[r]! < threshold ? 1 : 0;
      on += 1 - ablatedRow[r]!;
    }
    newFanIn = Math.min(cols, Math.floor(budget / on));
    // The drop again, among the rows that stay: their active - nPrune largest |w| (all when fewer).
    const stayScores = new Float64Array(size);
    let stayActive = 0;
    for (let i = 0; i < size; i++) {
      const on_ = isKept(mask, i) && !ablatedRow[Math.floor(i / cols)];
      stayScores[i] = on_ ? absW(i) : -Infinity;
      stayActive += on_ ? 1 : 0;
    }
    const stay = topKMask(tensor(stayScores, [rows, cols]), Math.min(active - nPrune, stayActive));
    for (let i = 0; i < size; i++) kept[i] = isKept(stay, i) ? 1 : 0;
    // A row above the new fan-in (neurons came back, so it shrank) keeps its largest |w|.
    for (let r = 0; r < rows; r++) {
      if (ablatedRow[r]) continue;
      const rowIdx = Array.from({ length: cols }, (_, j) => r * cols + j).filter((i) => kept[i]);
      if (rowIdx.length > newFanIn) for (const i of byScoreDesc(rowIdx, absW).slice(newFanIn)) kept[i] = 0;
    }
  }

  // Regrow each unit (row, or N:M group) up to its quota by |g| among its entries not kept.
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
  return {
    mask: { shape: [rows, cols], bits },
    fanIn: newFanIn,
    ablated,
    ...(salientPerRow ? { salient: salientPerRow, threshold: threshold! } : {}),
    dropped: Int32Array.from(dropped),
    grown: Int32Array.from(grown),
  };
}
