// Layer-wise budgets: how many entries each layer keeps for a global sparsity (uniform, ER, ERK), and
// IST's importance-based sampling of which layers to update.

import { ArgumentError, Random, sizeOf } from '@sparse/tensor';
import { checkCount, checkShapeArg, checkSparsity } from './internal.js';
import { keepCount } from './select.js';

export interface LayerSpec {
  /** The weight's shape; ER uses its last two dimensions (TF/tfjs [..., in, out]), ERK all of them. */
  shape: readonly number[];
  name?: string;
  /** Keep this layer dense (RigL's custom sparsity 0, e.g. a first or last layer). Counts toward the budget. */
  dense?: boolean;
}

export interface LayerBudget {
  name?: string;
  size: number;
  /** Entries this layer keeps (an integer); the keeps of all layers sum to exactly keepCount(total, s). */
  keep: number;
  /** keep / size (1 for an empty layer). */
  density: number;
  sparsity: number;
}

export type BudgetMethod = 'uniform' | 'er' | 'erk';

export interface LayerBudgetOptions {
  /** 'uniform' (default), 'er' (Erdős–Rényi) or 'erk' (Erdős–Rényi-Kernel). */
  method?: BudgetMethod;
  /** ERK's exponent on (sum of dims / product of dims), RigL's erk_power_scale (default 1; < 1 is softer). */
  erkPowerScale?: number;
}

/**
 * Splits a global sparsity over layers so that the kept counts sum to exactly K = keepCount(N, s), N the
 * total number of entries.
 *
 * - 'uniform': every non-dense layer gets the same density (K - dense entries) / (non-dense entries).
 * - 'er' / 'erk' (Evci et al. 2020, as in RigL's get_sparsities_erdos_renyi): layer i gets density
 *   eps * p_i with p_i = (n_in + n_out) / (n_in * n_out) over its last two dims (ER) or
 *   (sum(shape) / prod(shape))^erkPowerScale (ERK); eps solves sum_i eps p_i n_i = K - dense entries.
 *   While some eps p_i exceeds 1, the layers with the largest p_i are made dense and eps is solved again.
 *
 * Real-valued quotas are then rounded to integers by largest remainder (ties to the earlier layer), never
 * above a layer's size, so the global count is met exactly. Unlike RigL, layers marked `dense` are counted
 * in the budget (the other layers become sparser to compensate); an ArgumentError is thrown when the dense
 * layers alone exceed K.
 */
export function layerBudgets(layers: readonly LayerSpec[], sparsity: number, opts: LayerBudgetOptions = {}): LayerBudget[] {
  const where = 'layerBudgets';
  checkSparsity(where, 'sparsity', sparsity);
  if (!Array.isArray(layers) || layers.length === 0) throw new ArgumentError(`${where}: layers must be a non-empty array`);
  const method = opts.method ?? 'uniform';
  if (method !== 'uniform' && method !== 'er' && method !== 'erk') {
    throw new ArgumentError(`${where}: method must be 'uniform', 'er' or 'erk', got ${JSON.stringify(method)}`);
  }
  const power = opts.erkPowerScale ?? 1;
  if (typeof power !== 'number' || !Number.isFinite(power) || power < 0) {
    throw new ArgumentError(`${where}: erkPowerScale must be a finite number >= 0, got ${String(power)}`);
  }
  const sizes = layers.map((l, i) => sizeOf(checkShapeArg(where, `layers[${i}].shape`, l?.shape)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const K = keepCount(total, sparsity, where);
  const dense = layers.map((l, i) => l.dense === true || sizes[i] === 0);
  const raw = layers.map((l, i) => {
    if (method === 'uniform' || sizes[i] === 0) return 1;
    if (method === 'er') {
      if (l.shape.length < 2) throw new ArgumentError(`${where}: method 'er' needs layers of rank >= 2; layers[${i}] has shape [${l.shape.join(', ')}]`);
      const nIn = l.shape[l.shape.length - 2]!;
      const nOut = l.shape[l.shape.length - 1]!;
      return (nIn + nOut) / (nIn * nOut);
    }
    return (l.shape.reduce((a: number, b: number) => a + b, 0) / sizes[i]!) ** power;
  });
  let quotas: number[];
  for (;;) {
    const denseCount = sizes.reduce((a, n, i) => a + (dense[i] ? n : 0), 0);
    const rhs = K - denseCount;
    if (rhs < 0) {
      throw new ArgumentError(`${where}: dense layers keep ${denseCount} entries, more than the ${K} that sparsity ${sparsity} allows in total`);
    }
    let divisor = 0;
    for (let i = 0; i < layers.length; i++) if (!dense[i]) divisor += raw[i]! * sizes[i]!;
    if (divisor === 0) {
      // Every layer is dense: only possible when the dense entries are exactly the budget.
      if (rhs !== 0) throw new ArgumentError(`${where}: every layer is dense but the budget is ${K} of ${total}`);
      quotas = sizes.slice();
      break;
    }
    const eps = rhs / divisor;
    let maxProb = -Infinity;
    for (let i = 0; i < layers.length; i++) if (!dense[i]) maxProb = Math.max(maxProb, raw[i]!);
    if (maxProb * eps > 1) {
      // RigL's rule: the layers with the largest raw probability become dense, then eps is solved again.
      for (let i = 0; i < layers.length; i++) if (!dense[i] && raw[i] === maxProb) dense[i] = true;
      continue;
    }
    quotas = sizes.map((n, i) => (dense[i] ? n : Math.min(n, eps * raw[i]! * n)));
    break;
  }
  const keep = roundQuotas(quotas, sizes, K);
  return layers.map((l, i) => {
    const n = sizes[i]!;
    const density = n === 0 ? 1 : keep[i]! / n;
    return { ...(l.name !== undefined ? { name: l.name } : {}), size: n, keep: keep[i]!, density, sparsity: 1 - density };
  });
}

/**
 * Integers k_i in [0, n_i] summing to exactly K, each floor or ceil of its real quota q_i (largest-remainder
 * rounding; ties to the lower index). Float error in the quotas is absorbed by the same rule.
 */
function roundQuotas(quotas: readonly number[], sizes: readonly number[], K: number): number[] {
  const keep = quotas.map((q, i) => Math.max(0, Math.min(sizes[i]!, Math.floor(q + 1e-9 * Math.max(1, q)))));
  let rest = K - keep.reduce((a, b) => a + b, 0);
  const frac = quotas.map((q, i) => q - keep[i]!);
  const order = [...quotas.keys()];
  if (rest > 0) order.sort((a, b) => frac[b]! - frac[a]! || a - b);
  else order.sort((a, b) => frac[a]! - frac[b]! || a - b);
  // Repeated passes only matter in degenerate float cases; each pass moves every layer by at most one.
  while (rest !== 0) {
    let moved = false;
    for (const i of order) {
      if (rest > 0 && keep[i]! < sizes[i]!) {
        keep[i]!++;
        rest--;
        moved = true;
      } else if (rest < 0 && keep[i]! > 0) {
        keep[i]!--;
        rest++;
        moved = true;
      }
      if (rest === 0) break;
    }
    if (!moved) throw new ArgumentError(`layerBudgets: cannot place ${K} entries in layers of sizes [${sizes.join(', ')}]`);
  }
  return keep;
}

// ---- IST: importance-aware sampling of the layers to update ----

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

export interface SampleLayersOptions {
  /**
   * How importance becomes a sampling weight: 'sigmoid' (default, IST's choice: w_i = sigmoid(importance_i))
   * or 'proportional' (w_i = importance_i, which must then be >= 0).
   */
  weighting?: 'sigmoid' | 'proportional';
}

/**
 * Samples k distinct layer indices, each draw proportional to the remaining layers' weights (successive
 * sampling without replacement, like torch.multinomial(w, k)), using the seeded rng. IST (Yao et al. 2024)
 * updates the sampled layers for the next interval; to pick layers to *suppress*, pass the negated
 * importance. Returns the indices sorted ascending.
 */
export function sampleLayers(importance: ArrayLike<number>, k: number, rng: Random, opts: SampleLayersOptions = {}): Int32Array {
  const where = 'sampleLayers';
  const n = importance?.length ?? 0;
  checkCount(where, 'k', k, n);
  if (!rng || typeof (rng as Random).next !== 'function') throw new ArgumentError(`${where}: rng must be a Random`);
  const weighting = opts.weighting ?? 'sigmoid';
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = importance[i]!;
    if (Number.isNaN(x)) throw new ArgumentError(`${where}: importance[${i}] is NaN`);
    if (weighting === 'sigmoid') w[i] = sigmoid(x);
    else if (weighting === 'proportional') {
      if (!(x >= 0) || !Number.isFinite(x)) throw new ArgumentError(`${where}: importance[${i}] must be finite and >= 0 with weighting 'proportional', got ${x}`);
      w[i] = x;
    } else throw new ArgumentError(`${where}: weighting must be 'sigmoid' or 'proportional', got ${JSON.stringify(weighting)}`);
  }
  const taken = new Uint8Array(n);
  const out = new Int32Array(k);
  for (let j = 0; j < k; j++) {
    let sum = 0;
    for (let i = 0; i < n; i++) if (!taken[i]) sum += w[i]!;
    let pick = -1;
    if (sum > 0) {
      let u = rng.next() * sum;
      for (let i = 0; i < n; i++) {
        if (taken[i] || w[i] === 0) continue;
        pick = i; // if rounding leaves u >= 0 at the end, the last candidate with weight > 0 is taken
        u -= w[i]!;
        if (u < 0) break;
      }
    } else {
      // All remaining weights are zero: draw uniformly among what is left.
      const left: number[] = [];
      for (let i = 0; i < n; i++) if (!taken[i]) left.push(i);
      pick = left[rng.int(0, left.length)]!;
    }
    taken[pick] = 1;
    out[j] = pick;
  }
  return out.sort();
}

export interface ISTTrial {
  /** The layers whose update was suppressed (scaled down) in this trial. */
  suppressed: ArrayLike<number>;
  /** Validation loss measured with them suppressed. */
  loss: number;
}

/**
 * One IST importance update (the REINFORCE-style rule of the IST reference code): each trial's reward is
 * r = exp(-loss), centered by the mean over the trials; every layer suppressed in trial t moves by
 * -lr * (r_t - mean r) * sigmoid(s_i) (1 - sigmoid(s_i)). A layer whose suppression kept the loss low
 * (positive centered reward) loses importance; one whose suppression hurt gains it. Returns new scores.
 */
export function istImportanceUpdate(importance: ArrayLike<number>, trials: readonly ISTTrial[], lr = 10): Float64Array {
  const where = 'istImportanceUpdate';
  const n = importance.length;
  if (!Array.isArray(trials) || trials.length === 0) throw new ArgumentError(`${where}: trials must be a non-empty array`);
  if (typeof lr !== 'number' || !Number.isFinite(lr)) throw new ArgumentError(`${where}: lr must be a finite number, got ${String(lr)}`);
  const rewards = trials.map((t, j) => {
    if (typeof t?.loss !== 'number' || Number.isNaN(t.loss)) throw new ArgumentError(`${where}: trials[${j}].loss must be a number`);
    return Math.exp(-t.loss);
  });
  const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  const before = Float64Array.from(importance);
  const out = Float64Array.from(importance);
  trials.forEach((t, j) => {
    const centered = rewards[j]! - mean;
    const seen = new Set<number>();
    for (let q = 0; q < t.suppressed.length; q++) {
      const i = t.suppressed[q]!;
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new ArgumentError(`${where}: trials[${j}].suppressed[${q}] = ${i} is not a layer index in [0, ${n})`);
      if (seen.has(i)) continue;
      seen.add(i);
      const p = sigmoid(before[i]!);
      out[i] = out[i]! - lr * centered * p * (1 - p);
    }
  });
  return out;
}
