// Structured pruning by activation information, after CFSP (Wang et al. 2024, "An Efficient Structured Pruning
// Framework for LLMs with Coarse-to-Fine Activation Information"): a coarse step splits the kept budget
// across blocks by how much each block changes its hidden states, a fine step keeps the most important
// channels (MLP neurons, or attention heads as groups of channels) inside each block. The result is keep
// sets; slicing a model's matrices by them is the model's job.

import { applyMask, isKept, keepCount, maskFromPredicate, topKMask } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { runDefinition } from '../../define.js';
import { readVector, readWeight, requireStat, where } from '../../internal.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from '../../types.js';
import { structuredConfigSchema, type ChannelMetric, type StructuredConfigInput } from './config.js';

export interface ChannelScoreInput {
  /** Layer name (of the consumer), used in error messages. */
  name: string;
  /** The layer that reads the channels, [out, C]: the MLP down projection, or the attention output projection. */
  consumer: Tensor;
  /** ||X_j||_2 of the consumer's inputs [C] (ColumnNormAccumulator.norms()). */
  columnNorms: Tensor;
  /** Layers that write the channels, each [C, in] (up and gate projections): CFSP adds their relative magnitudes. */
  producers?: readonly Tensor[];
  metric?: ChannelMetric;
  b?: number;
  c?: number;
}

/**
 * Importance of each of the C input channels of a consumer layer W [out, C], with a = ||X_j||_2:
 * - 'cfsp' (CFSP's three_w_one_wa, or one_wa without producers): mean over rows i of
 *   (|W_ij| a_j^b / Σ_i |W_ij| a_j^b + Σ_producers |P_jk| / Σ_k |P_jk|) · a_j^c, with 0/0 read as 0;
 * - 'wanda': mean_i |W_ij| a_j (Wanda-sp);
 * - 'magnitude': ||W_:,j||_2.
 * Each normalized term sums to 1 over its channel, so 'cfsp' ranks channels by a_j^c except where a
 * channel's weights are all zero: the activation norm does the ranking, as the paper's name says.
 */
export function channelScores(input: ChannelScoreInput): Float64Array {
  const name = input?.name;
  if (typeof name !== 'string') throw new ArgumentError('channelScores: input.name must be a string');
  const w = readWeight('structured', name, input.consumer);
  const C = w.cols;
  const norms = readVector('structured', name, 'columnNorms', input.columnNorms, C, { nonNegative: true });
  const metric = input.metric ?? 'cfsp';
  const b = input.b ?? 1;
  const c = input.c ?? 1;
  const out = new Float64Array(C);
  if (metric === 'magnitude') {
    for (let i = 0; i < w.rows; i++) for (let j = 0; j < C; j++) out[j]! += w.data[i * C + j]! ** 2;
    return out.map(Math.sqrt);
  }
  if (metric === 'wanda') {
    for (let i = 0; i < w.rows; i++) for (let j = 0; j < C; j++) out[j]! += Math.abs(w.data[i * C + j]!) * norms[j]!;
    return out.map((x) => (w.rows > 0 ? x / w.rows : 0));
  }
  if (metric !== 'cfsp') throw new ArgumentError(`${where('structured', name)}: metric must be 'cfsp', 'wanda' or 'magnitude', got ${JSON.stringify(metric)}`);
  // Σ_i of the consumer's normalized term is 1 per channel unless its column sum is 0; computed as written anyway.
  const colSum = new Float64Array(C);
  for (let i = 0; i < w.rows; i++) for (let j = 0; j < C; j++) colSum[j]! += Math.abs(w.data[i * C + j]!) * norms[j]! ** b;
  const termSum = new Float64Array(C);
  for (let i = 0; i < w.rows; i++) {
    for (let j = 0; j < C; j++) if (colSum[j]! > 0) termSum[j]! += (Math.abs(w.data[i * C + j]!) * norms[j]! ** b) / colSum[j]!;
  }
  (input.producers ?? []).forEach((p, k) => {
    const pw = readWeight('structured', `${name}.producers[${k}]`, p);
    if (pw.rows !== C) throw new ShapeError(`${where('structured', name)}: producers[${k}] is [${pw.rows}, ${pw.cols}] but the consumer has ${C} channels (expected [${C}, in])`);
    for (let j = 0; j < C; j++) {
      let s = 0;
      for (let t = 0; t < pw.cols; t++) s += Math.abs(pw.data[j * pw.cols + t]!);
      if (s > 0) for (let t = 0; t < pw.cols; t++) termSum[j]! += Math.abs(pw.data[j * pw.cols + t]!) / s;
    }
  });
  for (let j = 0; j < C; j++) out[j] = w.rows > 0 ? (termSum[j]! * norms[j]! ** c) / w.rows : 0;
  return out;
}

/** Sums channel scores over consecutive groups of `groupSize` channels (a head's score from its channels). */
export function groupScores(scores: ArrayLike<number>, groupSize: number, where = 'groupScores'): Float64Array {
  if (!Number.isSafeInteger(groupSize) || groupSize < 1) throw new ArgumentError(`${where}: groupSize must be a positive integer, got ${String(groupSize)}`);
  if (scores.length % groupSize !== 0) throw new ShapeError(`${where}: ${scores.length} channels do not split into groups of ${groupSize}`);
  const out = new Float64Array(scores.length / groupSize);
  for (let j = 0; j < scores.length; j++) {
    const s = scores[j]!;
    if (Number.isNaN(s)) throw new ArgumentError(`${where}: scores[${j}] is NaN`);
    out[Math.floor(j / groupSize)]! += s;
  }
  return out;
}

/** The indices of the `k` highest-scoring units (ties to the lower index), ascending. */
function topUnits(scores: Float64Array, k: number): Int32Array {
  const m = topKMask(tensor(scores, [scores.length]), k);
  const out: number[] = [];
  for (let u = 0; u < scores.length; u++) if (isKept(m, u)) out.push(u);
  return Int32Array.from(out);
}

/** Channel indices of the given units of `groupSize` channels. */
function expandUnits(units: Int32Array, groupSize: number): Int32Array {
  const out = new Int32Array(units.length * groupSize);
  units.forEach((u, i) => {
    for (let t = 0; t < groupSize; t++) out[i * groupSize + t] = u * groupSize + t;
  });
  return out;
}

export const structuredPruner: PrunerDefinition<typeof structuredConfigSchema> = {
  name: 'structured',
  kind: 'pruner',
  describe: 'Prune whole input channels (neurons, or heads of groupSize channels) of a layer by activation-based importance (CFSP fine step).',
  paper: 'Wang et al. 2024, CFSP: An Efficient Structured Pruning Framework for LLMs with Coarse-to-Fine Activation Information',
  differs: [
    'the fine step only, per layer: the coarse step (the budget split across blocks by block importance) is cfspBlockDensities / the trainer\'s cfsp method',
    'metric \'wanda\' (Wanda-sp) and \'magnitude\' are offered besides CFSP\'s score',
  ],
  schema: structuredConfigSchema,
  calibration: ['columns'],
  prune({ name, weight, stats, config }) {
    const w = readWeight('structured', name, weight);
    const norms = requireStat('structured', name, stats?.columnNorms, 'columnNorms', 'ColumnNormAccumulator.norms()');
    const scores = channelScores({ name, consumer: weight, columnNorms: norms, metric: config.metric, b: config.b, c: config.c });
    const units = groupScores(scores, config.groupSize, where('structured', name));
    const kept = new Uint8Array(w.cols);
    for (const ch of expandUnits(topUnits(units, keepCount(units.length, config.sparsity)), config.groupSize)) kept[ch] = 1;
    const mask = maskFromPredicate([w.rows, w.cols], (_, idx) => kept[idx[1]!] === 1);
    return { mask, weight: applyMask(mask, tensor(w.data, [w.rows, w.cols])) as Float32Tensor };
  },
};

/**
 * Structured pruning of one layer's input channels: every row loses the same columns, the
 * keepCount(units, sparsity) highest-scoring units of groupSize channels are kept.
 */
export function structuredPrune(input: PruneRequest<StructuredConfigInput>): PruneResult {
  return runDefinition(structuredPruner, input);
}

export interface BlockDensityOptions {
  /** CFSP's global control a: the steepness of the sigmoid over standardized importances (default 1). */
  a?: number;
  /** Channels per block, weighting the average so the kept total is (1 - sparsity) of all channels (default: equal). */
  sizes?: readonly number[];
}

/**
 * CFSP's coarse step: the density (fraction of channels kept) of each block. With z_i the importances standardized
 * (zero mean, unit variance; all zero when they are equal), s_i = sigmoid(a z_i) and
 * keep_i = (1 - sparsity) s_i / mean_w(s), so the size-weighted mean is exactly 1 - sparsity. When the largest
 * keep_i reaches 1, every keep_i is pulled toward the mean by the reference's factor (1 - K) / (max - K) / 1.05,
 * which keeps the order and the mean. (The reference centers raw token sums and divides by 1e4; standardizing
 * makes a independent of the number of calibration tokens.)
 */
export function cfspBlockDensities(importances: readonly number[], sparsity: number, opts: BlockDensityOptions = {}): number[] {
  const at = 'cfspBlockDensities';
  if (!Array.isArray(importances) || importances.length === 0) throw new ArgumentError(`${at}: importances must be a non-empty array of numbers`);
  importances.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new ArgumentError(`${at}: importances[${i}] is ${String(x)}; importances must be finite`);
  });
  if (typeof sparsity !== 'number' || !(sparsity >= 0 && sparsity < 1)) throw new ArgumentError(`${at}: sparsity must be a number in [0, 1), got ${String(sparsity)}`);
  const a = opts.a ?? 1;
  if (!Number.isFinite(a)) throw new ArgumentError(`${at}: a must be a finite number, got ${String(a)}`);
  const n = importances.length;
  const sizes = opts.sizes ?? new Array<number>(n).fill(1);
  if (sizes.length !== n || sizes.some((s) => !(typeof s === 'number' && s > 0 && Number.isFinite(s)))) {
    throw new ArgumentError(`${at}: sizes must hold ${n} positive numbers, got ${JSON.stringify(sizes)}`);
  }
  const mean = importances.reduce((s, x) => s + x, 0) / n;
  const std = Math.sqrt(importances.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
  const sig = importances.map((x) => 1 / (1 + Math.exp(-a * (std > 0 ? (x - mean) / std : 0))));
  const total = sizes.reduce((s, x) => s + x, 0);
  const wmean = sig.reduce((s, x, i) => s + x * sizes[i]!, 0) / total;
  const K = 1 - sparsity;
  let keep = sig.map((x) => (K * x) / wmean);
  const max = Math.max(...keep);
  if (max >= 1 && max > K) {
    const f = (1 - K) / (max - K) / 1.05;
    keep = keep.map((k) => K + (k - K) * f);
  }
  return keep;
}

export interface CFSPGroup {
  /** E.g. 'mlp' (neurons) or 'attn' (heads). */
  name: string;
  /** One score per channel (`channelScores`). */
  scores: ArrayLike<number>;
  /** Channels per unit (1 for neurons, the head dimension for heads; default 1). */
  groupSize?: number;
}

export interface CFSPBlock {
  name: string;
  /** Coarse importance, e.g. BlockInfluenceAccumulator.importance(). */
  importance: number;
  groups: readonly CFSPGroup[];
}

export interface CFSPOptions extends Omit<BlockDensityOptions, 'sizes'> {
  /** Fraction of channels pruned over all blocks, in [0, 1). */
  sparsity: number;
}

export interface CFSPGroupResult {
  name: string;
  /** Kept units (neurons or heads), ascending. */
  keep: Int32Array;
  /** Kept channel indices (keep expanded by groupSize), ascending. */
  channels: Int32Array;
}

export interface CFSPBlockResult {
  name: string;
  density: number;
  groups: CFSPGroupResult[];
}

/**
 * CFSP across blocks: densities from `cfspBlockDensities` (blocks weighted by their channel counts), then in
 * every group of a block the round(density · units) highest-scoring units.
 */
export function cfspPrune(blocks: readonly CFSPBlock[], opts: CFSPOptions): CFSPBlockResult[] {
  if (!Array.isArray(blocks) || blocks.length === 0) throw new ArgumentError('cfspPrune: blocks must be a non-empty array');
  const sizes = blocks.map((b: CFSPBlock, i) => {
    const groups: readonly CFSPGroup[] = b?.groups;
    if (!Array.isArray(groups) || groups.length === 0) throw new ArgumentError(`cfspPrune: blocks[${i}] (${String(b?.name)}) needs at least one group`);
    return groups.reduce((s: number, g: CFSPGroup) => s + (g.scores?.length ?? 0), 0);
  });
  const densities = cfspBlockDensities(
    blocks.map((b) => b.importance),
    opts?.sparsity,
    opts.a === undefined ? { sizes } : { a: opts.a, sizes },
  );
  return blocks.map((b, i) => ({
    name: b.name,
    density: densities[i]!,
    groups: b.groups.map((g: CFSPGroup) => {
      const gs = g.groupSize ?? 1;
      const units = groupScores(g.scores, gs, `cfspPrune: block '${b.name}' group '${g.name}'`);
      const k = Math.min(units.length, Math.max(0, Math.round(densities[i]! * units.length)));
      const keep = topUnits(units, k);
      return { name: g.name, keep, channels: expandUnits(keep, gs) };
    }),
  }));
}
