// CAST's AdamS (Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware Training
// for LLMs", 2025) as a tfjs optimizer. What is implemented (the paper's exact decay equation was not
// available to us; this follows its description):
//   - per sparsified weight, an N:M mask from |W| (N largest |w| of each group of M), recomputed every
//     `every` steps (the paper uses T1 = 10);
//   - the gradient of the currently pruned entries gets an L1 term: g' = g + lambda_t * (1 - mask) * sign(W);
//   - g' goes through Adam's moments (m, v, bias correction) as usual. Because the decay passes through
//     Adam's 1 / sqrt(v) normalization it is adaptive: every pruned weight is pulled toward zero at a rate
//     set by its own gradient scale, so all layers sparsify at a similar pace;
//   - lambda_t is a constant or a schedule of the step;
//   - finalize(): mask the weights (hard N:M) and, optionally, weight scaling after pruning — each output
//     row's kept entries rescaled to the row's pre-pruning L2 norm (rescaleKeptRows).
// The training loss is computed on the dense weights (CAST is continuous: no mask in the forward pass).
import { applyMask, cloneMask, count, validateMask, xor, type Mask } from '@sparse/masks';
import { maskFromTf, maskToTf } from '@sparse/masks/tfjs';
import { ArgumentError, type Tensor } from '@sparse/tensor';
import { fromTf, toTf } from '@sparse/tensor/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { checkNM, type NMAxis } from './internal.js';
import { nmMask } from './mask.js';
import { rescaleKeptRows } from './scaling.js';

export interface AdamSOptions {
  /** Learning rate (no default). */
  lr: number;
  /** Adam's betas (defaults 0.9, 0.999, as every Adam of the project). */
  beta1?: number;
  beta2?: number;
  /**
   * Adam's eps. Default: the tfjs backend's epsilon (1e-7 in float32), as tf.train.adam, whose
   * optimizer this extends; it differs from the 1e-8 of the project's other Adams.
   */
  eps?: number;
  /** N:M pattern the decay pushes toward. */
  n: number;
  m: number;
  axis?: NMAxis;
  /** Variables (or their names) to sparsify; other variables get plain Adam. */
  variables: ReadonlyArray<tf.Variable | string>;
  /** L1 decay strength on pruned entries: a constant or a function of the step (0-based). */
  lambda: number | ((step: number) => number);
  /** Recompute the masks from |W| every `every` steps (default 10, CAST's T1). */
  every?: number;
  /**
   * Starting masks by variable name, used until the first recomputation (default: from |W| at step 0): a
   * Mask of @sparse/masks, or a tf.Tensor whose non-zero entries are kept.
   */
  masks?: Readonly<Record<string, Mask | tf.Tensor>>;
}

export interface AdamSFinalizeOptions {
  /** Rescale kept entries so each output row keeps its pre-pruning L2 norm (default false). */
  scale?: boolean;
}

// What tf.AdamOptimizer.applyGradients accepts: gradients by variable name, as a map or a list.
type AdamGradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

interface SparseState {
  mask: tf.Tensor | undefined;
  bits: Mask | undefined;
}

/**
 * AdamS's gradient before Adam's moments: g + lambda * (1 - mask) * sign(W), the L1 pull of the pruned
 * entries toward zero. For loops with their own Adam (the trainer's); AdamSOptimizer applies it itself.
 */
export function adamsDecayedGradient(g: tf.Tensor, w: tf.Tensor, mask: tf.Tensor, lambda: number): tf.Tensor {
  if (!tf.util.arraysEqual(w.shape, mask.shape) || !tf.util.arraysEqual(w.shape, g.shape)) {
    throw new ArgumentError(`adamsDecayedGradient: gradient [${g.shape.join(', ')}], weight [${w.shape.join(', ')}] and mask [${mask.shape.join(', ')}] must have one shape`);
  }
  if (lambda === 0) return g;
  return tf.tidy(() => tf.add(g, tf.mul(tf.mul(tf.sub(1, mask), tf.sign(w)), lambda)));
}

/** Adam with an adaptive L1 decay of the currently pruned N:M entries (CAST's AdamS). */
export class AdamSOptimizer extends tf.AdamOptimizer {
  static override get className(): string {
    return 'AdamS';
  }

  readonly n: number;
  readonly m: number;
  readonly axis: NMAxis;
  readonly every: number;
  /** Steps applied so far. */
  step = 0;
  /** Mask entries that changed at the last recomputation, summed over variables. */
  lastFlips = 0;
  private readonly lambda: number | ((step: number) => number);
  private readonly sparse = new Map<string, SparseState>();

  constructor(opts: AdamSOptions) {
    const where = 'AdamSOptimizer';
    if (!opts || typeof opts !== 'object') throw new ArgumentError(`${where}: options object required`);
    const { lr, beta1 = 0.9, beta2 = 0.999 } = opts;
    for (const [name, v] of [['lr', lr], ['beta1', beta1], ['beta2', beta2]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArgumentError(`${where}: ${name} must be a finite number, got ${String(v)}`);
    }
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new ArgumentError(`${where}: beta1 and beta2 must be in [0, 1), got ${beta1}, ${beta2}`);
    if (opts.eps !== undefined && !(opts.eps > 0 && Number.isFinite(opts.eps))) throw new ArgumentError(`${where}: eps must be a positive number, got ${String(opts.eps)}`);
    super(lr, beta1, beta2, opts.eps ?? null as unknown as number);
    this.axis = checkNM(where, opts);
    this.n = opts.n;
    this.m = opts.m;
    this.every = opts.every ?? 10;
    if (!Number.isSafeInteger(this.every) || this.every < 1) throw new ArgumentError(`${where}: every must be a positive integer, got ${String(opts.every)}`);
    if (typeof opts.lambda !== 'function' && (typeof opts.lambda !== 'number' || !Number.isFinite(opts.lambda) || opts.lambda < 0)) {
      throw new ArgumentError(`${where}: lambda must be a non-negative number or a function of the step, got ${String(opts.lambda)}`);
    }
    this.lambda = opts.lambda;
    if (!Array.isArray(opts.variables) || opts.variables.length === 0) throw new ArgumentError(`${where}: variables must list at least one variable to sparsify`);
    for (const v of opts.variables) {
      const name = typeof v === 'string' ? v : v?.name;
      if (typeof name !== 'string') throw new ArgumentError(`${where}: variables must be tf.Variables or names`);
      this.sparse.set(name, { mask: undefined, bits: undefined });
    }
    for (const [name, mask] of Object.entries(opts.masks ?? {})) {
      const state = this.sparse.get(name);
      if (!state) throw new ArgumentError(`${where}: masks has "${name}", which is not in variables`);
      if (mask instanceof tf.Tensor) state.bits = maskFromTf(mask);
      else {
        validateMask(mask, where, `masks["${name}"] (a Mask or a tf.Tensor)`);
        state.bits = cloneMask(mask);
      }
      state.mask = tf.keep(maskToTf(state.bits));
    }
  }

  /** The decay strength at a step. */
  lambdaAt(step: number): number {
    const l = typeof this.lambda === 'function' ? this.lambda(step) : this.lambda;
    if (typeof l !== 'number' || !Number.isFinite(l) || l < 0) throw new ArgumentError(`AdamSOptimizer: lambda(${step}) must be a finite number >= 0, got ${String(l)}`);
    return l;
  }

  /** The current mask of a sparsified variable (1 = kept; owned by the optimizer), or undefined before its first step. */
  getMask(name: string): tf.Tensor | undefined {
    return this.sparseState(name).mask;
  }

  private sparseState(name: string): SparseState {
    const s = this.sparse.get(name);
    if (!s) throw new ArgumentError(`AdamSOptimizer: "${name}" is not a sparsified variable`);
    return s;
  }

  private variableNamed(name: string): tf.Variable {
    const v = tf.engine().registeredVariables[name];
    if (!v) throw new ArgumentError(`AdamSOptimizer: no registered variable named "${name}"`);
    return v;
  }

  private recompute(name: string, state: SparseState): number {
    const w = fromTf(this.variableNamed(name)) as Tensor;
    const next = nmMask(w, { n: this.n, m: this.m, axis: this.axis });
    const flips = state.bits ? count(xor(state.bits, next)) : 0;
    state.mask?.dispose();
    state.bits = next;
    state.mask = tf.keep(maskToTf(next));
    return flips;
  }

  override applyGradients(variableGradients: AdamGradients): void {
    const recomputeDue = this.step > 0 && this.step % this.every === 0;
    let flips = 0;
    let recomputed = false;
    for (const [name, state] of this.sparse) {
      const present = Array.isArray(variableGradients) ? variableGradients.some((g) => g.name === name) : name in variableGradients;
      if (!present) continue;
      if (state.mask === undefined || recomputeDue) {
        flips += this.recompute(name, state);
        recomputed = true;
      }
    }
    if (recomputed) this.lastFlips = flips;
    const lambda = this.lambdaAt(this.step);
    const created: tf.Tensor[] = [];
    // g + lambda * (1 - mask) * sign(W) for the sparsified variables; others pass through unchanged.
    const decayed = (name: string, g: tf.Tensor): tf.Tensor => {
      const state = this.sparse.get(name);
      if (!state || lambda === 0) return g;
      const w = this.variableNamed(name);
      if (!tf.util.arraysEqual(w.shape, state.mask!.shape)) {
        throw new ArgumentError(`AdamSOptimizer: mask of "${name}" has shape [${state.mask!.shape.join(', ')}], variable has [${w.shape.join(', ')}]`);
      }
      const out = adamsDecayedGradient(g, w, state.mask!, lambda);
      created.push(out);
      return out;
    };
    const modified = Array.isArray(variableGradients)
      ? variableGradients.map((g) => ({ name: g.name, tensor: decayed(g.name, g.tensor) }))
      : Object.fromEntries(Object.entries(variableGradients as Record<string, tf.Tensor>).map(([name, g]) => [name, decayed(name, g)]));
    try {
      super.applyGradients(modified as AdamGradients);
    } finally {
      tf.dispose(created);
    }
    this.step++;
  }

  /**
   * End of training: recompute each mask from |W|, zero the pruned entries (hard N:M) and, with
   * `scale`, rescale each output row's kept entries to the row's pre-pruning L2 norm. Returns the masks.
   */
  finalize(opts: AdamSFinalizeOptions = {}): Record<string, Mask> {
    const out: Record<string, Mask> = {};
    for (const [name, state] of this.sparse) {
      this.recompute(name, state);
      const v = this.variableNamed(name);
      const w = fromTf(v) as Tensor;
      const pruned = opts.scale ? rescaleKeptRows(w, state.bits!).weight : applyMask(state.bits!, w);
      tf.tidy(() => v.assign(toTf(pruned)));
      out[name] = state.bits!;
    }
    return out;
  }

  override dispose(): void {
    for (const s of this.sparse.values()) {
      s.mask?.dispose();
      s.mask = undefined;
    }
    super.dispose();
  }
}
