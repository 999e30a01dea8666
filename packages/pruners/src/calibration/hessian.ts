// SparseGPT's layer Hessian H = 2/n Σ x^T x over the n calibration tokens, streamed one batch at a time.

import { ArgumentError, matmul, tensor, type Tensor } from '@sparse/tensor';
import type { LayerStats } from '../types.js';
import type { AccumulatorOptions } from './columns.js';
import { checkFeatures, layerLabel, readBatch, stateArray, stateCount } from './read.js';

export interface HessianState {
  kind: 'hessian';
  name?: string;
  features: number;
  tokens: number;
  /** H [in, in], row-major. */
  hessian: Float64Array | number[];
}

/**
 * Streams activation batches X [tokens, in] (or [..., in]) of one layer into H = 2/n X^T X with the
 * reference's running average: H <- H * n / (n + t) + 2 / (n + t) X_b^T X_b. The product of a batch goes
 * through the matmul kernel (float32, as the reference computes it); the running H is float64. n counts
 * tokens (the reference counts sequences; only H's scale differs, which no pruner depends on).
 */
export class HessianAccumulator {
  readonly features: number;
  readonly name: string | undefined;
  private n = 0;
  private readonly h: Float64Array;

  constructor(features: number, opts: AccumulatorOptions = {}) {
    this.features = checkFeatures('HessianAccumulator', features);
    this.name = opts.name;
    this.h = new Float64Array(features * features);
  }

  get tokens(): number {
    return this.n;
  }

  add(x: Tensor): this {
    const b = readBatch('HessianAccumulator.add', this.name, x, this.features);
    const t = b.shape[0]!;
    if (t === 0) return this;
    const xtx = matmul(b, b, { transA: true }).data;
    const total = this.n + t;
    const keep = this.n / total;
    const scale = 2 / total;
    const h = this.h;
    const f = this.features;
    for (let i = 0; i < f; i++) {
      for (let j = 0; j <= i; j++) {
        // Averaging the two triangles keeps H exactly symmetric whatever order the kernel summed in.
        const v = h[i * f + j]! * keep + (scale * (xtx[i * f + j]! + xtx[j * f + i]!)) / 2;
        h[i * f + j] = v;
        h[j * f + i] = v;
      }
    }
    this.n = total;
    return this;
  }

  /** H [in, in] (float64, a copy). */
  hessian(): Tensor<'float64'> {
    if (this.n === 0) throw new ArgumentError(`HessianAccumulator.hessian${layerLabel(this.name)}: no tokens accumulated yet (call add first)`);
    return tensor(this.h.slice(), [this.features, this.features]);
  }

  /** hessian and tokens, ready for a pruner. */
  stats(): LayerStats {
    return { hessian: this.hessian(), tokens: this.n };
  }

  state(): HessianState {
    const s: HessianState = { kind: 'hessian', features: this.features, tokens: this.n, hessian: this.h.slice() };
    if (this.name !== undefined) s.name = this.name;
    return s;
  }

  static fromState(state: HessianState): HessianAccumulator {
    const where = 'HessianAccumulator.fromState';
    if (state?.kind !== 'hessian') throw new ArgumentError(`${where}: expected a state of kind 'hessian', got ${JSON.stringify(state?.kind)}`);
    const acc = new HessianAccumulator(state.features, state.name === undefined ? {} : { name: state.name });
    acc.n = stateCount(where, state.tokens);
    acc.h.set(stateArray(where, 'hessian', state.hessian, acc.features * acc.features));
    return acc;
  }
}
