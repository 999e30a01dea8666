// TEAL (Liu et al. 2024, "Training-Free Activation Sparsity in Large Language Models"): the input of each
// linear layer is thresholded by magnitude, the threshold being the quantile of that input's |x| on
// calibration data at the layer's sparsity level. Levels are allocated greedily: every site starts at 0 and
// the raise by `step` that adds the least output error per unit of removed work is taken, until the
// parameter-weighted average level reaches the target. The error of a site is the relative output error of
// its own layer, ||(x - x_s) Wᵀ||² / ||x Wᵀ||² on the calibration sample.

import { ArgumentError } from '@sparse/tensor';
import { sortedAbs } from '../../measure.js';
import type { ActivationMethod, SiteSample, SiteWeight } from '../../types.js';
import { actsOnRole, checkSample, checkWeight, quantileRank, readState, transposed } from '../common.js';
import { thresholdSparsifier } from '../cats/cats.js';
import { tealConfigSchema, type TealConfig } from './config.js';

/** The threshold at `level` of a sorted |x|: the level-quantile (dropping |x| < threshold drops about `level`). */
export function thresholdAtLevel(sorted: Float32Array, level: number): number {
  return sorted[quantileRank(sorted.length, level)]!;
}

/** ||x Wᵀ||² in float64. */
export function outputEnergy(x: Float32Array, tokens: number, w: SiteWeight, wt: Float32Array): number {
  return droppedEnergy(x, tokens, w, wt, () => true);
}

/** ||d Wᵀ||² where d keeps the entries of x that `dropped(index)` selects (zero elsewhere). */
function droppedEnergy(x: Float32Array, tokens: number, w: SiteWeight, wt: Float32Array, dropped: (i: number) => boolean): number {
  const acc = new Float64Array(w.out);
  let total = 0;
  for (let t = 0; t < tokens; t++) {
    acc.fill(0);
    let any = false;
    for (let j = 0; j < w.in; j++) {
      const i = t * w.in + j;
      const v = x[i]!;
      if (v === 0 || !dropped(i)) continue;
      any = true;
      const col = j * w.out;
      for (let o = 0; o < w.out; o++) acc[o]! += v * wt[col + o]!;
    }
    if (any) for (let o = 0; o < w.out; o++) total += acc[o]! * acc[o]!;
  }
  return total;
}

/**
 * The relative output error of a layer when the entries `keep` marks 0 are dropped from its input:
 * ||(x - x_s) Wᵀ||² / ||x Wᵀ||² (0 when x Wᵀ is 0).
 */
export function layerOutputError(x: Float32Array, tokens: number, weight: SiteWeight, keep: Uint8Array): number {
  const wt = transposed(weight);
  const den = outputEnergy(x, tokens, weight, wt);
  return den === 0 ? 0 : droppedEnergy(x, tokens, weight, wt, (i) => keep[i] === 0) / den;
}

/** One site of the greedy allocation. */
export interface AllocationSite {
  /** Work per unit of sparsity (the layer's parameters: in * out). */
  params: number;
  /** The site's error at level steps * step (steps = 0, 1, ...), evaluated lazily. */
  errorAt(steps: number): number;
}

/**
 * TEAL's greedy allocation: all sites at 0; while the params-weighted average level is below `target`,
 * raise by one step the site whose raise adds the least error per removed work (error increase divided by
 * params * step; ties to the earlier site). Levels stay below 1. Returns the steps of each site.
 */
export function greedyLevels(sites: readonly AllocationSite[], target: number, step: number, where = 'teal'): number[] {
  const steps = sites.map(() => 0);
  const total = sites.reduce((a, s) => a + s.params, 0);
  if (sites.length === 0 || total === 0) return steps;
  const maxSteps = Math.ceil(1 / step - 1e-9) - 1; // the largest level below 1
  const current = sites.map((s) => s.errorAt(0));
  const next = sites.map((s) => (maxSteps >= 1 ? s.errorAt(1) : Infinity));
  let reached = 0; // sum of params * steps
  const goal = target / step; // in units of step
  while (reached / total < goal - 1e-9) {
    let best = -1;
    let bestCost = Infinity;
    for (let i = 0; i < sites.length; i++) {
      if (steps[i]! >= maxSteps || sites[i]!.params === 0) continue;
      const cost = (next[i]! - current[i]!) / (sites[i]!.params * step);
      if (best < 0 || cost < bestCost) {
        best = i;
        bestCost = cost;
      }
    }
    if (best < 0) throw new ArgumentError(`${where}: sparsity ${target} cannot be reached with levels below 1 in steps of ${step}`);
    steps[best]!++;
    reached += sites[best]!.params;
    current[best] = next[best]!;
    next[best] = steps[best]! < maxSteps ? sites[best]!.errorAt(steps[best]! + 1) : Infinity;
  }
  return steps;
}

/** How many values of an ascending array are below t. */
function countBelow(sorted: Float32Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * One site of TEAL's greedy: its parameters and its output error at level k * step. The dropped entries
 * grow with the level, so the error is updated incrementally: the product of the dropped part with Wᵀ
 * ([tokens, out], kept in float64) gains only the entries newly below the threshold, and over all levels
 * the site costs about one dense product. Levels are expected in increasing order (a lower one restarts).
 */
export function tealErrorSite(sample: SiteSample, sorted: Float32Array, step: number): AllocationSite {
  const { x, tokens } = sample;
  const w = sample.weight!;
  const wt = transposed(w);
  const den = outputEnergy(x, tokens, w, wt);
  const params = w.in * w.out;
  if (den === 0) return { params, errorAt: () => 0 };
  // Entries by increasing |x|: those dropped at any threshold are a prefix.
  const order = Uint32Array.from({ length: x.length }, (_, i) => i).sort((a, b) => Math.abs(x[a]!) - Math.abs(x[b]!) || a - b);
  const residual = new Float64Array(tokens * w.out);
  let prefix = 0;
  let level = 0;
  return {
    params,
    errorAt(k) {
      if (k === 0) return 0;
      if (k < level) {
        residual.fill(0);
        prefix = 0;
      }
      const end = countBelow(sorted, thresholdAtLevel(sorted, k * step));
      for (let p = prefix; p < end; p++) {
        const i = order[p]!;
        const v = x[i]!;
        if (v === 0) continue;
        const t = Math.floor(i / w.in);
        const row = t * w.out;
        const col = (i - t * w.in) * w.out;
        for (let o = 0; o < w.out; o++) residual[row + o]! += v * wt[col + o]!;
      }
      prefix = end;
      level = k;
      let e = 0;
      for (let i = 0; i < residual.length; i++) e += residual[i]! * residual[i]!;
      return e / den;
    },
  };
}

/** The level of every sample's site under `config` (uniform, or greedy over the model or per block). */
export function tealLevels(config: TealConfig, samples: readonly SiteSample[], sorted: readonly Float32Array[]): number[] {
  if (config.uniform) return samples.map(() => config.sparsity);
  const groups = new Map<number | 'all', number[]>();
  samples.forEach((s, i) => {
    const key = config.scope === 'block' ? s.site.block : 'all';
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const levels = samples.map(() => 0);
  for (const members of groups.values()) {
    const sites = members.map((i) => tealErrorSite(samples[i]!, sorted[i]!, config.step));
    const steps = greedyLevels(sites, config.sparsity, config.step);
    members.forEach((i, k) => (levels[i] = steps[k]! * config.step));
  }
  return levels;
}

export const tealMethod: ActivationMethod<typeof tealConfigSchema> = {
  kind: 'activation',
  name: 'teal',
  describe:
    'Zero |x| below a per-layer threshold on every linear input, levels allocated greedily to a model-wide sparsity (TEAL, Liu et al. 2024); the greedy scores each raise by its own layer\'s output error, not the block output error of the paper, and runs over the whole model unless scope is block.',
  paper: 'Liu et al. 2024, Training-Free Activation Sparsity in Large Language Models (TEAL)',
  differs: [
    'the greedy allocation scores a raise by its own layer\'s output error ||(x - x_s) W^T||^2 / ||x W^T||^2, not the paper\'s block output error',
    'the budget is model-wide by default (scope: \'model\'); scope: \'block\' meets the target in every block, as the paper does',
  ],
  schema: tealConfigSchema,
  needs: ['weight'],
  acts: (config, site) => actsOnRole(config.roles, site),
  calibrate(config, samples) {
    for (const s of samples) {
      checkSample('teal', s, !config.uniform);
      if (s.tokens === 0) throw new ArgumentError(`teal at ${s.site.name}: no calibration tokens`);
    }
    const sorted = samples.map((s) => sortedAbs(s.x));
    const levels = tealLevels(config, samples, sorted);
    return samples.map((s, i) => thresholdSparsifier(s.site, thresholdAtLevel(sorted[i]!, levels[i]!), 'teal', { level: levels[i]! }));
  },
  restore(_config, site, state, weight) {
    const { threshold, level } = readState('teal', site, state, ['threshold', 'level']);
    if (!(threshold! >= 0)) throw new ArgumentError(`teal at ${site.name}: state.threshold must be >= 0, got ${threshold}`);
    if (weight !== undefined) checkWeight('teal', site, weight);
    return thresholdSparsifier(site, threshold!, 'teal', { level: level! });
  },
};
