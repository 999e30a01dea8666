// CFSP's coarse-grained (inter-block) importance: how much a transformer block changes its hidden states,
// measured per token between the block's input and output and averaged over calibration tokens.

import { ArgumentError, ShapeError, type Tensor } from '@sparse/tensor';
import type { AccumulatorOptions } from './columns.js';
import { checkFeatures, layerLabel, readBatch, stateCount } from './read.js';

/** angular: arccos(cos(x, y)) / π (CFSP's default); cosine: 1 - cos(x, y); mse / mae: mean (squared / absolute) difference. */
export type BlockMetric = 'angular' | 'cosine' | 'mse' | 'mae';

const METRICS: readonly BlockMetric[] = ['angular', 'cosine', 'mse', 'mae'];

export interface BlockInfluenceState {
  kind: 'blockInfluence';
  name?: string;
  features: number;
  metric: BlockMetric;
  tokens: number;
  sum: number;
}

export interface BlockInfluenceOptions extends AccumulatorOptions {
  metric?: BlockMetric;
}

/**
 * Streams (input, output) hidden-state batches [tokens, d] of one block; importance() is the mean over
 * tokens of the chosen distance. A block that barely changes its input (small distance) is less
 * important, so it receives a smaller share of the kept budget.
 */
export class BlockInfluenceAccumulator {
  readonly features: number;
  readonly name: string | undefined;
  readonly metric: BlockMetric;
  private n = 0;
  private sum = 0;

  constructor(features: number, opts: BlockInfluenceOptions = {}) {
    this.features = checkFeatures('BlockInfluenceAccumulator', features);
    this.name = opts.name;
    const metric = opts.metric ?? 'angular';
    if (!METRICS.includes(metric)) throw new ArgumentError(`BlockInfluenceAccumulator: metric must be one of ${METRICS.join(', ')}, got ${JSON.stringify(metric)}`);
    this.metric = metric;
  }

  get tokens(): number {
    return this.n;
  }

  add(input: Tensor, output: Tensor): this {
    const where = 'BlockInfluenceAccumulator.add';
    const x = readBatch(where, this.name, input, this.features, 'input');
    const y = readBatch(where, this.name, output, this.features, 'output');
    const t = x.shape[0]!;
    if (y.shape[0] !== t) throw new ShapeError(`${where}${layerLabel(this.name)}: input has ${t} tokens but output has ${y.shape[0]}`);
    const d = this.features;
    for (let i = 0; i < t; i++) {
      let dot = 0;
      let xx = 0;
      let yy = 0;
      let sq = 0;
      let ab = 0;
      for (let j = 0; j < d; j++) {
        const a = x.data[i * d + j]!;
        const b = y.data[i * d + j]!;
        dot += a * b;
        xx += a * a;
        yy += b * b;
        sq += (a - b) * (a - b);
        ab += Math.abs(a - b);
      }
      if (this.metric === 'mse') this.sum += sq / d;
      else if (this.metric === 'mae') this.sum += ab / d;
      else {
        // A zero vector has no direction; the reference counts its similarity as 0.5.
        const cos = xx > 0 && yy > 0 ? Math.min(1, Math.max(-1, dot / Math.sqrt(xx * yy))) : 0.5;
        this.sum += this.metric === 'angular' ? Math.acos(cos) / Math.PI : 1 - cos;
      }
    }
    this.n += t;
    return this;
  }

  /** Mean distance per token. */
  importance(): number {
    if (this.n === 0) throw new ArgumentError(`BlockInfluenceAccumulator.importance${layerLabel(this.name)}: no tokens accumulated yet (call add first)`);
    return this.sum / this.n;
  }

  state(): BlockInfluenceState {
    const s: BlockInfluenceState = { kind: 'blockInfluence', features: this.features, metric: this.metric, tokens: this.n, sum: this.sum };
    if (this.name !== undefined) s.name = this.name;
    return s;
  }

  static fromState(state: BlockInfluenceState): BlockInfluenceAccumulator {
    const where = 'BlockInfluenceAccumulator.fromState';
    if (state?.kind !== 'blockInfluence') throw new ArgumentError(`${where}: expected a state of kind 'blockInfluence', got ${JSON.stringify(state?.kind)}`);
    const acc = new BlockInfluenceAccumulator(state.features, { metric: state.metric, ...(state.name === undefined ? {} : { name: state.name }) });
    acc.n = stateCount(where, state.tokens);
    if (typeof state.sum !== 'number' || !Number.isFinite(state.sum) || state.sum < 0) throw new ArgumentError(`${where}: state.sum must be a finite non-negative number`);
    acc.sum = state.sum;
    return acc;
  }
}
