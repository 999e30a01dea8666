// Measuring activation sparsity. Per site: how dense each token is (the fraction of exact zeros and of
// |x| <= eps, summarized over tokens by mean, min, max and quantiles), and a histogram of |x| that batches
// stream into and merge across, from which a percentile threshold is read back. Nothing here holds all
// activations: density is a count per possible fraction, the histogram keeps exact values only up to a cap.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import { quantileRank } from './methods/common.js';
import type { Site } from './types.js';

/** The q-quantile used throughout: the value of rank ⌊q·n⌋ (0-based, clamped to n - 1) in ascending order. */
function checkQ(where: string, q: number): void {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw new ArgumentError(`${where}: q must be in [0, 1], got ${String(q)}`);
}

/**
 * The exact q-quantile of `values` by sorting: the value of rank ⌊q·n⌋ (0-based, clamped to n - 1) in
 * ascending order. So exactly ⌊q·n⌋ values lie strictly below it when the values are distinct: as a
 * magnitude threshold (pass |x|) that zeroes |x| < t it drops a q fraction. NaN values are refused.
 */
export function percentileThreshold(values: ArrayLike<number>, q: number): number {
  checkQ('percentileThreshold', q);
  const n = values.length;
  if (n === 0) throw new ArgumentError('percentileThreshold: no values');
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (Number.isNaN(v)) throw new ArgumentError(`percentileThreshold: values[${i}] is NaN`);
    sorted[i] = v;
  }
  sorted.sort();
  return sorted[quantileRank(n, q)]!;
}

/** |x| of every value, sorted ascending (float32, as the activations are). */
export function sortedAbs(x: ArrayLike<number>): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]!);
  return out.sort();
}

/** A summary of per-token values over the tokens seen. */
export interface Summary {
  mean: number;
  min: number;
  max: number;
  /** The requested quantiles, each the value of rank ⌊q·tokens⌋ among the tokens. */
  quantiles: { q: number; value: number }[];
}

/** The quantiles a summary reports unless asked for others. */
export const DEFAULT_QUANTILES: readonly number[] = [0.05, 0.25, 0.5, 0.75, 0.95];

/**
 * Per-token density of one site, streamed: for each token the fraction of exact zeros and the fraction of
 * |x| <= eps. A token's fraction is c / features for an integer c, so a count per c (features + 1 of them)
 * is enough for exact means, extremes and quantiles over any number of tokens.
 */
export class DensityAccumulator {
  readonly features: number;
  readonly eps: number;
  private readonly zeroCounts: Float64Array;
  private readonly smallCounts: Float64Array;
  private seen = 0;

  constructor(features: number, opts: { eps?: number } = {}) {
    if (!Number.isSafeInteger(features) || features < 1) throw new ArgumentError(`DensityAccumulator: features must be a positive integer, got ${String(features)}`);
    const eps = opts.eps ?? 1e-6;
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(`DensityAccumulator: eps must be a finite number >= 0, got ${String(eps)}`);
    this.features = features;
    this.eps = eps;
    this.zeroCounts = new Float64Array(features + 1);
    this.smallCounts = new Float64Array(features + 1);
  }

  /** Tokens added so far. */
  get tokens(): number {
    return this.seen;
  }

  /** Adds x [tokens, features] row-major. */
  add(x: ArrayLike<number>, tokens: number): this {
    const f = this.features;
    if (!Number.isSafeInteger(tokens) || tokens < 0) throw new ArgumentError(`DensityAccumulator.add: tokens must be a non-negative integer, got ${String(tokens)}`);
    if (x.length !== tokens * f) throw new ShapeError(`DensityAccumulator.add: x has ${x.length} values, expected tokens * features = ${tokens} * ${f}`);
    for (let t = 0; t < tokens; t++) {
      let zeros = 0;
      let small = 0;
      for (let j = t * f, end = j + f; j < end; j++) {
        const v = x[j]!;
        if (v === 0) zeros++;
        if (Math.abs(v) <= this.eps) small++;
      }
      this.zeroCounts[zeros]!++;
      this.smallCounts[small]!++;
    }
    this.seen += tokens;
    return this;
  }

  /** Adds another accumulator's tokens (same features and eps). */
  merge(other: DensityAccumulator): this {
    if (other.features !== this.features || other.eps !== this.eps) {
      throw new ArgumentError(`DensityAccumulator.merge: features/eps differ (${this.features}/${this.eps} vs ${other.features}/${other.eps})`);
    }
    for (let c = 0; c <= this.features; c++) {
      this.zeroCounts[c]! += other.zeroCounts[c]!;
      this.smallCounts[c]! += other.smallCounts[c]!;
    }
    this.seen += other.seen;
    return this;
  }

  /** Per-token fraction of exact zeros. */
  zeros(quantiles: readonly number[] = DEFAULT_QUANTILES): Summary {
    return this.summarize(this.zeroCounts, quantiles, 'zeros');
  }

  /** Per-token fraction of |x| <= eps. */
  small(quantiles: readonly number[] = DEFAULT_QUANTILES): Summary {
    return this.summarize(this.smallCounts, quantiles, 'small');
  }

  /** Plain JSON; `DensityAccumulator.fromState` rebuilds it. */
  state(): { features: number; eps: number; zeros: number[]; small: number[] } {
    return { features: this.features, eps: this.eps, zeros: Array.from(this.zeroCounts), small: Array.from(this.smallCounts) };
  }

  static fromState(state: { features: number; eps: number; zeros: readonly number[]; small: readonly number[] }): DensityAccumulator {
    const acc = new DensityAccumulator(state.features, { eps: state.eps });
    if (state.zeros.length !== state.features + 1 || state.small.length !== state.features + 1) {
      throw new ShapeError(`DensityAccumulator.fromState: expected ${state.features + 1} counts each`);
    }
    acc.zeroCounts.set(state.zeros);
    acc.smallCounts.set(state.small);
    acc.seen = state.zeros.reduce((a, b) => a + b, 0);
    return acc;
  }

  private summarize(counts: Float64Array, quantiles: readonly number[], what: string): Summary {
    if (this.seen === 0) throw new ArgumentError(`DensityAccumulator.${what}: no tokens added`);
    const f = this.features;
    let sum = 0;
    let min = -1;
    let max = 0;
    for (let c = 0; c <= f; c++) {
      if (counts[c] === 0) continue;
      sum += counts[c]! * c;
      if (min < 0) min = c;
      max = c;
    }
    const q = quantiles.map((p) => {
      checkQ(`DensityAccumulator.${what}`, p);
      const rank = quantileRank(this.seen, p);
      let below = 0;
      for (let c = 0; c <= f; c++) {
        below += counts[c]!;
        if (below > rank) return { q: p, value: c / f };
      }
      return { q: p, value: max / f };
    });
    return { mean: sum / (this.seen * f), min: min / f, max: max / f, quantiles: q };
  }
}

/** Options of an AbsHistogram (every field has a default). */
export const histogramOptionsSchema = z.strictObject({
  /** Exact |x| values kept before switching to bins; below the cap every percentile is exact. */
  exactCap: z.int().min(0).default(4096),
  /** The lowest bin edge; non-zero |x| below it share one underflow bin. */
  minValue: z.number().positive().default(1e-6),
  /** The highest bin edge; |x| at or above it share one overflow bin. */
  maxValue: z.number().positive().default(1e6),
  /** Log-spaced bins per factor of 10: each bin spans [e, e * 10^(1 / binsPerDecade)). */
  binsPerDecade: z.int().min(1).max(10_000).default(100),
}).refine((o) => o.maxValue > o.minValue, { message: 'maxValue must exceed minValue', path: ['maxValue'] });

export type HistogramOptions = z.input<typeof histogramOptionsSchema>;

/** A percentile read back from an AbsHistogram: the true order statistic lies in [lower, upper]. */
export interface PercentileEstimate {
  /** The estimate: the exact value when `exact`, else the bin's geometric middle (clamped to the seen range). */
  value: number;
  lower: number;
  upper: number;
  /** Whether `value` is the exact order statistic. */
  exact: boolean;
}

export interface HistogramState {
  options: z.output<typeof histogramOptionsSchema>;
  count: number;
  min: number;
  max: number;
  minPositive: number;
  exact: number[] | null;
  bins: number[] | null;
}

/**
 * A streaming, mergeable histogram of |x|. Up to `exactCap` values it keeps them all (percentiles are
 * exact); beyond that it counts them in fixed bins: exact zeros, an underflow bin (0, minValue), log-spaced
 * bins from minValue to maxValue with `binsPerDecade` per decade, and an overflow bin. Bins are fixed by
 * the options alone, so histograms with equal options merge by adding counts. A binned percentile is
 * bracketed: lower <= true value <= upper, upper / lower <= 10^(1 / binsPerDecade) inside the log range.
 */
export class AbsHistogram {
  readonly options: z.output<typeof histogramOptionsSchema>;
  private n = 0;
  private lo = Infinity;
  private hi = -Infinity;
  private loPositive = Infinity;
  private values: number[] | null = [];
  private bins: Float64Array | null = null;
  private readonly logBins: number;
  private readonly logRatio: number;

  constructor(opts: HistogramOptions = {}) {
    const r = histogramOptionsSchema.safeParse(opts);
    if (!r.success) throw new ArgumentError(`AbsHistogram: ${r.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
    this.options = r.data;
    this.logRatio = Math.LN10 / this.options.binsPerDecade;
    this.logBins = Math.ceil(Math.log(this.options.maxValue / this.options.minValue) / this.logRatio);
  }

  /** Values added so far. */
  get count(): number {
    return this.n;
  }

  /** Whether every value is still kept (percentiles exact). */
  get exact(): boolean {
    return this.values !== null;
  }

  /** The ratio upper / lower of one log bin: the relative error bound of a binned percentile. */
  get binRatio(): number {
    return Math.exp(this.logRatio);
  }

  /** Adds |v| of every value (a batch of activations, any shape flattened). NaN is refused. */
  add(x: ArrayLike<number>): this {
    for (let i = 0; i < x.length; i++) {
      if (Number.isNaN(x[i]!)) throw new ArgumentError(`AbsHistogram.add: value ${i} is NaN`);
    }
    for (let i = 0; i < x.length; i++) this.push(Math.abs(x[i]!));
    return this;
  }

  /** Adds another histogram's values (equal options). */
  merge(other: AbsHistogram): this {
    const a = this.options;
    const b = other.options;
    if (a.exactCap !== b.exactCap || a.minValue !== b.minValue || a.maxValue !== b.maxValue || a.binsPerDecade !== b.binsPerDecade) {
      throw new ArgumentError('AbsHistogram.merge: the histograms have different options');
    }
    if (other.values !== null) {
      for (const v of other.values) this.push(v);
      return this;
    }
    this.toBins();
    const bins = this.bins!;
    other.bins!.forEach((c, i) => (bins[i]! += c));
    this.n += other.n;
    this.lo = Math.min(this.lo, other.lo);
    this.hi = Math.max(this.hi, other.hi);
    this.loPositive = Math.min(this.loPositive, other.loPositive);
    return this;
  }

  /** The q-quantile of the |x| added (rank ⌊q·count⌋ ascending), exactly or bracketed by its bin. */
  percentile(q: number): PercentileEstimate {
    checkQ('AbsHistogram.percentile', q);
    if (this.n === 0) throw new ArgumentError('AbsHistogram.percentile: no values added');
    const rank = quantileRank(this.n, q);
    if (this.values !== null) {
      const sorted = Float64Array.from(this.values).sort();
      const v = sorted[rank]!;
      return { value: v, lower: v, upper: v, exact: true };
    }
    const bins = this.bins!;
    let below = 0;
    let b = 0;
    for (; b < bins.length; b++) {
      below += bins[b]!;
      if (below > rank) break;
    }
    const [lower, upper] = this.binRange(b);
    const lo = Math.max(lower, this.lo);
    const hi = Math.min(upper, this.hi);
    if (lo === hi) return { value: lo, lower: lo, upper: hi, exact: true };
    const mid = lo > 0 ? Math.sqrt(lo * hi) : (lo + hi) / 2;
    return { value: mid, lower: lo, upper: hi, exact: false };
  }

  /** Plain JSON; `AbsHistogram.fromState` rebuilds it. */
  state(): HistogramState {
    return {
      options: { ...this.options },
      count: this.n,
      min: this.lo,
      max: this.hi,
      minPositive: this.loPositive,
      exact: this.values === null ? null : [...this.values],
      bins: this.bins === null ? null : Array.from(this.bins),
    };
  }

  static fromState(state: HistogramState): AbsHistogram {
    const h = new AbsHistogram(state.options);
    if (state.exact !== null) {
      h.add(state.exact);
      return h;
    }
    if (state.bins === null || state.bins.length !== h.logBins + 3) throw new ShapeError(`AbsHistogram.fromState: expected ${h.logBins + 3} bins`);
    h.values = null;
    h.bins = Float64Array.from(state.bins);
    h.n = state.count;
    h.lo = state.min;
    h.hi = state.max;
    h.loPositive = state.minPositive;
    return h;
  }

  private push(v: number): void {
    this.n++;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
    if (v > 0 && v < this.loPositive) this.loPositive = v;
    if (this.values !== null) {
      this.values.push(v);
      if (this.values.length > this.options.exactCap) this.toBins();
      return;
    }
    this.bins![this.binOf(v)]!++;
  }

  private toBins(): void {
    if (this.values === null) return;
    this.bins = new Float64Array(this.logBins + 3);
    for (const v of this.values) this.bins[this.binOf(v)]!++;
    this.values = null;
  }

  /** Lower edge of log bin i (i = 0 .. logBins). */
  private edge(i: number): number {
    return i >= this.logBins ? this.options.maxValue : this.options.minValue * Math.exp(i * this.logRatio);
  }

  /** 0: exact zero; 1: underflow (0, minValue); 2 + i: log bin i; logBins + 2: overflow [maxValue, inf). */
  private binOf(v: number): number {
    const { minValue, maxValue } = this.options;
    if (v === 0) return 0;
    if (v < minValue) return 1;
    if (v >= maxValue) return this.logBins + 2;
    let i = Math.min(this.logBins - 1, Math.max(0, Math.floor(Math.log(v / minValue) / this.logRatio)));
    // Rounding in the logarithm can land one bin off; the edges decide.
    while (i > 0 && this.edge(i) > v) i--;
    while (i < this.logBins - 1 && this.edge(i + 1) <= v) i++;
    return 2 + i;
  }

  private binRange(b: number): [number, number] {
    if (b === 0) return [0, 0];
    if (b === 1) return [this.loPositive, this.options.minValue];
    if (b === this.logBins + 2) return [this.options.maxValue, this.hi];
    return [this.edge(b - 2), this.edge(b - 1)];
  }
}

/** One site's measurement: per-token density and the |x| histogram. */
export interface SiteMeasurement {
  site: Site;
  density: DensityAccumulator;
  histogram: AbsHistogram;
}

/** The summary `ActivationMeasure.report` gives per site. */
export interface SiteReport {
  site: string;
  tokens: number;
  /** Per-token fraction of exact zeros. */
  zeros: Summary;
  /** Per-token fraction of |x| <= eps. */
  small: Summary;
  /** Percentiles of |x| read back from the histogram. */
  percentiles: ({ q: number } & PercentileEstimate)[];
}

/** Streams batches of activations of many sites into per-site density statistics and |x| histograms. */
export class ActivationMeasure {
  private readonly sites = new Map<string, SiteMeasurement>();
  readonly eps: number;
  readonly histogram: HistogramOptions;

  constructor(opts: { eps?: number; histogram?: HistogramOptions } = {}) {
    this.eps = opts.eps ?? 1e-6;
    this.histogram = opts.histogram ?? {};
  }

  /** Adds a batch x [tokens, site.features] of one site. */
  add(site: Site, x: ArrayLike<number>, tokens: number): this {
    let m = this.sites.get(site.name);
    if (m === undefined) {
      m = { site, density: new DensityAccumulator(site.features, { eps: this.eps }), histogram: new AbsHistogram(this.histogram) };
      this.sites.set(site.name, m);
    } else if (m.site.features !== site.features) {
      throw new ShapeError(`ActivationMeasure.add: site ${site.name} had ${m.site.features} features, now ${site.features}`);
    }
    m.density.add(x, tokens);
    m.histogram.add(x);
    return this;
  }

  /** The measurement of one site (undefined before its first batch). */
  get(name: string): SiteMeasurement | undefined {
    return this.sites.get(name);
  }

  /** Every site measured, in the order first seen. */
  measurements(): SiteMeasurement[] {
    return [...this.sites.values()];
  }

  /** Summaries per site: density over tokens and |x| percentiles (default DEFAULT_QUANTILES for both). */
  report(quantiles: readonly number[] = DEFAULT_QUANTILES): SiteReport[] {
    return this.measurements().map(({ site, density, histogram }) => ({
      site: site.name,
      tokens: density.tokens,
      zeros: density.zeros(quantiles),
      small: density.small(quantiles),
      percentiles: quantiles.map((q) => ({ q, ...histogram.percentile(q) })),
    }));
  }
}
