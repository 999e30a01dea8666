import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { SparseAdam } from './adam.js';
import { gatherAtSupport, sparseDelta, sparseDeltaToDense } from './delta.js';

/** Textbook dense Adam(W) in float64 over a full matrix, the reference. */
class DenseAdam {
  m: Float64Array;
  v: Float64Array;
  t = 0;
  constructor(
    n: number,
    readonly lr: number,
    readonly b1 = 0.9,
    readonly b2 = 0.999,
    readonly eps = 1e-8,
    readonly wd = 0,
  ) {
    this.m = new Float64Array(n);
    this.v = new Float64Array(n);
  }
  step(x: Float64Array, g: ArrayLike<number>, active: (k: number) => boolean, lr = this.lr): void {
    this.t++;
    for (let k = 0; k < x.length; k++) {
      // A masked dense optimizer: entries outside the support see no gradient and no decay.
      if (!active(k)) continue;
      this.m[k] = this.b1 * this.m[k]! + (1 - this.b1) * g[k]!;
      this.v[k] = this.b2 * this.v[k]! + (1 - this.b2) * g[k]! ** 2;
      const mh = this.m[k]! / (1 - this.b1 ** this.t);
      const vh = this.v[k]! / (1 - this.b2 ** this.t);
      x[k] = x[k]! - lr * (mh / (Math.sqrt(vh) + this.eps) + this.wd * x[k]!);
    }
  }
}

describe('SparseAdam', () => {
  it('equals a dense Adam on the scattered delta restricted to the support', () => {
    for (const wd of [0, 0.1]) {
      const rng = new Random(7);
      const [o, i] = [6, 9];
      const delta = sparseDelta([o, i], rng.sample(12, o * i));
      const adam = new SparseAdam(12, { lr: 0.05, weightDecay: wd });
      const ref = new DenseAdam(o * i, 0.05, 0.9, 0.999, 1e-8, wd);
      const x = new Float64Array(o * i);
      const support = new Set(delta.indices);
      for (let s = 0; s < 25; s++) {
        const g = Float64Array.from({ length: o * i }, () => rng.normal());
        adam.step(delta.values, gatherAtSupport(g, delta.indices));
        ref.step(x, g, (k) => support.has(k));
      }
      const dense = sparseDeltaToDense(delta).data;
      for (let k = 0; k < o * i; k++) {
        if (support.has(k)) expect(dense[k]).toBeCloseTo(x[k]!, 5);
        else expect(x[k]).toBe(0);
      }
      expect(Math.max(...delta.values.map(Math.abs))).toBeGreaterThan(0.1);
    }
  });

  it('a per-step lr (a schedule) equals the dense reference stepping with the same lrs', () => {
    const rng = new Random(8);
    const delta = sparseDelta([5, 7], rng.sample(10, 35));
    const adam = new SparseAdam(10, { lr: 0.5, weightDecay: 0.05 });
    const ref = new DenseAdam(35, 0.5, 0.9, 0.999, 1e-8, 0.05);
    const x = new Float64Array(35);
    const support = new Set(delta.indices);
    for (let s = 1; s <= 20; s++) {
      const lr = s <= 5 ? (0.05 * s) / 5 : 0.05 * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * (s - 5)) / 15)));
      const g = Float64Array.from({ length: 35 }, () => rng.normal());
      adam.step(delta.values, gatherAtSupport(g, delta.indices), lr);
      ref.step(x, g, (k) => support.has(k), lr);
    }
    const dense = sparseDeltaToDense(delta).data;
    for (const k of support) expect(dense[k]).toBeCloseTo(x[k]!, 5);
    expect(Math.max(...delta.values.map(Math.abs))).toBeGreaterThan(0.05);
    expect(() => adam.step(delta.values, new Float32Array(10), -1)).toThrow(/lr must be finite and >= 0/);
  });

  it('load() restores a state exactly, as a copy, and checks it', () => {
    const a = new SparseAdam(3, { lr: 0.1 });
    const x = new Float32Array([1, 2, 3]);
    a.step(x, [0.5, -1, 2]);
    const saved = a.state();
    const b = new SparseAdam(7, { lr: 0.1 });
    b.load(saved);
    saved.m.fill(9);
    const y = x.slice();
    a.step(x, [1, 1, -1]);
    b.step(y, [1, 1, -1]);
    expect(y).toEqual(x);
    expect(b.state()).toEqual(a.state());
    expect(() => b.load({ step: 1, m: new Float32Array(2), v: new Float32Array(3) })).toThrow(/m has 2 entries, v has 3/);
    expect(() => b.load({ step: -2, m: new Float32Array(0), v: new Float32Array(0) })).toThrow(/step must be/);
  });

  it('remap keeps survivors\' moments and starts new entries from zero', () => {
    const adam = new SparseAdam(4, { lr: 0.1 });
    const x = new Float32Array(4);
    adam.step(x, [1, 2, 3, 4]);
    const before = adam.state();
    adam.remap(Int32Array.of(3, -1, 0));
    expect([...adam.m]).toEqual([before.m[3], 0, before.m[0]]);
    expect([...adam.v]).toEqual([before.v[3], 0, before.v[0]]);
    expect(adam.stepCount).toBe(1);
    expect(() => adam.remap(Int32Array.of(5))).toThrow(/outside \[0, 3\)/);
  });

  it('validates sizes and hyperparameters', () => {
    expect(() => new SparseAdam(2, { beta1: 1 })).toThrow(ArgumentError);
    expect(() => new SparseAdam(2, { lr: -1 })).toThrow(/lr must be/);
    expect(() => new SparseAdam(2).step(new Float32Array(3), [1, 2, 3])).toThrow(ShapeError);
  });
});
