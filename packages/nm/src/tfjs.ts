// @sparse/nm/tfjs: training through an N:M mask with tfjs autodiff. The forward pass uses W * mask; the
// estimators (maskedWeight of @sparse/masks/tfjs) decide what reaches W, PeriodicNMMask keeps the N:M mask
// current. The only entry that imports @tensorflow/tfjs-core.
import { count, xor, type Mask } from '@sparse/masks';
import { maskedWeight, maskToTf } from '@sparse/masks/tfjs';
import { ArgumentError, ShapeError, type Tensor } from '@sparse/tensor';
import { fromTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { nmActivationMask } from './activation.js';
import { checkNM } from './internal.js';
import { nmMask, type NMMaskOptions } from './mask.js';
import { transposableNMMask } from './transposable.js';

/**
 * Straight-through estimator: forward W * mask, backward passes the gradient to every entry of W as if
 * it were dense (pruned weights keep learning and can re-enter the mask when it is recomputed).
 * maskedWeight of @sparse/masks/tfjs with its defaults.
 */
export function steMaskedWeight(w: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return maskedWeight(w, mask);
}

/**
 * SR-STE (Zhou et al., "Learning N:M fine-grained structured sparse neural networks from scratch"):
 * forward W * mask, gradient dL/d(W*mask) + lambda * (1 - mask) * W, which decays the pruned weights
 * toward zero and so steadies the mask. maskedWeight(w, mask, { lambda }) of @sparse/masks/tfjs.
 */
export function srSTEMaskedWeight(w: tf.Tensor, mask: tf.Tensor, lambda: number): tf.Tensor {
  return maskedWeight(w, mask, { lambda });
}

/**
 * Progressive gradient flow: forward W * mask, gradient dy on kept weights and decay * dy on pruned
 * ones. decay = 1 is STE, decay = 0 is the plain masked gradient; lower it over training with
 * gradientFlowDecay. maskedWeight(w, mask, { decay }) of @sparse/masks/tfjs.
 */
export function progressiveMaskedWeight(w: tf.Tensor, mask: tf.Tensor, decay: number): tf.Tensor {
  return maskedWeight(w, mask, { decay });
}

/** A decay schedule: a function of the step, or a linear / cosine ramp from `from` (default 1) to `to` (default 0) over `steps`. */
export type DecaySchedule = ((step: number) => number) | { kind: 'linear' | 'cosine'; steps: number; from?: number; to?: number };

/** The decay factor at a step (clamped to `to` after the ramp ends). */
export function gradientFlowDecay(step: number, schedule: DecaySchedule): number {
  if (!Number.isFinite(step) || step < 0) throw new ArgumentError(`gradientFlowDecay: step must be a non-negative number, got ${step}`);
  if (typeof schedule === 'function') return schedule(step);
  const { kind, steps } = schedule;
  const from = schedule.from ?? 1;
  const to = schedule.to ?? 0;
  if (!Number.isFinite(steps) || steps <= 0) throw new ArgumentError(`gradientFlowDecay: steps must be positive, got ${steps}`);
  const t = Math.min(1, step / steps);
  if (kind === 'linear') return from + (to - from) * t;
  if (kind === 'cosine') return to + ((from - to) * (1 + Math.cos(Math.PI * t))) / 2;
  throw new ArgumentError(`gradientFlowDecay: kind must be 'linear' or 'cosine', got ${JSON.stringify(kind)}`);
}

/**
 * MDGF, the mask-decay form of progressive gradient flow (Bambhaniya et al. 2024): forward
 * W * (mask + beta * (1 - mask)), so the pruned entries still act, scaled by beta (1 = dense, 0 = the
 * plain N:M weight; lower it with maskDecayFactor); backward dL/dW = dy for every entry, the
 * straight-through gradient the paper's MDGF uses (not the product rule's beta * dy on pruned entries).
 */
export function maskDecayedWeight(w: tf.Tensor, mask: tf.Tensor, beta: number): tf.Tensor {
  if (!(w instanceof tf.Tensor) || !(mask instanceof tf.Tensor)) throw new ArgumentError('maskDecayedWeight: w and mask must be tf.Tensors');
  if (!tf.util.arraysEqual(w.shape, mask.shape)) throw new ArgumentError(`maskDecayedWeight: mask shape [${mask.shape.join(', ')}] differs from weight shape [${w.shape.join(', ')}]`);
  if (typeof beta !== 'number' || !(beta >= 0 && beta <= 1)) throw new ArgumentError(`maskDecayedWeight: beta must be in [0, 1], got ${String(beta)}`);
  const op = tf.customGrad((x) => ({
    value: tf.mul(x as tf.Tensor, tf.add(mask, tf.mul(tf.sub(1, mask), beta))),
    gradFunc: (dy) => dy,
  }));
  return op(w);
}

export type MaskEstimator = { kind: 'ste' } | { kind: 'sr-ste'; lambda: number } | { kind: 'progressive'; decay: number } | { kind: 'mask-decay'; beta: number };

/** W * mask with the chosen estimator's gradient. */
export function nmMaskedWeight(w: tf.Tensor, mask: tf.Tensor, estimator: MaskEstimator = { kind: 'ste' }): tf.Tensor {
  switch (estimator.kind) {
    case 'ste':
      return steMaskedWeight(w, mask);
    case 'sr-ste':
      return srSTEMaskedWeight(w, mask, estimator.lambda);
    case 'progressive':
      return progressiveMaskedWeight(w, mask, estimator.decay);
    case 'mask-decay':
      return maskDecayedWeight(w, mask, estimator.beta);
    default:
      throw new ArgumentError(`nmMaskedWeight: unknown estimator ${JSON.stringify((estimator as { kind: unknown }).kind)}`);
  }
}

/**
 * BDWP's linear layer (bidirectional weight pruning: Fang et al., "Efficient N:M Sparse DNN Training Using
 * Algorithm, Architecture, and Dataflow Co-Design", 2023; Bi-Mask, Zhang et al. 2023, separates the two
 * masks the same way): y = x (W ⊙ forwardMask)ᵀ for x [tokens, in], W [out, in]; the input gradient
 * dx = dy (W ⊙ backwardMask), so both products can run on N:M sparse hardware when forwardMask is N:M
 * along each row (groups of M inputs) and backwardMask along each column (groups of M outputs, the
 * reduction dimension of dy W). The weight gradient is dense, dyᵀ x (straight-through), plus
 * lambda · (1 − forwardMask) ⊙ W (SR-STE's decay of the forward-pruned weights; 0 turns it off).
 */
export function bidirectionalMaskedLinear(x: tf.Tensor2D, w: tf.Tensor2D, forwardMask: tf.Tensor, backwardMask: tf.Tensor, lambda = 0): tf.Tensor2D {
  const where = 'bidirectionalMaskedLinear';
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[1]) throw new ArgumentError(`${where}: x [${x.shape.join(', ')}] must be [tokens, in] for the weight [${w.shape.join(', ')}] = [out, in]`);
  for (const [name, m] of [['forwardMask', forwardMask], ['backwardMask', backwardMask]] as const) {
    if (!tf.util.arraysEqual(m.shape, w.shape)) throw new ArgumentError(`${where}: ${name} shape [${m.shape.join(', ')}] differs from weight shape [${w.shape.join(', ')}]`);
  }
  if (!(Number.isFinite(lambda) && lambda >= 0)) throw new ArgumentError(`${where}: lambda must be a finite number >= 0, got ${lambda}`);
  const op = tf.customGrad((xi, wi, save) => {
    const xt = xi as tf.Tensor2D;
    const wt = wi as tf.Tensor2D;
    (save as tf.GradSaveFunc)([xt, wt]);
    return {
      value: tf.matMul(xt, tf.mul(wt, forwardMask) as tf.Tensor2D, false, true),
      gradFunc: (dy, saved) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        const dx = tf.matMul(dy as tf.Tensor2D, tf.mul(ws, backwardMask) as tf.Tensor2D);
        let dw: tf.Tensor = tf.matMul(dy as tf.Tensor2D, xs, true, false);
        if (lambda > 0) dw = tf.add(dw, tf.mul(tf.mul(tf.sub(1, forwardMask), ws), lambda));
        return [dx, dw];
      },
    };
  });
  return op(x, w) as tf.Tensor2D;
}

export interface PeriodicNMMaskOptions extends NMMaskOptions {
  /** Recompute the mask every `every` steps (step % every === 0); 1 = every step. */
  every: number;
  /** Use a transposable N:M mask (rows and columns); axis is then ignored. */
  transposable?: boolean;
}

/**
 * Holds the current N:M mask of one weight and recomputes it from the weight every k steps, as SR-STE
 * and STE training do. `update` returns the mask tf.Tensor to use at that step (owned by this object:
 * do not dispose it; call dispose() at the end).
 */
export class PeriodicNMMask {
  readonly opts: PeriodicNMMaskOptions;
  /** Current mask as a bit-packed Mask (undefined before the first update). */
  mask: Mask | undefined;
  /** Entries that changed at the last recomputation (SR-STE's flip count). */
  lastFlips = 0;
  private tfMask: tf.Tensor | undefined;

  constructor(opts: PeriodicNMMaskOptions) {
    if (!Number.isSafeInteger(opts?.every) || opts.every < 1) throw new ArgumentError(`PeriodicNMMask: every must be a positive integer, got ${String(opts?.every)}`);
    this.opts = { ...opts };
  }

  /** Whether `update(step, ...)` recomputes. */
  due(step: number): boolean {
    return this.tfMask === undefined || step % this.opts.every === 0;
  }

  update(step: number, weight: tf.Tensor): tf.Tensor {
    if (!Number.isSafeInteger(step) || step < 0) throw new ArgumentError(`PeriodicNMMask.update: step must be a non-negative integer, got ${step}`);
    if (!this.due(step)) return this.tfMask!;
    const w = fromTf(weight) as Tensor;
    const next = this.opts.transposable ? transposableNMMask(w, this.opts).mask : nmMask(w, this.opts);
    this.lastFlips = this.mask ? count(xor(this.mask, next)) : 0;
    this.mask = next;
    this.tfMask?.dispose();
    this.tfMask = tf.keep(maskToTf(next));
    return this.tfMask;
  }

  dispose(): void {
    this.tfMask?.dispose();
    this.tfMask = undefined;
  }
}

export { AdamSOptimizer, adamsStep, distillationLoss, KeyedAdamS, rowScaledWeight } from './adams.js';
export type { AdamSFinalizeOptions, AdamSOptions, AdamSStepInput, KeyedAdamSState } from './adams.js';
export { PatchGates } from './patch-gates.js';
export type { PatchGatesOptions } from './patch-gates.js';

/**
 * N:M activation sparsity for training: along the last axis, every group of M consecutive features keeps
 * its N largest |x| (the selection of nmActivations: selectNM's rule, NaN highest, ties to the lower
 * index). The selection runs on the host (the activations are read with dataSync) and is treated as a
 * constant, so the gradient reaches only the kept entries (dy * mask).
 */
export function nmActivationOp(x: tf.Tensor, n: number, m: number): tf.Tensor {
  checkNM('nmActivationOp', { n, m });
  if (!(x instanceof tf.Tensor)) throw new ArgumentError('nmActivationOp: x must be a tf.Tensor');
  const features = x.shape[x.rank - 1];
  if (x.rank < 1 || features === undefined || features % m !== 0) {
    throw new ShapeError(`nmActivationOp: last axis of [${x.shape.join(', ')}] must be a multiple of m = ${m}`);
  }
  const op = tf.customGrad((input, save) => {
    const mask = maskToTf(nmActivationMask(fromTf(input as tf.Tensor) as Tensor, { n, m }, 'nmActivationOp'));
    (save as tf.GradSaveFunc)([mask]);
    return { value: tf.mul(input as tf.Tensor, mask), gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
  });
  return op(x);
}
