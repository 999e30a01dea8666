// Scores that accumulate over training steps or gradient samples. Each accumulator keeps float64 sums (so
// long runs do not lose small contributions), returns float32 score tensors, and can be checkpointed with
// state() / fromState().

import { ArgumentError, ShapeError, sizeOf, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { checkNoNaN, checkSameShape, checkShapeArg, flatValues, shapeString } from '../internal.js';

/** A JSON-safe snapshot of an accumulator. */
export interface AccumulatorState {
  kind: 'squaredGradient' | 'gradient' | 'movement';
  shape: number[];
  count: number;
  sum: number[];
}

abstract class Accumulator {
  readonly shape: number[];
  protected readonly acc: Float64Array;
  protected n = 0;
  protected abstract readonly kind: AccumulatorState['kind'];

  constructor(shape: readonly number[]) {
    this.shape = checkShapeArg(new.target.name, 'shape', shape);
    this.acc = new Float64Array(sizeOf(this.shape));
  }

  /** Number of add() calls so far. */
  get count(): number {
    return this.n;
  }

  protected read(where: string, name: string, t: Tensor): Float32Array | Float64Array {
    const v = flatValues(t, where, name);
    checkSameShape(where, 'accumulator', this.shape, name, t.shape);
    checkNoNaN(v, t.shape, where, name);
    return v;
  }

  protected out(fn: (x: number) => number): Float32Tensor {
    const out = new Float32Array(this.acc.length);
    for (let i = 0; i < out.length; i++) out[i] = fn(this.acc[i]!);
    return tensor(out, this.shape);
  }

  protected requireSamples(where: string): void {
    if (this.n === 0) throw new ArgumentError(`${where}: nothing accumulated yet (call add first)`);
  }

  state(): AccumulatorState {
    return { kind: this.kind, shape: [...this.shape], count: this.n, sum: Array.from(this.acc) };
  }

  protected restore(state: AccumulatorState, kind: AccumulatorState['kind']): this {
    if (state?.kind !== kind) throw new ArgumentError(`fromState: expected an accumulator state of kind '${kind}', got ${JSON.stringify(state?.kind)}`);
    if (!Number.isSafeInteger(state.count) || state.count < 0) throw new ArgumentError(`fromState: count must be a non-negative integer, got ${String(state.count)}`);
    if (!Array.isArray(state.sum) || state.sum.length !== this.acc.length) {
      throw new ShapeError(`fromState: sum has ${state.sum?.length} entries but shape ${shapeString(this.shape)} needs ${this.acc.length}`);
    }
    this.acc.set(state.sum);
    this.n = state.count;
    return this;
  }
}

/**
 * Σ g² over gradient samples. `mean()` is the empirical Fisher diagonal (FSAM-style Fisher masks, Taylor
 * order 2); `sum()` is the sensitivity score of "Zeroth-order fine-tuning of LLMs with extreme sparsity",
 * whose sensitive parameters are the top-k of accumulated squared gradients.
 */
export class SquaredGradientAccumulator extends Accumulator {
  protected readonly kind = 'squaredGradient' as const;

  add(gradient: Tensor): this {
    const g = this.read('SquaredGradientAccumulator.add', 'gradient', gradient);
    for (let i = 0; i < g.length; i++) this.acc[i]! += g[i]! * g[i]!;
    this.n++;
    return this;
  }

  /** Σ g² (the sensitive-parameter score). */
  sum(): Float32Tensor {
    return this.out((x) => x);
  }

  /** Σ g² / count (the Fisher diagonal). */
  mean(): Float32Tensor {
    this.requireSamples('SquaredGradientAccumulator.mean');
    const n = this.n;
    return this.out((x) => x / n);
  }

  static fromState(state: AccumulatorState): SquaredGradientAccumulator {
    return new SquaredGradientAccumulator(state.shape).restore(state, 'squaredGradient');
  }
}

/**
 * Σ g over steps. `scores()` is |Σ g|, the growth criterion of SpIEL-AG ("Scaling Sparse Fine-Tuning to
 * LLMs"): inactive entries whose accumulated gradient is largest are regrown.
 */
export class GradientAccumulator extends Accumulator {
  protected readonly kind = 'gradient' as const;

  add(gradient: Tensor): this {
    const g = this.read('GradientAccumulator.add', 'gradient', gradient);
    for (let i = 0; i < g.length; i++) this.acc[i]! += g[i]!;
    this.n++;
    return this;
  }

  /** |Σ g|. */
  scores(): Float32Tensor {
    return this.out(Math.abs);
  }

  /** Σ g / count (signed). */
  mean(): Float32Tensor {
    this.requireSamples('GradientAccumulator.mean');
    const n = this.n;
    return this.out((x) => x / n);
  }

  /** Clears the sums, e.g. after each regrowth step. */
  reset(): this {
    this.acc.fill(0);
    this.n = 0;
    return this;
  }

  static fromState(state: AccumulatorState): GradientAccumulator {
    return new GradientAccumulator(state.shape).restore(state, 'gradient');
  }
}

/**
 * Movement scores (Sanh et al. 2020): S = -Σ_t scale_t · (∂L/∂W)_t ⊙ W_t, accumulated at every step.
 * Large S means the weight is moving away from zero (kept); negative S means it is shrinking toward zero.
 * Signed: select the largest S. `scale` is the α_S (often the learning rate) of the step, default 1.
 */
export class MovementAccumulator extends Accumulator {
  protected readonly kind = 'movement' as const;

  add(weight: Tensor, gradient: Tensor, scale = 1): this {
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new ArgumentError(`MovementAccumulator.add: scale must be a finite number, got ${String(scale)}`);
    const w = this.read('MovementAccumulator.add', 'weight', weight);
    const g = this.read('MovementAccumulator.add', 'gradient', gradient);
    for (let i = 0; i < w.length; i++) this.acc[i]! -= scale * g[i]! * w[i]!;
    this.n++;
    return this;
  }

  /** The accumulated movement score S. */
  scores(): Float32Tensor {
    return this.out((x) => x);
  }

  static fromState(state: AccumulatorState): MovementAccumulator {
    return new MovementAccumulator(state.shape).restore(state, 'movement');
  }
}

/** The Fisher diagonal from gradient samples: mean over samples of g², elementwise. */
export function fisherScores(gradients: readonly Tensor[]): Float32Tensor {
  if (!Array.isArray(gradients) || gradients.length === 0) throw new ArgumentError('fisherScores: gradients must be a non-empty array of tensors');
  const acc = new SquaredGradientAccumulator(gradients[0]!.shape);
  gradients.forEach((g, i) => {
    const v = flatValues(g, 'fisherScores', `gradients[${i}]`);
    checkSameShape('fisherScores', 'gradients[0]', gradients[0]!.shape, `gradients[${i}]`, g.shape);
    checkNoNaN(v, g.shape, 'fisherScores', `gradients[${i}]`);
    acc.add(g);
  });
  return acc.mean();
}
