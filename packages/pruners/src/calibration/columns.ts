// Per-input-column statistics of a linear layer's activations, one batch at a time: ||X_j||_2 (Wanda), and
// the mean and population variance (DSnoT), all accumulated in float64.

import { ArgumentError, getKernel, tensor, type Tensor } from '@sparse/tensor';
import type { LayerStats } from '../types.js';
import { checkFeatures, layerLabel, nonFiniteActivation, readBatch, stateArray, stateCount } from './read.js';

/** A serializable snapshot: typed arrays as they are (or plain arrays after a JSON round trip). */
export interface ColumnNormState {
  kind: 'columns';
  name?: string;
  features: number;
  tokens: number;
  /** Σ x_j^2 over tokens. */
  sumSquares: Float64Array | number[];
  /** Running mean of x_j. */
  mean: Float64Array | number[];
  /** Running Σ (x_j - mean_j)^2 (Welford's M2). */
  m2: Float64Array | number[];
}

export interface AccumulatorOptions {
  /** Layer name, used in error messages. */
  name?: string;
}

/**
 * Streams activation batches X [tokens, in] (or [..., in]) of one layer and keeps, per input column j,
 * Σ x_j^2 (for the norm ||X_j||_2 over all tokens) and the mean and variance by Chan et al.'s parallel
 * update of Welford's algorithm, so a batch at a time gives the same result as all tokens at once.
 */
export class ColumnNormAccumulator {
  readonly features: number;
  readonly name: string | undefined;
  private n = 0;
  private readonly sumSq: Float64Array;
  private readonly mu: Float64Array;
  private readonly m2: Float64Array;

  constructor(features: number, opts: AccumulatorOptions = {}) {
    this.features = checkFeatures('ColumnNormAccumulator', features);
    this.name = opts.name;
    this.sumSq = new Float64Array(features);
    this.mu = new Float64Array(features);
    this.m2 = new Float64Array(features);
  }

  /** Tokens seen so far. */
  get tokens(): number {
    return this.n;
  }

  add(x: Tensor): this {
    const where = 'ColumnNormAccumulator.add';
    const b = readBatch(where, this.name, x, this.features, 'x', { view: true });
    const t = b.shape[0]!;
    if (t === 0) return this;
    const f = this.features;
    // Σx² added into sumSq; the batch's own mean and M2 (rows in order, float64), by the registry's
    // columnMomentsF32 (native when registered); nothing is written when an entry is not finite.
    const batchMean = new Float64Array(f);
    const batchM2 = new Float64Array(f);
    const bad = getKernel('columnMomentsF32')({ rows: t, cols: f, x: b.data, xOffset: 0, ldx: f, sumSquares: this.sumSq, mean: batchMean, m2: batchM2 });
    if (bad >= 0) throw new ArgumentError(nonFiniteActivation(where, this.name, 'x', f, bad, b.data[bad]!));
    const n = this.n;
    const total = n + t;
    for (let j = 0; j < f; j++) {
      // Chan et al.: merge (n, mean, M2) with the batch's (t, mean, M2).
      const delta = batchMean[j]! - this.mu[j]!;
      this.mu[j] = this.mu[j]! + (delta * t) / total;
      this.m2[j] = this.m2[j]! + batchM2[j]! + (delta * delta * n * t) / total;
    }
    this.n = total;
    return this;
  }

  private require(what: string): void {
    if (this.n === 0) throw new ArgumentError(`ColumnNormAccumulator.${what}${layerLabel(this.name)}: no tokens accumulated yet (call add first)`);
  }

  /** ||X_j||_2 over all tokens [in] (float64). */
  norms(): Tensor<'float64'> {
    this.require('norms');
    return tensor(this.sumSq.map(Math.sqrt), [this.features]);
  }

  /** Mean of X_j over tokens [in] (float64). */
  means(): Tensor<'float64'> {
    this.require('means');
    return tensor(this.mu.slice(), [this.features]);
  }

  /** Population variance of X_j over tokens [in] (float64), as the DSnoT reference (unbiased=False). */
  variances(): Tensor<'float64'> {
    this.require('variances');
    const n = this.n;
    return tensor(this.m2.map((x) => Math.max(0, x) / n), [this.features]);
  }

  /** columnNorms, columnMeans, columnVariances and tokens, ready for a pruner. */
  stats(): LayerStats {
    return { columnNorms: this.norms(), columnMeans: this.means(), columnVariances: this.variances(), tokens: this.n };
  }

  state(): ColumnNormState {
    const s: ColumnNormState = { kind: 'columns', features: this.features, tokens: this.n, sumSquares: this.sumSq.slice(), mean: this.mu.slice(), m2: this.m2.slice() };
    if (this.name !== undefined) s.name = this.name;
    return s;
  }

  static fromState(state: ColumnNormState): ColumnNormAccumulator {
    const where = 'ColumnNormAccumulator.fromState';
    if (state?.kind !== 'columns') throw new ArgumentError(`${where}: expected a state of kind 'columns', got ${JSON.stringify(state?.kind)}`);
    const acc = new ColumnNormAccumulator(state.features, state.name === undefined ? {} : { name: state.name });
    acc.n = stateCount(where, state.tokens);
    acc.sumSq.set(stateArray(where, 'sumSquares', state.sumSquares, acc.features));
    acc.mu.set(stateArray(where, 'mean', state.mean, acc.features));
    acc.m2.set(stateArray(where, 'm2', state.m2, acc.features));
    return acc;
  }
}
