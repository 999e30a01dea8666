// CAST (Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware Training for
// Large Language Models", 2025): its sparsity-aware optimizer AdamS, its learned weight scaling and its
// dense self-distillation, in tfjs.
//
// AdamS (the paper's AdamS update in its method section; we could not check the equation's number
// against the paper's text, so none is cited here). Per sparsified weight W with the current N:M mask M
// (the N largest |w| of each group of M kept, recomputed every T1 = `every` steps, 10 in the paper):
//     m_t = beta1 m_{t-1} + (1 - beta1) g_t                      (the loss gradient only)
//     u_t = m_t + lambda_t (1 - M) ⊙ sign(W_t)                   (L1 decay, pruned entries only)
//     v_t = beta2 v_{t-1} + (1 - beta2) u_t²
//     W_{t+1} = W_t - lr / (1 - beta1^t) · u_t / (sqrt(v_t / (1 - beta2^t)) + eps)
// The decay skips the first moment (it acts at once, not through momentum) and enters the second, so
// it is normalized by each entry's own update scale: the adaptive decay that sparsifies every layer at
// a similar pace. On a sparsified tensor the second moment tracks u² (momentum plus decay), not g², so
// even at lambda = 0 its steps are not Adam's (at t = 1 the step is lr / (1 - beta1) · sign(g) where
// Adam's is lr · sign(g)); tensors that are not sparsified take Adam. lambda_t is a constant or a schedule of the step (the trainer ramps it linearly).
// differs: the placement of the decay (after the first moment, inside the second) follows the authors'
// released AdamS update of their earlier work (Huang et al., "Pruning Large Language Models with
// Semi-Structural Adaptive Sparse Training", AAAI 2025), which CAST's description matches; the decay is
// L1 (sign(W)) as CAST states, where that earlier code decayed by W itself.
//
// Weight scaling: one learned factor per output row, W_eff = diag(s) · W, s initialized to 1 and trained
// with the weights (plain Adam, no decay), merged into W at the end: s · (M ⊙ W) keeps the N:M pattern.
// differs: the paper's scaling module is described as compensating the decay's magnitude loss while
// keeping the pattern; one factor per output row is our reading of it.
//
// Self-distillation: the dense model at the start of the stage, frozen, is the teacher;
// distillationLoss is T² · mean over tokens of KL(softmax(teacher / T) ‖ softmax(student / T)).
// finalize({ scale: true }) keeps the earlier post-hoc alternative (each row's kept entries rescaled to
// its pre-pruning L2 norm, rescaleKeptRows) for callers without a learned scale.
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

/** What one AdamS update of one tensor reads. */
export interface AdamSStepInput {
  w: tf.Tensor;
  g: tf.Tensor;
  /** First and second moments before the step. */
  m: tf.Tensor;
  v: tf.Tensor;
  /** 1 = kept; absent = no decay (plain Adam). */
  mask?: tf.Tensor;
  lambda: number;
  lr: number;
  /** 1-based update count (bias correction). */
  t: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/**
 * One AdamS update of a sparsified tensor (see the top of this file): m = b1 m + (1 - b1) g;
 * u = m + lambda (1 - mask) sign(W); v = b2 v + (1 - b2) u²; W -= lr / (1 - b1^t) · u / (sqrt(v / (1 - b2^t)) + eps).
 * Without a mask (a tensor that is not sparsified) it is Adam (v from g²). Returns new tensors (the
 * caller assigns and disposes them).
 */
export function adamsStep(a: AdamSStepInput): { w: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const shapes = [a.g, a.m, a.v, ...(a.mask ? [a.mask] : [])];
  if (shapes.some((x) => !tf.util.arraysEqual(x.shape, a.w.shape))) {
    throw new ArgumentError(`adamsStep: weight [${a.w.shape.join(', ')}], gradient, moments and mask must have one shape, got ${shapes.map((x) => `[${x.shape.join(', ')}]`).join(', ')}`);
  }
  if (!(Number.isFinite(a.lambda) && a.lambda >= 0)) throw new ArgumentError(`adamsStep: lambda must be a finite number >= 0, got ${a.lambda}`);
  if (!(Number.isSafeInteger(a.t) && a.t >= 1)) throw new ArgumentError(`adamsStep: t must be a positive integer, got ${a.t}`);
  return tf.tidy(() => {
    const m = tf.add(tf.mul(a.m, a.beta1), tf.mul(a.g, 1 - a.beta1));
    // sparsified: u = m + decay, v from u²; otherwise Adam: u = m, v from g²
    const u = a.mask ? tf.add(m, tf.mul(tf.mul(tf.sub(1, a.mask), tf.sign(a.w)), a.lambda)) : m;
    const v = tf.add(tf.mul(a.v, a.beta2), tf.mul(tf.square(a.mask ? u : a.g), 1 - a.beta2));
    const denom = tf.add(tf.sqrt(tf.div(v, 1 - Math.pow(a.beta2, a.t))), a.eps);
    const w = tf.sub(a.w, tf.mul(tf.div(u, denom), a.lr / (1 - Math.pow(a.beta1, a.t))));
    return { w, m, v };
  });
}

/** Plain-JSON state of a KeyedAdamS: t and each key's moments. */
export interface KeyedAdamSState {
  t: number;
  m: Record<string, { data: Float32Array; shape: number[] }>;
  v: Record<string, { data: Float32Array; shape: number[] }>;
}

/**
 * AdamS with its moments kept by name, so a checkpoint restores it exactly: `apply` counts one update
 * (t + 1) and updates every listed variable by adamsStep, with decay where a mask is given.
 */
export class KeyedAdamS {
  t = 0;
  readonly #m = new Map<string, tf.Variable>();
  readonly #v = new Map<string, tf.Variable>();

  constructor(
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new ArgumentError(`KeyedAdamS: beta1 and beta2 must be in [0, 1), got ${beta1}, ${beta2}`);
    if (!(eps > 0 && Number.isFinite(eps))) throw new ArgumentError(`KeyedAdamS: eps must be a positive number, got ${eps}`);
  }

  apply(updates: ReadonlyArray<{ key: string; variable: tf.Variable; grad: tf.Tensor; mask?: tf.Tensor | undefined; lambda?: number }>, lr: number): void {
    this.t++;
    for (const { key, variable, grad, mask, lambda } of updates) {
      if (!this.#m.has(key)) {
        this.#m.set(key, tf.variable(tf.zerosLike(variable), false));
        this.#v.set(key, tf.variable(tf.zerosLike(variable), false));
      }
      const m = this.#m.get(key)!;
      const v = this.#v.get(key)!;
      const r = adamsStep({ w: variable, g: grad, m, v, ...(mask ? { mask } : {}), lambda: lambda ?? 0, lr, t: this.t, beta1: this.beta1, beta2: this.beta2, eps: this.eps });
      m.assign(r.m);
      v.assign(r.v);
      variable.assign(r.w);
      tf.dispose([r.m, r.v, r.w]);
    }
  }

  state(): KeyedAdamSState {
    const read = (map: Map<string, tf.Variable>) => Object.fromEntries([...map].map(([k, x]) => [k, { data: Float32Array.from(x.dataSync() as Float32Array), shape: [...x.shape] }]));
    return { t: this.t, m: read(this.#m), v: read(this.#v) };
  }

  load(state: KeyedAdamSState): void {
    if (!state || !Number.isSafeInteger(state.t) || state.t < 0) throw new ArgumentError(`KeyedAdamS.load: t must be a non-negative integer, got ${String(state?.t)}`);
    this.dispose();
    this.t = state.t;
    for (const [k, x] of Object.entries(state.m)) {
      const v = state.v[k];
      if (!v) throw new ArgumentError(`KeyedAdamS.load: "${k}" has a first moment and no second`);
      this.#m.set(k, tf.variable(tf.tensor(x.data, x.shape), false));
      this.#v.set(k, tf.variable(tf.tensor(v.data, v.shape), false));
    }
  }

  dispose(): void {
    for (const x of [...this.#m.values(), ...this.#v.values()]) x.dispose();
    this.#m.clear();
    this.#v.clear();
  }
}

/** CAST's weight scaling: diag(scale) · W for W [rows, cols] and scale [rows]; gradients reach both. */
export function rowScaledWeight(w: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  if (w.rank !== 2 || scale.rank !== 1 || scale.shape[0] !== w.shape[0]) {
    throw new ArgumentError(`rowScaledWeight: scale [${scale.shape.join(', ')}] must have one entry per row of the weight [${w.shape.join(', ')}]`);
  }
  return tf.mul(w, tf.reshape(scale, [w.shape[0]!, 1]));
}

/**
 * Distillation from a teacher's logits [tokens, vocab]: T² · mean over tokens of
 * KL(softmax(teacher / T) ‖ softmax(student / T)). Take gradients with respect to the student (the teacher is a constant).
 */
export function distillationLoss(student: tf.Tensor, teacher: tf.Tensor, temperature = 2): tf.Scalar {
  if (!tf.util.arraysEqual(student.shape, teacher.shape) || student.rank !== 2) throw new ArgumentError(`distillationLoss: student [${student.shape.join(', ')}] and teacher [${teacher.shape.join(', ')}] logits must both be [tokens, vocab]`);
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new ArgumentError(`distillationLoss: temperature must be a positive number, got ${temperature}`);
  return tf.tidy(() => {
    const lt = tf.logSoftmax(tf.div(teacher, temperature));
    const ls = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.sum(tf.mul(tf.exp(lt), tf.sub(lt, ls)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}

/** CAST's AdamS as a tf optimizer: the listed variables take adamsStep with their current N:M masks, the others tf's Adam. */
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
  /** The AdamS moments of the sparsified variables. */
  private readonly adams: KeyedAdamS;

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
    this.adams = new KeyedAdamS(beta1, beta2, this.epsilon);
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
    const list = Array.isArray(variableGradients)
      ? variableGradients.map((g) => ({ name: g.name, tensor: g.tensor }))
      : Object.entries(variableGradients as Record<string, tf.Tensor>).map(([name, tensor]) => ({ name, tensor }));
    // the sparsified variables take the AdamS update (own moments), the others tf's Adam
    const sparse = list.filter((g) => this.sparse.has(g.name));
    const plain = list.filter((g) => !this.sparse.has(g.name));
    const updates = sparse.map((g) => {
      const w = this.variableNamed(g.name);
      const mask = this.sparse.get(g.name)!.mask!;
      if (!tf.util.arraysEqual(w.shape, mask.shape)) {
        throw new ArgumentError(`AdamSOptimizer: mask of "${g.name}" has shape [${mask.shape.join(', ')}], variable has [${w.shape.join(', ')}]`);
      }
      return { key: g.name, variable: w, grad: g.tensor, mask, lambda };
    });
    if (updates.length > 0) this.adams.apply(updates, this.learningRate);
    if (plain.length > 0) super.applyGradients(Array.isArray(variableGradients) ? plain : (Object.fromEntries(plain.map((g) => [g.name, g.tensor])) as AdamGradients));
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
    this.adams.dispose();
    super.dispose();
  }
}
