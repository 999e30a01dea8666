// The fused training ops against the unfused compositions they replace: forward values and
// gradients (tfjs autodiff through plain tfjs-core ops on the same backend) to 1e-5, on odd shapes,
// on tfjs-backend-cpu (the plain tfjs path) and on 'sparse-cpu' (one native call per pass), plus
// a float64 brute force of each forward. Bad arguments throw ArgumentErrors naming the field, and
// the addon's own checks name the argument.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ArgumentError, Random } from '@sparse/tensor';
import { relativeMismatch } from '@sparse/tensor/testing';
import { describe, expect, it } from 'vitest';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { fusedCrossEntropy, fusedGeluTanh, fusedLayerNorm, fusedOpsNative, fusedRmsNorm, fusedSoftmax, fusedSwiGLU, SPARSE_CPU_BACKEND, type NativeFusedKernels, type NativeSoftmaxKernels } from './tfjs.js';

useQuietCPUBackend();

const addon = status.available ? (status.addon as unknown as Partial<NativeFusedKernels>) : {};
const suite = nativeSuite(status.available ? (typeof addon.fusedNormForward === 'function' ? undefined : 'the addon has no fused kernels (stale build?)') : status.reason);

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 5],
  [7, 33],
  [37, 129],
  [130, 513],
];

function randn(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  new Random(seed).fillNormal(a, shift, scale);
  return a;
}

/** |got - want| <= tol * (1 + |want|) everywhere. */
function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  const problem = relativeMismatch(got, want, tol, label);
  if (problem !== null) expect.fail(problem);
}

// ---- the unfused compositions (plain tfjs autodiff) ----

function unfusedNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor | undefined, eps: number): tf.Tensor {
  if (b === undefined) return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps))), g);
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
}
const unfusedGelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
const unfusedSwiGLU = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.mul(tf.mul(a, tf.sigmoid(a)), b);
/** -mean(sum(logSoftmax(logits) * onehot)), the one-hot built here (tf.oneHot refuses a depth of 1). */
function unfusedCrossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  const [rows, cols] = logits.shape;
  const hot = new Float32Array(rows * cols);
  targets.forEach((t, r) => (hot[r * cols + t] = 1));
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.tensor2d(hot, [rows, cols])), 1))) as tf.Scalar;
}

/** tf.softmax of x plus the causal additive mask (-1e9 where column c > row % causal). */
function unfusedSoftmax(x: tf.Tensor2D, causal: number): tf.Tensor2D {
  if (causal === 0) return tf.softmax(x);
  const [rows, cols] = x.shape;
  const m = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = (r % causal) + 1; c < cols; c++) m[r * cols + c] = -1e9;
  return tf.softmax(tf.add(x, tf.tensor2d(m, [rows, cols])) as tf.Tensor2D);
}

// ---- float64 brute force of the forwards ----

function bruteSoftmax(x: Float32Array, rows: number, cols: number, causal: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const n = causal > 0 ? Math.min(cols, (r % causal) + 1) : cols;
    let m = -Infinity;
    for (let c = 0; c < n; c++) m = Math.max(m, x[r * cols + c]!);
    let s = 0;
    for (let c = 0; c < n; c++) s += Math.exp(x[r * cols + c]! - m);
    for (let c = 0; c < n; c++) out[r * cols + c] = Math.exp(x[r * cols + c]! - m) / s;
  }
  return out;
}

function bruteNorm(x: Float32Array, g: Float32Array, b: Float32Array | undefined, rows: number, cols: number, eps: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    if (b) {
      for (let c = 0; c < cols; c++) mean += x[r * cols + c]!;
      mean /= cols;
    }
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += (x[r * cols + c]! - mean) ** 2;
    const inv = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) out[r * cols + c] = (x[r * cols + c]! - mean) * inv * g[c]! + (b ? b[c]! : 0);
  }
  return out;
}

function bruteCrossEntropy(l: Float32Array, t: Int32Array, rows: number, cols: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, l[r * cols + c]!);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(l[r * cols + c]! - m);
    total += m + Math.log(s) - l[r * cols + t[r]!]!;
  }
  return total / rows;
}

/** Values and gradients of sum(w * f(inputs)) for the fused and the unfused f, on the active backend. */
function compare(label: string, inputs: tf.Tensor[], fused: (...xs: tf.Tensor[]) => tf.Tensor, unfused: (...xs: tf.Tensor[]) => tf.Tensor, tol = 1e-5): void {
  tf.tidy(() => {
    const yF = fused(...inputs);
    const yU = unfused(...inputs);
    expect(yF.shape, label).toEqual(yU.shape);
    expectClose(`${label} forward`, yF.dataSync(), yU.dataSync(), tol);
    const w = tf.tensor(randn(yU.size, 99), yU.shape);
    const gF = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(fused(...xs), w)))(inputs);
    const gU = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(unfused(...xs), w)))(inputs);
    gU.forEach((g, i) => {
      expect(gF[i]!.shape, `${label} d input ${i}`).toEqual(g.shape);
      expectClose(`${label} d input ${i}`, gF[i]!.dataSync(), g.dataSync(), tol);
    });
  });
}

function runOps(backend: string): void {
  it('layer norm: forward, dx, dgamma, dbeta equal the unfused composition and a float64 brute force', () => {
    for (const [rows, cols] of SHAPES) {
      const xv = randn(rows * cols, rows * 7 + cols, 2, 0.5);
      const gv = randn(cols, 3, 0.5, 1);
      const bv = randn(cols, 4, 0.3);
      const [x, g, b] = [tf.tensor2d(xv, [rows, cols]), tf.tensor1d(gv), tf.tensor1d(bv)];
      compare(`${backend} layerNorm [${rows},${cols}]`, [x, g, b], (a, c, d) => fusedLayerNorm(a as tf.Tensor2D, c!, d!, 1e-5), (a, c, d) => unfusedNorm(a as tf.Tensor2D, c!, d!, 1e-5));
      const y = fusedLayerNorm(x, g, b, 1e-5);
      expectClose(`${backend} layerNorm brute [${rows},${cols}]`, y.dataSync(), bruteNorm(xv, gv, bv, rows, cols, 1e-5));
      tf.dispose([x, g, b, y]);
    }
  });

  it('RMS norm: forward, dx, dgamma equal the unfused composition and a float64 brute force', () => {
    for (const [rows, cols] of SHAPES) {
      const xv = randn(rows * cols, rows * 11 + cols, 1.5, 0.2);
      const gv = randn(cols, 5, 0.5, 1);
      const [x, g] = [tf.tensor2d(xv, [rows, cols]), tf.tensor1d(gv)];
      compare(`${backend} rmsNorm [${rows},${cols}]`, [x, g], (a, c) => fusedRmsNorm(a as tf.Tensor2D, c!, 1e-6), (a, c) => unfusedNorm(a as tf.Tensor2D, c!, undefined, 1e-6));
      const y = fusedRmsNorm(x, g, 1e-6);
      expectClose(`${backend} rmsNorm brute [${rows},${cols}]`, y.dataSync(), bruteNorm(xv, gv, undefined, rows, cols, 1e-6));
      tf.dispose([x, g, y]);
    }
  });

  it('GELU (tanh form) and its gradient equal the unfused 0.5 x (1 + tanh(...)) and a float64 brute force', () => {
    for (const [rows, cols] of SHAPES) {
      const xv = randn(rows * cols, rows + cols * 13, 3);
      const x = tf.tensor2d(xv, [rows, cols]);
      compare(`${backend} gelu [${rows},${cols}]`, [x], (a) => fusedGeluTanh(a!), (a) => unfusedGelu(a!));
      const y = fusedGeluTanh(x).dataSync();
      const want = Array.from(xv, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
      expectClose(`${backend} gelu brute`, y, want);
      x.dispose();
    }
  });

  it('SwiGLU silu(a) * b and its gradients equal the unfused composition', () => {
    for (const [rows, cols] of SHAPES) {
      const av = randn(rows * cols, rows * 3 + cols, 3);
      const bv = randn(rows * cols, rows * 5 + cols, 2);
      const [a, b] = [tf.tensor2d(av, [rows, cols]), tf.tensor2d(bv, [rows, cols])];
      compare(`${backend} swiglu [${rows},${cols}]`, [a, b], (p, q) => fusedSwiGLU(p!, q!), (p, q) => unfusedSwiGLU(p!, q!));
      const y = fusedSwiGLU(a, b).dataSync();
      expectClose(`${backend} swiglu brute`, y, Array.from(av, (v, i) => (v / (1 + Math.exp(-v))) * bv[i]!));
      tf.dispose([a, b]);
    }
  });

  it('cross-entropy from logits: loss and dlogits equal log-softmax + NLL, large logits included', () => {
    for (const [rows, cols] of [...SHAPES, [9, 2] as [number, number]]) {
      for (const scale of [1, 40]) {
        const lv = randn(rows * cols, rows * 17 + cols + scale, scale);
        const tv = Int32Array.from({ length: rows }, (_, r) => (r * 7919 + scale) % cols);
        const [l, t] = [tf.tensor2d(lv, [rows, cols]), tf.tensor1d(tv, 'int32')];
        compare(`${backend} crossEntropy [${rows},${cols}] x${scale}`, [l], (p) => fusedCrossEntropy(p as tf.Tensor2D, t), (p) => unfusedCrossEntropy(p as tf.Tensor2D, tv));
        const loss = fusedCrossEntropy(l, t);
        expectClose(`${backend} crossEntropy brute`, loss.dataSync(), [bruteCrossEntropy(lv, tv, rows, cols)]);
        tf.dispose([l, t, loss]);
      }
    }
  });

  it('row softmax, plain and causal: forward and dx equal tf.softmax (with the additive mask) and a float64 brute force', () => {
    const cases: [number, number, number][] = [...SHAPES.map(([r, c]): [number, number, number] => [r, c, 0]), [6, 3, 3], [8, 4, 4], [35, 7, 7], [130, 65, 65], [12, 5, 3], [10, 4, 3]];
    for (const [rows, cols, causal] of cases) {
      for (const scale of [1, 30]) {
        const xv = randn(rows * cols, rows * 19 + cols + causal + scale, scale);
        const x = tf.tensor2d(xv, [rows, cols]);
        const label = `${backend} softmax [${rows},${cols}] causal ${causal} x${scale}`;
        compare(label, [x], (a) => fusedSoftmax(a as tf.Tensor2D, causal), (a) => unfusedSoftmax(a as tf.Tensor2D, causal));
        const y = fusedSoftmax(x, causal).dataSync();
        expectClose(`${label} brute`, y, bruteSoftmax(xv, rows, cols, causal));
        // masked entries are exactly 0
        for (let r = 0; r < rows && causal > 0; r++) for (let c = (r % causal) + 1; c < cols; c++) expect(y[r * cols + c]).toBe(0);
        x.dispose();
      }
    }
  });

  it('bad arguments throw ArgumentErrors naming the field', () => {
    const x = tf.zeros([3, 4]) as tf.Tensor2D;
    expect(() => fusedSoftmax(x, -1)).toThrow(/causal must be a non-negative integer/);
    expect(() => fusedSoftmax(x, 1.5)).toThrow(ArgumentError);
    expect(() => fusedSoftmax(tf.zeros([3, 0]) as tf.Tensor2D)).toThrow(/at least one column/);
    expect(() => fusedLayerNorm(x, tf.ones([5]), tf.zeros([4]))).toThrow(ArgumentError);
    expect(() => fusedLayerNorm(x, tf.ones([5]), tf.zeros([4]))).toThrow(/gamma/);
    expect(() => fusedLayerNorm(x, tf.ones([4]), tf.zeros([3]))).toThrow(/beta/);
    expect(() => fusedRmsNorm(x, tf.ones([4]), -1)).toThrow(/eps/);
    expect(() => fusedRmsNorm(tf.zeros([2, 2, 2]) as unknown as tf.Tensor2D, tf.ones([2]))).toThrow(/x must be a matrix/);
    expect(() => fusedGeluTanh(tf.zeros([3], 'int32'))).toThrow(/x must be float32/);
    expect(() => fusedSwiGLU(x, tf.zeros([4, 3]))).toThrow(/b must have a's shape/);
    expect(() => fusedCrossEntropy(x, tf.tensor1d([0, 1, 4], 'int32'))).toThrow(/targets\[2\] = 4 is outside/);
    expect(() => fusedCrossEntropy(x, tf.tensor1d([0, 1], 'int32'))).toThrow(/targets must hold 3/);
    expect(() => fusedCrossEntropy(x, tf.tensor1d([0, 1, 2], 'float32'))).toThrow(/targets must be an int32/);
  });
}

describe('fused ops on tfjs-backend-cpu (plain tfjs path)', () => {
  it('runs without the native kernels there', async () => {
    await tf.setBackend('cpu');
    expect(fusedOpsNative()).toBe(false);
  });
  runOps('cpu');
});

suite('fused ops on sparse-cpu (native kernels)', () => {
  it('runs natively: the forward and backward passes dispatch no tfjs kernel', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    expect(fusedOpsNative()).toBe(true);
    const x = tf.tensor2d(randn(24, 1), [4, 6]);
    const g = tf.tensor1d(randn(6, 2));
    const b = tf.tensor1d(randn(6, 3));
    const t = tf.tensor1d([0, 5, 2, 3], 'int32');
    const forward = await tf.profile(() => fusedCrossEntropy(fusedSwiGLU(fusedGeluTanh(fusedRmsNorm(fusedLayerNorm(x, g, b), g)), x) as tf.Tensor2D, t));
    // (the customGrad node itself has no kernel name)
    expect(forward.kernelNames.filter((n) => n !== '')).toEqual([]);
    // the gradient: only the tape's own bookkeeping (the ones seed, identity adds of accumulated gradients)
    const backward = await tf.profile(() => tf.grads((xi: tf.Tensor) => fusedCrossEntropy(fusedSwiGLU(fusedGeluTanh(fusedRmsNorm(fusedLayerNorm(xi as tf.Tensor2D, g, b), g)), xi) as tf.Tensor2D, t))([x]));
    for (const name of ['Multiply', 'Sub', 'Exp', 'Sigmoid', 'Tanh', 'Rsqrt', 'Softmax', 'BatchMatMul', 'Max']) expect(backward.kernelNames).not.toContain(name);
  });

  it('the softmax runs natively too: forward and backward dispatch no tfjs kernel', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const x = tf.tensor2d(randn(8 * 4, 5), [8, 4]);
    const forward = await tf.profile(() => fusedSoftmax(x, 4));
    expect(forward.kernelNames.filter((n) => n !== '')).toEqual([]);
    const backward = await tf.profile(() => tf.grads((xi: tf.Tensor) => fusedSoftmax(xi as tf.Tensor2D, 4))([x]));
    for (const name of ['Multiply', 'Sub', 'Exp', 'Max', 'Sum', 'BatchMatMul', 'Reciprocal', 'Softmax']) expect(backward.kernelNames).not.toContain(name);
  });
  runOps(SPARSE_CPU_BACKEND);

  it('inputs made on another backend give the same values and gradients as inputs made on sparse-cpu', async () => {
    const xv = randn(5 * 7, 21, 2);
    const run = (x: tf.Tensor2D) => {
      const g = tf.tensor1d(randn(7, 22, 0.5, 1));
      const b = tf.tensor1d(randn(7, 23));
      const y = fusedLayerNorm(x, g, b);
      const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.square(fusedGeluTanh(fusedLayerNorm(a as tf.Tensor2D, g, b)))))([x]);
      return [Array.from(y.dataSync()), Array.from(dx!.dataSync())];
    };
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const want = run(tf.tensor2d(xv, [5, 7]));
    await tf.setBackend('cpu');
    const elsewhere = tf.tensor2d(xv, [5, 7]);
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const got = run(elsewhere);
    expectClose('moved y', got[0]!, want[0]!, 0);
    expectClose('moved dx', got[1]!, want[1]!, 0);
  });

  it("the addon's fused kernels check their arguments and name them", () => {
    const k = addon as NativeFusedKernels;
    const f = (n: number) => new Float32Array(n);
    expect(() => k.fusedNormForward(false, f(6), f(2), null, 2, 3, 1e-5, f(6), f(2), f(2))).toThrow(/gamma holds 2 elements, needs 3/);
    expect(() => k.fusedNormForward(false, f(6), f(3), null, 2, 3, 1e-5, f(6), null, f(2))).toThrow(/\(mean\) must be a Float32Array/);
    expect(() => k.fusedNormForward(true, f(6), f(3), null, 2, 3, -1, f(6), null, f(2))).toThrow(/eps/);
    const x = f(6);
    expect(() => k.fusedNormForward(true, x, f(3), null, 2, 3, 1e-5, x, null, f(2))).toThrow(/y overlaps x/);
    expect(() => k.fusedNormBackward(true, f(6), f(6), f(3), null, f(1), 2, 3, f(6), f(3), null)).toThrow(/rstd holds 1 elements, needs 2/);
    expect(() => k.fusedActForward(3, f(4), null, f(4))).toThrow(/op/);
    expect(() => k.fusedActForward(1, f(4), null, f(4))).toThrow(/\(b\) must be a Float32Array/);
    expect(() => k.fusedActBackward(1, f(4), f(4), f(4), f(4), f(3))).toThrow(/db holds 3 elements, needs 4/);
    expect(() => k.fusedCrossEntropy(f(6), new Int32Array([0, 3]), 2, 3, f(2))).toThrow(/targets\[1\] = 3 is outside \[0, 3\)/);
    expect(() => k.fusedCrossEntropy(f(6), new Int32Array([0, 1]), 0, 3, f(2))).toThrow(/rows and cols must be positive/);
    expect(() => k.fusedCrossEntropyBackward(f(6), new Int32Array([0, -1]), f(2), 2, 3, 1, f(6))).toThrow(/targets\[1\] = -1/);
    const sm = addon as unknown as NativeSoftmaxKernels;
    expect(() => sm.fusedSoftmax(f(6), 2, 3, 0, f(5))).toThrow(/y holds 5 elements, needs 6/);
    expect(() => sm.fusedSoftmax(x, 2, 3, -1, f(6))).toThrow(/causal/);
    expect(() => sm.fusedSoftmax(x, 2, 3, 0, x)).toThrow(/y overlaps x/);
    expect(() => sm.fusedSoftmaxBackward(f(6), f(6), 2, 3, 0, f(4))).toThrow(/dx holds 4 elements, needs 6/);
  });
});
