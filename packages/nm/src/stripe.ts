// Stripe-group channel permutation search (Pool & Yu, "Channel Permutations for N:M Sparsity", NeurIPS
// 2021; NVIDIA ASP). A stripe is one group of M columns. For every set of `stripesPerGroup` stripes, all ways
// to split their columns into that many groups of M are scored exactly (order inside a group and the order
// of the groups do not matter to the N:M mask); the best repartition over all stripe sets is applied, and
// rounds repeat until none improves. The search starts from the greedy column-swap result
// (searchChannelPermutation), which is also the fallback when the exhaustive step is too large.
import { ArgumentError, ShapeError, type Tensor } from '@sparse/tensor';
import { checkNM, keptSum, readMatrix } from './internal.js';
import { searchChannelPermutation, type PermutationSearchResult } from './permutation.js';

export interface StripeGroupSearchOptions {
  n: number;
  m: number;
  /** 'magnitude' (default) scores entries by |x|; 'value' takes them as given. */
  rank?: 'magnitude' | 'value';
  /** Stripes (groups of M columns) repartitioned together (default 2). */
  stripesPerGroup?: number;
  /** Largest number of partitions of one stripe set to enumerate; above it only the swap search runs (default 20000). */
  maxPartitions?: number;
  /** Most repartitions applied (default 4 * columns). */
  maxRounds?: number;
}

export interface StripeGroupSearchResult extends PermutationSearchResult {
  /** Kept score of the greedy swap search alone (the starting point). */
  keptGreedy: number;
  /** 'stripe-group', or 'swap' when the exhaustive step was over maxPartitions. */
  method: 'stripe-group' | 'swap';
  /** Stripe-group repartitions applied. */
  rounds: number;
}

/** Number of ways to split k*m items into k unordered groups of m: (km)! / (m!^k k!). */
export function stripePartitionCount(k: number, m: number): number {
  let c = 1;
  // Product over groups of C(remaining - 1, m - 1): the lowest remaining item anchors each group.
  for (let left = k * m; left > 0; left -= m) c *= binom(left - 1, m - 1);
  return c;
}

function binom(a: number, b: number): number {
  let r = 1;
  for (let i = 1; i <= b; i++) r = (r * (a - b + i)) / i;
  return Math.round(r);
}

/** All splits of positions 0..k*m-1 into k groups of m, each as k arrays (lowest free position anchors a group). */
function partitions(k: number, m: number): number[][][] {
  const out: number[][][] = [];
  const used = new Uint8Array(k * m);
  const groups: number[][] = [];
  const rec = () => {
    const anchor = used.indexOf(0);
    if (anchor < 0) {
      out.push(groups.map((g) => [...g]));
      return;
    }
    used[anchor] = 1;
    const group = [anchor];
    const pick = (from: number) => {
      if (group.length === m) {
        groups.push([...group]);
        rec();
        groups.pop();
        return;
      }
      for (let p = from; p < k * m; p++) {
        if (used[p]) continue;
        used[p] = 1;
        group.push(p);
        pick(p + 1);
        group.pop();
        used[p] = 0;
      }
    };
    pick(anchor + 1);
    used[anchor] = 0;
  };
  rec();
  return out;
}

/** Sum over rows of the kept scores (N:M selection) among the given original columns. */
function keptOf(s: Float64Array, rows: number, cols: number, columns: readonly number[], n: number, vals: Float64Array, scratch: Int32Array): number {
  let total = 0;
  const m = columns.length;
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < m; q++) vals[q] = s[r * cols + columns[q]!]!;
    total += keptSum(vals, n, m, scratch);
  }
  return total;
}

/** Channel permutation by exhaustive stripe-group repartitioning, refined from the greedy swap search. */
export function searchStripeGroupPermutation(scores: Tensor, opts: StripeGroupSearchOptions): StripeGroupSearchResult {
  const where = 'searchStripeGroupPermutation';
  checkNM(where, opts);
  const { n, m } = opts;
  const k = opts.stripesPerGroup ?? 2;
  if (!Number.isSafeInteger(k) || k < 2) throw new ArgumentError(`${where}: stripesPerGroup must be an integer >= 2, got ${String(opts.stripesPerGroup)}`);
  const maxPartitions = opts.maxPartitions ?? 20000;
  if (!Number.isSafeInteger(maxPartitions) || maxPartitions < 1) throw new ArgumentError(`${where}: maxPartitions must be a positive integer, got ${String(opts.maxPartitions)}`);
  const { rows, cols, data } = readMatrix(scores, where);
  if (cols % m !== 0) throw new ShapeError(`${where}: ${cols} columns are not a multiple of m = ${m}`);
  const maxRounds = opts.maxRounds ?? 4 * cols;
  if (!Number.isSafeInteger(maxRounds) || maxRounds < 0) throw new ArgumentError(`${where}: maxRounds must be a non-negative integer, got ${String(opts.maxRounds)}`);
  const greedy = searchChannelPermutation(scores, { n, m, rank: opts.rank });
  const stripes = cols / m;
  // With fewer stripes than asked, repartition all of them together.
  const kk = Math.min(k, stripes);
  if (kk < 2) return { ...greedy, keptGreedy: greedy.keptAfter, method: 'stripe-group', rounds: 0 };
  if (stripePartitionCount(kk, m) > maxPartitions) return { ...greedy, keptGreedy: greedy.keptAfter, method: 'swap', rounds: 0 };
  const s = opts.rank === 'value' ? data : data.map(Math.abs);
  const perm = Int32Array.from(greedy.permutation);
  const splits = partitions(kk, m);
  const vals = new Float64Array(m);
  const scratch = new Int32Array(n);
  const stripeKept = (g: number) => keptOf(s, rows, cols, Array.from(perm.subarray(g * m, (g + 1) * m)), n, vals, scratch);
  const kept = Float64Array.from({ length: stripes }, (_, g) => stripeKept(g));
  // Every set of kk stripes, as increasing index tuples.
  const sets: number[][] = [];
  const tuple: number[] = [];
  const choose = (from: number) => {
    if (tuple.length === kk) return void sets.push([...tuple]);
    for (let g = from; g < stripes; g++) [tuple.push(g), choose(g + 1), tuple.pop()];
  };
  choose(0);
  // Best repartition of one stripe set (columns as original indices), cached until one of its stripes changes.
  interface Move {
    gain: number;
    groups: number[][];
    parts: number[];
  }
  const bestMove = (set: number[]): Move => {
    const columns = set.flatMap((g) => Array.from(perm.subarray(g * m, (g + 1) * m)));
    const current = set.reduce((a, g) => a + kept[g]!, 0);
    let best: Move = { gain: 0, groups: [], parts: [] };
    for (const split of splits) {
      const groups = split.map((grp) => grp.map((p) => columns[p]!));
      const parts = groups.map((grp) => keptOf(s, rows, cols, grp, n, vals, scratch));
      const gain = parts.reduce((a, b) => a + b, 0) - current;
      if (gain > best.gain) best = { gain, groups, parts };
    }
    return best;
  };
  const moves = sets.map(bestMove);
  const tolerance = 1e-12 * Math.max(1, greedy.keptAfter);
  let rounds = 0;
  while (rounds < maxRounds) {
    let pick = -1;
    for (let i = 0; i < sets.length; i++) if (moves[i]!.gain > tolerance && (pick < 0 || moves[i]!.gain > moves[pick]!.gain)) pick = i;
    // Gains at rounding level are ignored so the search cannot cycle on ties.
    if (pick < 0) break;
    const changed = sets[pick]!;
    changed.forEach((g, i) => {
      perm.set(moves[pick]!.groups[i]!, g * m);
      kept[g] = moves[pick]!.parts[i]!;
    });
    for (let i = 0; i < sets.length; i++) if (sets[i]!.some((g) => changed.includes(g))) moves[i] = bestMove(sets[i]!);
    rounds++;
  }
  let keptAfter = 0;
  for (let g = 0; g < stripes; g++) keptAfter += stripeKept(g);
  return { permutation: perm, keptBefore: greedy.keptBefore, keptAfter, swaps: greedy.swaps, evaluations: greedy.evaluations, stopped: greedy.stopped, keptGreedy: greedy.keptAfter, method: 'stripe-group', rounds };
}
