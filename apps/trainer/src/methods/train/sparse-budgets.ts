// How many entries each targeted layer keeps at a sparsity, and which ones by |W|, for the train methods
// that prune while they train (gmp; usable by dynamic sparse training too). A layer's current mask is
// respected: its pruned entries are never chosen again, so masks only shrink.

import { and, applyMask, count, isKept, keepCount, layerBudgets, topKMask, type Mask } from '@sparse/masks';
import { nmMask } from '@sparse/nm';
import { globalMagnitudeMasks } from '@sparse/pruners';
import { tensor, type Float32Tensor } from '@sparse/tensor';

/** 'layer': each layer at the sparsity; 'global': one |W| ranking; 'uniform' / 'er' / 'erk': layerBudgets' methods. */
export type SparseBudget = 'layer' | 'global' | 'uniform' | 'er' | 'erk';

export interface BudgetLayer {
  name: string;
  /** The weight, [out, in]. */
  weight: Float32Tensor;
  /** The layer's current mask, if it is pruned already. */
  mask?: Mask | undefined;
}

/**
 * Entries each layer keeps at `sparsity` (the pruned fraction) under a per-layer budget: 'layer' gives each
 * keepCount(size, sparsity) = round((1 − sparsity) · size); 'uniform', 'er', 'erk' the `keep` of
 * layerBudgets(layers, sparsity, { method, erkPowerScale }) (kept counts summing to keepCount(total, sparsity)).
 */
export function keepCounts(layers: readonly { name: string; shape: readonly number[] }[], sparsity: number, budget: Exclude<SparseBudget, 'global'>, erkPowerScale?: number): number[] {
  if (budget === 'layer') return layers.map((l) => keepCount(l.shape.reduce((a, b) => a * b, 1), sparsity));
  return layerBudgets(
    layers.map((l) => ({ name: l.name, shape: [...l.shape] })),
    sparsity,
    { method: budget, ...(erkPowerScale !== undefined ? { erkPowerScale } : {}) },
  ).map((b) => b.keep);
}

/**
 * The magnitude masks of `layers` at `sparsity` under `budget`: per layer, the largest |W| among the entries
 * its current mask keeps, at most min(keepCounts, kept now) of them; 'global', globalMagnitudeMasks of
 * @sparse/pruners over the masked weights (pruned entries are 0, the lowest |W|), intersected with the
 * current masks (a no-op unless kept weights are exactly 0).
 */
export function magnitudeMasksByBudget(layers: readonly BudgetLayer[], sparsity: number, budget: SparseBudget, erkPowerScale?: number): Map<string, Mask> {
  const masked = layers.map((l) => (l.mask ? (applyMask(l.mask, l.weight) as Float32Tensor) : l.weight));
  if (budget === 'global') {
    const g = globalMagnitudeMasks(Object.fromEntries(layers.map((l, i) => [l.name, masked[i]!])), { sparsity });
    return new Map(layers.map((l) => [l.name, l.mask ? and(g[l.name]!, l.mask) : g[l.name]!]));
  }
  const keeps = keepCounts(
    layers.map((l) => ({ name: l.name, shape: l.weight.shape })),
    sparsity,
    budget,
    erkPowerScale,
  );
  return new Map(
    layers.map((l, i) => {
      const kept = l.mask ? count(l.mask) : l.weight.data.length;
      return [l.name, topKMask(magnitudeWithin(l), Math.min(keeps[i]!, kept))];
    }),
  );
}

/**
 * The k:m magnitude mask of one layer: in every group of m consecutive inputs of a row, the k largest |W|
 * among the entries its current mask keeps (k < m). A group that keeps fewer than k now (a mask that was not
 * k':m with k' >= k) keeps what it has: the result is intersected with the current mask.
 */
export function nmMagnitudeMaskWithin(layer: BudgetLayer, k: number, m: number): Mask {
  const next = nmMask(magnitudeWithin(layer), { n: k, m, rank: 'value' });
  return layer.mask ? and(next, layer.mask) : next;
}

/** |W| of a layer with its pruned entries at −1, below every |W|: a top-k within the current mask never picks them while k <= kept. */
function magnitudeWithin(layer: BudgetLayer): Float32Tensor {
  const scores = Float32Array.from(layer.weight.data, (x) => Math.abs(x));
  if (layer.mask) for (let q = 0; q < scores.length; q++) if (!isKept(layer.mask, q)) scores[q] = -1;
  return tensor(scores, [...layer.weight.shape]);
}
