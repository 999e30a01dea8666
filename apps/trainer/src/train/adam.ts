// Adam with its state kept by our own names (not tfjs variable names, which depend on creation
// order), so a checkpoint restores it exactly in another process. The update is tfjs's AdamOptimizer
// formula: m and v moments, bias correction by beta^t, value -= lr * m̂ / (sqrt(v̂) + eps). A key reset
// mid-run (`reset`) starts over like a fresh variable: zero moments, and bias correction counted from
// its reset (t − since[key]), not from the run's first step; `resetEntries` zeroes the moments of single
// entries only (newly pruned weights), leaving t and the other entries as they are.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';
import { fusedAdamStep } from '@sparse/kernels-cpu/tfjs';

export interface AdamState {
  /** Updates applied so far. */
  t: number;
  m: Record<string, { data: Float32Array; shape: number[] }>;
  v: Record<string, { data: Float32Array; shape: number[] }>;
  /** The value of t when each reset key was last reset (keys never reset are absent: counted from 0). */
  since?: Record<string, number>;
}

/**
 * Adam keyed by name. Defaults: betas (beta1, beta2) = (0.9, 0.95), eps = 1e-8, no weight decay; no
 * default lr (each `apply` takes the schedule's lr). beta1, eps and the weight decay equal those of
 * the project's other Adams (SparseAdam and maskedAdam: 0.9, 0.999, 1e-8, 0; AdamS: 0.9, 0.999); beta2
 * differs on purpose: 0.95 is what GPT-3 (Brown et al. 2020, "Language Models are Few-Shot Learners",
 * appendix B) trains GPT models with, and what the trainer's loops pass.
 */
export class NamedAdam {
  t = 0;
  readonly #m = new Map<string, tf.Variable>();
  readonly #v = new Map<string, tf.Variable>();
  readonly #since = new Map<string, number>();

  constructor(
    readonly beta1 = 0.9,
    readonly beta2 = 0.95,
    readonly eps = 1e-8,
  ) {}

  /**
   * One update of every named variable with its gradient (gradients are not disposed). On
   * sparse-cpu every tensor is updated in place by one native call (@sparse/kernels-cpu's
   * fusedAdamStep, the same float32 operations in the same order, so the same bits); elsewhere, or
   * where a tensor's storage is shared (a variable still holding its initial tensor's storage), by
   * the tfjs ops below.
   */
  apply(updates: ReadonlyArray<{ key: string; variable: tf.Variable; grad: tf.Tensor }>, lr: number): void {
    this.t++;
    const entries = updates.map(({ key, variable, grad }) => {
      const t = this.t - (this.#since.get(key) ?? 0);
      if (!this.#m.has(key)) {
        // made inside tidy, so each moment owns its storage (the native step writes it in place)
        this.#m.set(key, tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
        this.#v.set(key, tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
      }
      return { variable, grad, m: this.#m.get(key)!, v: this.#v.get(key)!, c1: 1 - Math.pow(this.beta1, t), c2: 1 - Math.pow(this.beta2, t) };
    });
    if (fusedAdamStep(entries, { beta1: this.beta1, beta2: this.beta2, eps: this.eps, lr })) return;
    for (const { variable, grad, m, v, c1, c2 } of entries) {
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const step = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), this.eps));
        variable.assign(tf.sub(variable, tf.mul(step, lr)));
      });
    }
  }

  /**
   * Starts `keys` over as fresh variables (e.g. a tensor re-initialized mid-run): zero moments, and the
   * next update's bias correction is that of a first step (also for a key with no moments yet).
   */
  reset(keys: Iterable<string>): void {
    for (const k of keys) {
      if (typeof k !== 'string') throw new ArgumentError(`NamedAdam.reset: keys must be strings, got ${String(k)}`);
      const m = this.#m.get(k);
      if (m !== undefined) {
        tf.tidy(() => {
          m.assign(tf.zerosLike(m));
          this.#v.get(k)!.assign(tf.zerosLike(m));
        });
      }
      this.#since.set(k, this.t);
    }
  }

  /**
   * Zeroes the moments of single entries of `key` (e.g. weights a mask update just pruned): `keep` is a
   * 0/1 tensor of the variable's shape, and m, v become exactly +0 where it is 0, so those entries start
   * over with zero moments while the others and the bias correction (t) go on unchanged. With zero
   * moments and a zero gradient (a forward through W ⊙ M), Adam's step on those entries is exactly 0.
   * A key with no moments yet has nothing to reset.
   */
  resetEntries(key: string, keep: tf.Tensor): void {
    if (typeof key !== 'string') throw new ArgumentError(`NamedAdam.resetEntries: key must be a string, got ${String(key)}`);
    const m = this.#m.get(key);
    if (m === undefined) return;
    if (keep.shape.length !== m.shape.length || keep.shape.some((d, i) => d !== m.shape[i])) {
      throw new ArgumentError(`NamedAdam.resetEntries: keep for '${key}' has shape [${keep.shape.join(', ')}], its moments [${m.shape.join(', ')}]`);
    }
    const v = this.#v.get(key)!;
    tf.tidy(() => {
      // where, not a product: -m · 0 would leave -0 behind
      const kept = tf.notEqual(keep, 0);
      const zero = tf.zerosLike(m);
      m.assign(tf.where(kept, m, zero));
      v.assign(tf.where(kept, v, zero));
    });
  }

  /**
   * Replaces the moments of one key by `remap(m)` and `remap(v)` (same step count t, same reset point):
   * a variable whose entries were re-laid out (a packed layer repacked to a new mask). A key with no
   * moments yet has nothing to remap.
   */
  remapMoments(key: string, remap: (moments: Float32Array) => Float32Array): void {
    const m = this.#m.get(key);
    if (m === undefined) return;
    for (const [map, old] of [[this.#m, m], [this.#v, this.#v.get(key)!]] as const) {
      const next = remap(old.dataSync() as Float32Array);
      map.set(key, tf.tidy(() => tf.variable(tf.tensor1d(next), false)));
      old.dispose();
    }
  }

  /** When each reset key was last reset (see AdamState.since). */
  resets(): Record<string, number> {
    return Object.fromEntries(this.#since);
  }

  /** Restores reset points (a checkpoint that carried them apart from the moments). */
  setResets(since: Record<string, number>): void {
    for (const [k, s] of Object.entries(since)) {
      if (!Number.isInteger(s) || s < 0 || s > this.t) throw new ArgumentError(`Adam state: since['${k}'] must be an integer in [0, t = ${this.t}], got ${String(s)}`);
      this.#since.set(k, s);
    }
  }

  state(): AdamState {
    const dump = (map: Map<string, tf.Variable>) =>
      Object.fromEntries([...map].map(([k, t]) => [k, { data: Float32Array.from(t.dataSync() as Float32Array), shape: [...t.shape] }]));
    return { t: this.t, m: dump(this.#m), v: dump(this.#v), ...(this.#since.size > 0 ? { since: this.resets() } : {}) };
  }

  load(state: AdamState): void {
    if (!Number.isInteger(state.t) || state.t < 0) throw new ArgumentError(`Adam state: t must be a non-negative integer, got ${state.t}`);
    this.dispose();
    this.t = state.t;
    this.setResets(state.since ?? {});
    for (const [k, x] of Object.entries(state.m)) this.#m.set(k, tf.tidy(() => tf.variable(tf.tensor(x.data, x.shape), false)));
    for (const [k, x] of Object.entries(state.v)) this.#v.set(k, tf.tidy(() => tf.variable(tf.tensor(x.data, x.shape), false)));
  }

  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
    this.#m.clear();
    this.#v.clear();
    this.#since.clear();
  }
}
