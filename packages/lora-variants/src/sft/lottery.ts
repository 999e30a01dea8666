// LT-SFT's mask selection (Ansell et al. 2022, "Composable Sparse Fine-Tuning for Cross-Lingual
// Transfer"): after a full fine-tune θ0 → θ1, the entries that train in the second, masked phase are
// the K with the largest |θ1 − θ0|; the second phase starts again from θ0 (rewound), so its delta
// starts at zero. The paper takes one K over all fine-tuned parameters ('global'); 'layer' gives each
// weight its own round(density · size), as the random-support SFT does. Ties go to the earlier weight
// (in the order the deltas are given) and then to the lower flat index, so the choice is deterministic.
import { ArgumentError } from '@sparse/tensor';
import { validateSparseDelta, type SparseDelta } from './delta.js';
import { topKByKey } from './reselect.js';

export const LOTTERY_BUDGETS = ['global', 'layer'] as const;
export type LotteryBudget = (typeof LOTTERY_BUDGETS)[number];

export interface LotteryTicketOptions {
  /** K as a fraction of the entries of the weights (all of them: 'global'; each one: 'layer'). */
  density: number;
  /** One K over every weight (the paper) or one per weight. Default 'global'. */
  budget?: LotteryBudget;
}

/**
 * The lottery ticket of a full fine-tune: per weight, the sorted flat indices (within each delta's
 * support, i.e. among the entries the full phase could move) of the entries with the largest |Δ|.
 * 'global': the round(density · Σ size) largest |Δ| over all weights together; 'layer': each weight's
 * round(density · size) largest, at least 1. A weight never gets more entries than its delta has.
 */
export function lotteryTicketSupports(deltas: Readonly<Record<string, SparseDelta>>, opts: LotteryTicketOptions): Record<string, Int32Array> {
  const where = 'lotteryTicketSupports';
  if (!(opts.density > 0 && opts.density <= 1)) throw new ArgumentError(`${where}: density must be in (0, 1], got ${String(opts.density)}`);
  const budget = opts.budget ?? 'global';
  if (!LOTTERY_BUDGETS.includes(budget)) throw new ArgumentError(`${where}: budget must be 'global' or 'layer', got '${String(budget)}'`);
  const names = Object.keys(deltas);
  for (const n of names) validateSparseDelta(deltas[n]!, `${where}: deltas['${n}']`);
  const out: Record<string, Int32Array> = {};
  if (budget === 'layer') {
    for (const n of names) {
      const d = deltas[n]!;
      const want = Math.min(d.indices.length, Math.max(1, Math.round(opts.density * d.shape[0] * d.shape[1])));
      const pos = topKByKey(d.indices.length, want, (p) => Math.abs(d.values[p]!));
      out[n] = Int32Array.from(pos, (p) => d.indices[p]!);
    }
    return out;
  }
  // global: one ranking over the concatenated supports (position = offset of the weight + position in it)
  const offsets: number[] = [];
  let total = 0;
  let size = 0;
  for (const n of names) {
    offsets.push(total);
    total += deltas[n]!.indices.length;
    size += deltas[n]!.shape[0] * deltas[n]!.shape[1];
  }
  const want = Math.min(total, Math.max(1, Math.round(opts.density * size)));
  const layerOf = (q: number): number => {
    let lo = 0;
    let hi = offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid]! <= q) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const chosen = topKByKey(total, want, (q) => {
    const l = layerOf(q);
    return Math.abs(deltas[names[l]!]!.values[q - offsets[l]!]!);
  });
  const lists = names.map(() => [] as number[]);
  for (const q of chosen) {
    const l = layerOf(q);
    lists[l]!.push(deltas[names[l]!]!.indices[q - offsets[l]!]!);
  }
  names.forEach((n, l) => (out[n] = Int32Array.from(lists[l]!)));
  return out;
}
