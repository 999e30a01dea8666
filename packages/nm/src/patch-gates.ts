// PATCH's learnable tile gates in tfjs: one logit per tile, sigmoid gates (1 = tile is N:M sparse, 0 = dense).
// Two forms share the logits:
//   - soft: g = sigmoid(logit / T), with T annealed toward 0 during training (the form to train with: every
//     tile gets a task gradient proportional to its pruning cost, and the gates end binary);
//   - hard with a straight-through estimator (no T): forward z = [logit > 0], the exact deployed mask,
//     backward d sigmoid(logit). A tile that is dense at an optimum gets no task gradient, so training only
//     in this form makes gates near the budget flip back and forth; use it to check or fine-tune.
// The budget regularizer is budgetWeight * (sparsity(g) - target)^2 on the same gates, where
// sparsity(g) = sum(g) * (1 - n/m) * tileSize / numel. Final decisions are logit > 0.
import { maskToTf } from '@sparse/masks/tfjs';
import { ArgumentError, type Tensor } from '@sparse/tensor';
import { fromTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { nmMask } from './mask.js';
import { patchGrid, patchMask, type PatchGrid, type PatchTiling } from './patch.js';

export interface PatchGatesOptions extends PatchTiling {
  /** Weight shape [rows, cols]. */
  shape: readonly [number, number];
  /** Target overall sparsity, in [0, 1 - n/m] (0 to 50% for 2:4). */
  target: number;
  /** Weight of the budget term (default 1). */
  budgetWeight?: number;
  /** Starting logit of every gate (default 0.01: all tiles start just on the sparse side), or one per tile. */
  init?: number | ArrayLike<number>;
  /** Variable name of the logits (optional). */
  name?: string;
}

/** Hard step forward, sigmoid derivative backward. */
function steGate(logits: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((x, save) => {
    (save as tf.GradSaveFunc)([x as tf.Tensor]);
    return {
      value: tf.cast(tf.greater(x as tf.Tensor, 0), 'float32'),
      gradFunc: (dy, saved) => {
        const s = tf.sigmoid(saved[0]!);
        return tf.mul(dy, tf.mul(s, tf.sub(1, s)));
      },
    };
  });
  return op(logits);
}

/** Learnable per-tile dense-vs-N:M choice with a sparsity budget. */
export class PatchGates {
  readonly grid: PatchGrid;
  readonly shape: readonly [number, number];
  readonly target: number;
  readonly budgetWeight: number;
  /** Gate logits, [gridRows, gridCols]; train them with any tf optimizer. */
  readonly logits: tf.Variable;

  constructor(opts: PatchGatesOptions) {
    const where = 'PatchGates';
    this.grid = patchGrid(opts?.shape ?? [], opts, where);
    this.shape = [opts.shape[0], opts.shape[1]];
    const maxSparsity = 1 - this.grid.n / this.grid.m;
    if (typeof opts.target !== 'number' || !(opts.target >= 0 && opts.target <= maxSparsity)) {
      throw new ArgumentError(`${where}: target must be a sparsity in [0, ${maxSparsity}], got ${String(opts.target)}`);
    }
    this.target = opts.target;
    this.budgetWeight = opts.budgetWeight ?? 1;
    if (!Number.isFinite(this.budgetWeight) || this.budgetWeight < 0) throw new ArgumentError(`${where}: budgetWeight must be a finite number >= 0, got ${this.budgetWeight}`);
    const tiles = this.grid.gridRows * this.grid.gridCols;
    const init = opts.init ?? 0.01;
    const values = typeof init === 'number' ? new Float32Array(tiles).fill(init) : Float32Array.from(init);
    if (values.length !== tiles) throw new ArgumentError(`${where}: init has ${values.length} logits, the tile grid has ${tiles}`);
    if (values.some((v) => !Number.isFinite(v))) throw new ArgumentError(`${where}: init logits must be finite`);
    this.logits = tf.variable(tf.tensor(values, [this.grid.gridRows, this.grid.gridCols]), true, opts.name);
  }

  /**
   * Gates, [gridRows, gridCols] (1 = N:M tile). Without a temperature: hard z = [logit > 0] with the
   * straight-through sigmoid gradient. With one: the soft relaxation sigmoid(logit / temperature), to be
   * annealed toward 0 during training so every gate ends at 0 or 1.
   */
  gates(temperature?: number): tf.Tensor {
    if (temperature === undefined) return steGate(this.logits);
    if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgumentError(`PatchGates: temperature must be a positive number, got ${temperature}`);
    return tf.sigmoid(tf.div(this.logits, temperature));
  }

  /** Current decisions, row-major over the tile grid (1 = N:M sparse tile). */
  decisions(): Uint8Array {
    return Uint8Array.from(this.logits.dataSync(), (v) => (v > 0 ? 1 : 0));
  }

  /** Sparsity the hard gates give (differentiable through the STE): sum(z) * (1 - n/m) * tileSize / numel. */
  sparsity(temperature?: number): tf.Scalar {
    const { tileRows, tileCols, n, m } = this.grid;
    return tf.mul(tf.sum(this.gates(temperature)), ((1 - n / m) * tileRows * tileCols) / (this.shape[0] * this.shape[1])) as tf.Scalar;
  }

  /** budgetWeight * (sparsity - target)^2. */
  budgetLoss(temperature?: number): tf.Scalar {
    return tf.mul(tf.square(tf.sub(this.sparsity(temperature), this.target)), this.budgetWeight) as tf.Scalar;
  }

  /**
   * W * effective mask, where the mask is 1 in dense tiles and `nm` (the N:M mask of W, 1 = kept; default
   * computed from |W|, pass your own to recompute it less often) in sparse tiles. Gradients reach both W
   * and the gate logits.
   */
  maskedWeight(w: tf.Tensor, nm?: tf.Tensor, temperature?: number): tf.Tensor {
    if (!tf.util.arraysEqual(w.shape, [...this.shape])) throw new ArgumentError(`PatchGates.maskedWeight: weight shape [${w.shape.join(', ')}] differs from the gates' [${this.shape.join(', ')}]`);
    const { tileRows, tileCols, gridRows, gridCols, n, m } = this.grid;
    return tf.tidy(() => {
      const nmT = nm ?? maskToTf(nmMask(fromTf(w) as Tensor, { n, m }));
      if (!tf.util.arraysEqual(nmT.shape, w.shape)) throw new ArgumentError(`PatchGates.maskedWeight: nm mask shape [${nmT.shape.join(', ')}] differs from weight shape [${w.shape.join(', ')}]`);
      // Spread each tile's gate over its entries: [R, 1, C, 1] * ones[1, th, 1, tw] -> [rows, cols].
      const z = tf.reshape(tf.mul(tf.reshape(this.gates(temperature), [gridRows, 1, gridCols, 1]), tf.ones([1, tileRows, 1, tileCols])), [...this.shape]);
      return tf.mul(w, tf.sub(1, tf.mul(z, tf.sub(1, nmT))));
    });
  }

  /** The final mixed mask of a weight under the current decisions (core patchMask). */
  mask(w: tf.Tensor) {
    return patchMask(fromTf(w) as Tensor, this.decisions(), { tile: [this.grid.tileRows, this.grid.tileCols], n: this.grid.n, m: this.grid.m });
  }

  dispose(): void {
    this.logits.dispose();
  }
}
