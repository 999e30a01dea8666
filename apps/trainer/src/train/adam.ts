// Adam with its state kept by our own names (not tfjs variable names, which depend on creation
// order), so a checkpoint restores it exactly in another process. The update is tfjs's AdamOptimizer
// formula: m and v moments, bias correction by beta^t, value -= lr * m̂ / (sqrt(v̂) + eps).

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';

export interface AdamState {
  /** Updates applied so far. */
  t: number;
  m: Record<string, { data: Float32Array; shape: number[] }>;
  v: Record<string, { data: Float32Array; shape: number[] }>;
}

export class NamedAdam {
  t = 0;
  readonly #m = new Map<string, tf.Variable>();
  readonly #v = new Map<string, tf.Variable>();

  constructor(
    readonly beta1 = 0.9,
    readonly beta2 = 0.95,
    readonly eps = 1e-8,
  ) {}

  /** One update of every named variable with its gradient (gradients are not disposed). */
  apply(updates: ReadonlyArray<{ key: string; variable: tf.Variable; grad: tf.Tensor }>, lr: number): void {
    this.t++;
    const c1 = 1 - Math.pow(this.beta1, this.t);
    const c2 = 1 - Math.pow(this.beta2, this.t);
    for (const { key, variable, grad } of updates) {
      if (!this.#m.has(key)) {
        this.#m.set(key, tf.variable(tf.zerosLike(variable), false));
        this.#v.set(key, tf.variable(tf.zerosLike(variable), false));
      }
      const m = this.#m.get(key)!;
      const v = this.#v.get(key)!;
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

  state(): AdamState {
    const dump = (map: Map<string, tf.Variable>) =>
      Object.fromEntries([...map].map(([k, t]) => [k, { data: Float32Array.from(t.dataSync() as Float32Array), shape: [...t.shape] }]));
    return { t: this.t, m: dump(this.#m), v: dump(this.#v) };
  }

  load(state: AdamState): void {
    if (!Number.isInteger(state.t) || state.t < 0) throw new ArgumentError(`Adam state: t must be a non-negative integer, got ${state.t}`);
    this.dispose();
    this.t = state.t;
    for (const [k, x] of Object.entries(state.m)) this.#m.set(k, tf.variable(tf.tensor(x.data, x.shape), false));
    for (const [k, x] of Object.entries(state.v)) this.#v.set(k, tf.variable(tf.tensor(x.data, x.shape), false));
  }

  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
    this.#m.clear();
    this.#v.clear();
  }
}
