// The multi-tensor Adam of 'sparse-cpu' against the tfjs composition it replaces: the same bits for
// parameters and moments over several steps, tensors of odd sizes (one large enough to be split
// over threads), per-tensor bias corrections; it declines (changing nothing) where an in-place write
// would be wrong; bad arguments are named.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { fusedAdamStep, SPARSE_CPU_BACKEND, sumOfSquares, type NativeFusedAdam } from './tfjs.js';

useQuietCPUBackend();

const nativeAdam = status.available ? (status.addon as unknown as { fusedAdam?: NativeFusedAdam }).fusedAdam : undefined;
const suite = nativeSuite(status.available ? (typeof nativeAdam === 'function' ? undefined : 'the addon has no fusedAdam (stale build?)') : status.reason);

const SIZES = [1, 7, 33, 1000, 70001];
const B1 = 0.9;
const B2 = 0.95;
const EPS = 1e-8;

function randn(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  new Random(seed).fillNormal(a, 0, scale);
  return a;
}

/** The tfjs composition (as a named Adam writes it) on one tensor. */
function composed(p: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, c1: number, c2: number, lr: number): void {
  tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, B1), tf.mul(g, 1 - B1));
    const v1 = tf.add(tf.mul(v, B2), tf.mul(tf.square(g), 1 - B2));
    m.assign(m1);
    v.assign(v1);
    const step = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), EPS));
    p.assign(tf.sub(p, tf.mul(step, lr)));
  });
}

function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : a.length;
}

describe('fusedAdamStep off sparse-cpu', () => {
  it('declines on tfjs-backend-cpu and changes nothing', async () => {
    await tf.setBackend('cpu');
    const p = tf.variable(tf.ones([3]), false);
    const m = tf.variable(tf.zeros([3]), false);
    const v = tf.variable(tf.zeros([3]), false);
    expect(fusedAdamStep([{ variable: p, grad: tf.ones([3]), m, v, c1: 0.1, c2: 0.05 }], { beta1: B1, beta2: B2, eps: EPS, lr: 0.1 })).toBe(false);
    expect(Array.from(p.dataSync())).toEqual([1, 1, 1]);
  });

  it('names a mismatched tensor or a bad scalar', () => {
    const p = tf.variable(tf.ones([3]), false);
    const m = tf.variable(tf.zeros([3]), false);
    const v = tf.variable(tf.zeros([3]), false);
    const opts = { beta1: B1, beta2: B2, eps: EPS, lr: 0.1 };
    expect(() => fusedAdamStep([{ variable: p, grad: tf.ones([4]), m, v, c1: 0.1, c2: 0.05 }], opts)).toThrow(ArgumentError);
    expect(() => fusedAdamStep([{ variable: p, grad: tf.ones([4]), m, v, c1: 0.1, c2: 0.05 }], opts)).toThrow(/entries\[0\]\.grad has shape \[4\]/);
    expect(() => fusedAdamStep([{ variable: p, grad: tf.ones([3]), m, v, c1: 0, c2: 0.05 }], opts)).toThrow(/entries\[0\]\.c1/);
    expect(() => fusedAdamStep([{ variable: p, grad: tf.ones([3]), m, v, c1: 0.1, c2: 0.05 }], { ...opts, lr: NaN })).toThrow(/lr must be a finite number/);
  });
});

suite('fusedAdamStep on sparse-cpu (native, in place)', () => {
  it('equals the tfjs composition bit for bit over steps, with per-tensor corrections', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    // made inside tidy: the initial tensors are disposed, so each variable owns its storage alone
    const make = () => SIZES.map((n, i) => tf.tidy(() => ({ p: tf.variable(tf.tensor1d(randn(n, 10 + i)), false), m: tf.variable(tf.zeros([n]), false), v: tf.variable(tf.zeros([n]), false) })));
    const fused = make();
    const plain = make();
    for (let step = 1; step <= 4; step++) {
      const lr = 0.01 / step;
      const grads = SIZES.map((n, i) => tf.tensor1d(randn(n, 100 * step + i, 0.1 * (i + 1))));
      // tensor i counts its steps from a reset at step i (as a named Adam's reset keys do)
      const t = (i: number) => Math.max(1, step - i);
      const entries = fused.map((f, i) => ({ variable: f.p, grad: grads[i]!, m: f.m, v: f.v, c1: 1 - Math.pow(B1, t(i)), c2: 1 - Math.pow(B2, t(i)) }));
      expect(fusedAdamStep(entries, { beta1: B1, beta2: B2, eps: EPS, lr }), `step ${step}`).toBe(true);
      plain.forEach((q, i) => composed(q.p, grads[i]!, q.m, q.v, 1 - Math.pow(B1, t(i)), 1 - Math.pow(B2, t(i)), lr));
      for (let i = 0; i < SIZES.length; i++) {
        for (const field of ['p', 'm', 'v'] as const) {
          const got = fused[i]![field].dataSync() as Float32Array;
          const want = plain[i]![field].dataSync() as Float32Array;
          const at = firstDifference(got, want);
          if (at >= 0) expect.fail(`step ${step}, tensor ${i} (${SIZES[i]}), ${field}[${at}]: ${got[at]} vs ${want[at]}`);
        }
      }
      tf.dispose(grads);
    }
    // the update moved the parameters (not a no-op)
    expect(firstDifference(fused[3]!.p.dataSync() as Float32Array, randn(SIZES[3]!, 13))).toBeGreaterThanOrEqual(0);
  });

  it('declines, changing nothing, when a written tensor shares its storage', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const [p, m, v] = tf.tidy(() => [tf.variable(tf.tensor1d([1, 2, 3]), false), tf.variable(tf.zeros([3]), false), tf.variable(tf.zeros([3]), false)]);
    const g = tf.ones([3]);
    const opts = { beta1: B1, beta2: B2, eps: EPS, lr: 0.1 };
    // a variable still sharing its initial tensor's storage
    const young = tf.variable(tf.tensor1d([1, 2, 3]), false);
    expect(fusedAdamStep([{ variable: young, grad: g, m, v, c1: 0.1, c2: 0.05 }], opts)).toBe(false);
    expect(Array.from(young.dataSync())).toEqual([1, 2, 3]);
    const snapshot = tf.clone(p); // shares p's storage
    expect(fusedAdamStep([{ variable: p, grad: g, m, v, c1: 0.1, c2: 0.05 }], opts)).toBe(false);
    expect(Array.from(snapshot.dataSync())).toEqual([1, 2, 3]);
    expect(Array.from(p.dataSync())).toEqual([1, 2, 3]);
    snapshot.dispose();
    // the same moments for two entries would be written twice
    const p2 = tf.tidy(() => tf.variable(tf.tensor1d([1, 2, 3]), false));
    expect(fusedAdamStep([{ variable: p, grad: g, m, v, c1: 0.1, c2: 0.05 }, { variable: p2, grad: g, m, v, c1: 0.1, c2: 0.05 }], opts)).toBe(false);
    const before = p.dataSync(); // the storage itself on this backend
    expect(fusedAdamStep([{ variable: p, grad: g, m, v, c1: 0.1, c2: 0.05 }], opts)).toBe(true);
    expect(p.dataSync()[0]).toBeLessThan(1);
    // an array read out before the step keeps its values, as after an assign
    expect(Array.from(before)).toEqual([1, 2, 3]);
  });

  it("the addon's fusedAdam checks its arguments and names them", () => {
    const f = (n: number) => new Float32Array(n);
    const s = Float64Array.of(0.9, 0.1, 0.95, 0.05, 1e-8, 0.1);
    const c = Float64Array.of(0.1, 0.05);
    const adam = nativeAdam!;
    expect(() => adam([f(3)], [f(3)], [f(3)], [f(2)], c, s)).toThrow(/v\[0\] holds 2 values, params\[0\] 3/);
    expect(() => adam([f(3)], [f(3)], [f(3)], [], c, s)).toThrow(/v holds 0 arrays, params 1/);
    expect(() => adam([f(3)], [new Float64Array(3) as unknown as Float32Array], [f(3)], [f(3)], c, s)).toThrow(/grads\[0\] must be a Float32Array/);
    const shared = f(3);
    expect(() => adam([shared], [f(3)], [shared], [f(3)], c, s)).toThrow(/params\[0\] overlaps m\[0\]/);
    expect(() => adam([f(3)], [f(3)], [f(3)], [f(3)], Float64Array.of(0.1), s)).toThrow(/corrections/);
    expect(() => adam([f(3)], [f(3)], [f(3)], [f(3)], c, Float64Array.of(0.9, 0.1, 0.95, 0.05, 1e-8, Infinity))).toThrow(/scalars\[5\] is not finite/);
  });
});

/** The float64 sum of squares of every element. */
function bruteSumSq(arrays: readonly Float32Array[]): number {
  let s = 0;
  for (const a of arrays) for (const x of a) s += x * x;
  return s;
}

describe('sumOfSquares', () => {
  const arrays = SIZES.map((n, i) => randn(n, 40 + i, 0.3 + i));

  it('equals a float64 brute force on tfjs-backend-cpu (float32 sums there), and 0 for no tensors', async () => {
    await tf.setBackend('cpu');
    const ts = arrays.map((a) => tf.tensor1d(a));
    const want = bruteSumSq(arrays);
    expect(Math.abs(sumOfSquares(ts) - want)).toBeLessThan(1e-5 * want);
    expect(sumOfSquares([])).toBe(0);
    tf.dispose(ts);
  });

  suite('on sparse-cpu', () => {
    it('equals the float64 brute force to float64 rounding, the same number on every call; int tensors go through tfjs; the addon names bad arguments', async () => {
      await tf.setBackend(SPARSE_CPU_BACKEND);
      const ts = arrays.map((a, i) => (i === 2 ? tf.tensor2d(a, [3, 11]) : tf.tensor1d(a)));
      const want = bruteSumSq(arrays);
      const got = sumOfSquares(ts);
      expect(Math.abs(got - want)).toBeLessThan(1e-12 * want);
      // the fixed pieces make it the same number on every call (and any pool size)
      expect(sumOfSquares(ts)).toBe(got);
      const ints = tf.tensor1d([1, -2, 3], 'int32');
      expect(sumOfSquares([ints, ts[0]!])).toBeCloseTo(14 + arrays[0]![0]! ** 2, 5);
      tf.dispose([...ts, ints]);
      const addonSumSq = ((status.available ? status.addon : {}) as unknown as { sumOfSquares: (a: unknown) => number }).sumOfSquares;
      expect(() => addonSumSq(new Float32Array(3))).toThrow(/arrays.*must be an array of Float32Arrays/);
      expect(() => addonSumSq([new Float32Array(2), new Float64Array(2)])).toThrow(/arrays\[1\] must be a Float32Array/);
    });
  });
});
