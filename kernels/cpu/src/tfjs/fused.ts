// Fused training ops: layer norm, RMS norm, GELU (tanh form), the SwiGLU gate silu(a) * b,
// cross-entropy from logits and the row softmax of attention (optionally causal). Each is one tfjs op with its own gradient (tf.customGrad: the tape
// records one node, not the chain of small elementwise ops autodiff would trace). On 'sparse-cpu'
// with an addon that has the fused kernels (native/fused.cc) the forward and backward passes are
// one native call each, reading and writing the backend's storage directly; on any other backend
// (tfjs-node, wasm, plain cpu, an addon built before these kernels) they are plain tfjs-core ops
// computing the same formulas, arranged as ops.ts in the trainer arranges them (row broadcasts and
// column sums as products with ones vectors, fast on every backend).
//
// The native path sums rows in float64 and rounds once, so its results differ from the float32
// composition by rounding only (tested to 1e-5 against autodiff of the unfused composition).
import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';
import { SPARSE_CPU_BACKEND } from '../backend-name.js';
import { nativeStatus } from '../native.js';
import { float32Values, numericValues, type CPUStorageBackend } from './kernel.js';
import { outputPool } from './pool.js';

/** The addon's fused kernels (native/fused.h); present when info().kernels lists them. */
export interface NativeFusedKernels {
  fusedNormForward(rms: boolean, x: Float32Array, gamma: Float32Array, beta: Float32Array | null, rows: number, cols: number, eps: number, y: Float32Array, mean: Float32Array | null, rstd: Float32Array): void;
  fusedNormBackward(rms: boolean, dy: Float32Array, x: Float32Array, gamma: Float32Array, mean: Float32Array | null, rstd: Float32Array, rows: number, cols: number, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array | null): void;
  fusedActForward(op: number, x: Float32Array, b: Float32Array | null, y: Float32Array): void;
  fusedActBackward(op: number, dy: Float32Array, x: Float32Array, b: Float32Array | null, dx: Float32Array, db: Float32Array | null): void;
  fusedCrossEntropy(logits: Float32Array, targets: Int32Array, rows: number, cols: number, lse: Float32Array): number;
  fusedCrossEntropyBackward(logits: Float32Array, targets: Int32Array, lse: Float32Array, rows: number, cols: number, scale: number, dlogits: Float32Array): void;
}

const FUSED_NAMES = ['fusedNormForward', 'fusedNormBackward', 'fusedActForward', 'fusedActBackward', 'fusedCrossEntropy', 'fusedCrossEntropyBackward'] as const;

/** The fused tfjs ops this module exports. */
export const FUSED_OPS = ['fusedLayerNorm', 'fusedRmsNorm', 'fusedGeluTanh', 'fusedSwiGLU', 'fusedCrossEntropy', 'fusedSoftmax'] as const;

/** The addon's row-softmax kernels (native/fused.h); checked apart, so an addon without them keeps the other fused ops. */
export interface NativeSoftmaxKernels {
  fusedSoftmax(x: Float32Array, rows: number, cols: number, causal: number, y: Float32Array): void;
  fusedSoftmaxBackward(dy: Float32Array, y: Float32Array, rows: number, cols: number, causal: number, dx: Float32Array): void;
}

let cachedSoftmax: NativeSoftmaxKernels | null | undefined;

/** The native softmax kernels and the backend's storage, when they apply to this call. */
function softmaxContext(): { k: NativeSoftmaxKernels; backend: CPUStorageBackend } | undefined {
  if (cachedSoftmax === undefined) {
    const status = nativeStatus();
    const addon = status.available ? (status.addon as unknown as Partial<NativeSoftmaxKernels>) : undefined;
    cachedSoftmax = typeof addon?.fusedSoftmax === 'function' && typeof addon.fusedSoftmaxBackward === 'function' ? (addon as NativeSoftmaxKernels) : null;
  }
  if (cachedSoftmax === null || tf.getBackend() !== SPARSE_CPU_BACKEND) return undefined;
  return { k: cachedSoftmax, backend: tf.backend() as unknown as CPUStorageBackend };
}

let cached: NativeFusedKernels | null | undefined;

function fusedKernels(): NativeFusedKernels | undefined {
  if (cached === undefined) {
    const status = nativeStatus();
    const addon = status.available ? (status.addon as unknown as Partial<NativeFusedKernels>) : undefined;
    cached = addon !== undefined && FUSED_NAMES.every((n) => typeof addon[n] === 'function') ? (addon as NativeFusedKernels) : null;
  }
  return cached ?? undefined;
}

/** Whether the fused ops run natively now: the active tfjs backend is 'sparse-cpu' and the addon has the fused kernels. */
export function fusedOpsNative(): boolean {
  return fusedKernels() !== undefined && tf.getBackend() === SPARSE_CPU_BACKEND;
}

/** The native kernels and the backend's storage, when the native path applies to this call. */
function nativeContext(): { k: NativeFusedKernels; backend: CPUStorageBackend } | undefined {
  const k = fusedKernels();
  if (k === undefined || tf.getBackend() !== SPARSE_CPU_BACKEND) return undefined;
  return { k, backend: tf.backend() as unknown as CPUStorageBackend };
}

/** Float32 storage of every tensor, or undefined when one is not plain float32 storage (then the tfjs path runs). */
function storage(backend: CPUStorageBackend, ts: readonly tf.Tensor[]): Float32Array[] | undefined {
  const out: Float32Array[] = [];
  for (const t of ts) {
    // (the backend's storage moves data made on another backend over on first access)
    const v = float32Values(backend, t);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

const wrap = (values: Float32Array, shape: number[]): tf.Tensor => tf.tensor(values, shape, 'float32');

function fail(op: string, field: string, message: string): never {
  throw new ArgumentError(`${op}: ${field} ${message}`);
}

function checkFloat(op: string, field: string, t: unknown): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) fail(op, field, 'must be a tf.Tensor');
  if (t.dtype !== 'float32') fail(op, field, `must be float32, got ${t.dtype}`);
}

function checkNormArgs(op: string, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor | undefined, eps: number): [number, number] {
  checkFloat(op, 'x', x);
  if (x.rank !== 2) fail(op, 'x', `must be a matrix [rows, cols], got shape [${x.shape.join(', ')}]`);
  const [rows, cols] = x.shape as [number, number];
  if (cols === 0) fail(op, 'x', 'must have at least one column');
  checkFloat(op, 'gamma', gamma);
  if (gamma.size !== cols) fail(op, 'gamma', `must hold ${cols} values (x's columns), got shape [${gamma.shape.join(', ')}]`);
  if (beta !== undefined) {
    checkFloat(op, 'beta', beta);
    if (beta.size !== cols) fail(op, 'beta', `must hold ${cols} values (x's columns), got shape [${beta.shape.join(', ')}]`);
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) fail(op, 'eps', `must be a finite non-negative number, got ${String(eps)}`);
  return [rows, cols];
}

// ---- plain tfjs helpers (the path on other backends) ----

/** Row means of x [R,C] as [R,1] (a product with a 1/C column). */
const rowMean = (x: tf.Tensor2D): tf.Tensor2D => tf.matMul(x, tf.fill([x.shape[1], 1], 1 / x.shape[1]) as tf.Tensor2D);
/** [R,1] -> [R,C] (an outer product with ones). */
const expandCols = (col: tf.Tensor2D, cols: number): tf.Tensor2D => tf.matMul(col, tf.ones([1, cols]) as tf.Tensor2D);
/** Column sums of x [R,C] shaped like `like` (a ones-row product). */
const colSum = (x: tf.Tensor2D, like: tf.Tensor): tf.Tensor => tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]) as tf.Tensor2D, x), like.shape);

// ---- layer norm and RMS norm ----

function norm(rms: boolean, x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor | undefined, eps: number): tf.Tensor2D {
  const op = rms ? 'fusedRmsNorm' : 'fusedLayerNorm';
  const [rows, cols] = checkNormArgs(op, x, gamma, beta, eps);
  const inputs: tf.Tensor[] = beta === undefined ? [x, gamma] : [x, gamma, beta];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const ctx = nativeContext();
    const mem = ctx && storage(ctx.backend, inputs);
    let y: tf.Tensor;
    let mean: tf.Tensor | undefined;
    let rstd: tf.Tensor;
    if (ctx && mem) {
      const out = outputPool.float32(rows * cols);
      const m = rms ? null : new Float32Array(rows);
      const r = new Float32Array(rows);
      ctx.k.fusedNormForward(rms, mem[0]!, mem[1]!, mem[2] ?? null, rows, cols, eps, out, m, r);
      y = wrap(out, [rows, cols]);
      mean = m ? wrap(m, [rows, 1]) : undefined;
      rstd = wrap(r, [rows, 1]);
    } else {
      let xc: tf.Tensor2D = x;
      if (!rms) {
        mean = rowMean(x);
        xc = tf.sub(x, expandCols(mean as tf.Tensor2D, cols));
      }
      rstd = tf.rsqrt(tf.add(rowMean(tf.square(xc)), eps));
      const scaled = tf.mul(tf.mul(xc, expandCols(rstd as tf.Tensor2D, cols)), tf.reshape(gamma, [cols]));
      y = beta === undefined ? scaled : tf.add(scaled, tf.reshape(beta, [cols]));
    }
    save(mean ? [x, gamma, rstd, mean] : [x, gamma, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, rs, ms] = saved as [tf.Tensor2D, tf.Tensor, tf.Tensor2D, tf.Tensor2D | undefined];
        const shaped = (g: tf.Tensor, like: tf.Tensor): tf.Tensor => tf.reshape(g, like.shape);
        const c = nativeContext();
        const m2 = c && storage(c.backend, ms ? [dy, xs, gs, rs, ms] : [dy, xs, gs, rs]);
        if (c && m2) {
          const dx = outputPool.float32(rows * cols);
          const dgamma = new Float32Array(cols);
          const dbeta = beta === undefined ? null : new Float32Array(cols);
          c.k.fusedNormBackward(rms, m2[0]!, m2[1]!, m2[2]!, m2[4] ?? null, m2[3]!, rows, cols, dx, dgamma, dbeta);
          const grads = [wrap(dx, [rows, cols]), wrap(dgamma, gamma.shape)];
          if (dbeta) grads.push(wrap(dbeta, beta!.shape));
          return grads;
        }
        // xhat = (x - mean) * rstd, g = dy * gamma: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
        const dy2 = dy as tf.Tensor2D;
        const xc = ms ? tf.sub(xs, expandCols(ms, cols)) : xs;
        const xhat = tf.mul(xc, expandCols(rs, cols)) as tf.Tensor2D;
        const g = tf.mul(dy2, tf.reshape(gs, [cols])) as tf.Tensor2D;
        let inner = tf.sub(g, tf.mul(xhat, expandCols(rowMean(tf.mul(g, xhat) as tf.Tensor2D), cols)));
        if (ms) inner = tf.sub(inner, expandCols(rowMean(g), cols));
        const dx = tf.mul(inner, expandCols(rs, cols));
        const grads = [dx, shaped(colSum(tf.mul(dy2, xhat) as tf.Tensor2D, gs), gs)];
        if (beta !== undefined) grads.push(colSum(dy2, beta));
        return grads;
      },
    };
  });
  return f(...inputs) as tf.Tensor2D;
}

/**
 * Layer normalization over the last axis of x [rows, cols] with gain `gamma` and bias `beta`
 * ([cols] each): (x - mean) / sqrt(var + eps) * gamma + beta, variance biased (divided by cols), as
 * Ba et al. 2016 and GPT-2 define it. One tfjs op with gradients for x, gamma and beta.
 */
export function fusedLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor2D {
  if (beta === undefined || beta === null) fail('fusedLayerNorm', 'beta', 'is required (use fusedRmsNorm for a norm without bias)');
  return norm(false, x, gamma, beta, eps);
}

/**
 * RMS normalization over the last axis of x [rows, cols] (Zhang & Sennrich 2019):
 * x / sqrt(mean(x²) + eps) * gamma, in Hugging Face Llama's order (eps inside the root). One tfjs op
 * with gradients for x and gamma.
 */
export function fusedRmsNorm(x: tf.Tensor2D, gamma: tf.Tensor, eps = 1e-6): tf.Tensor2D {
  return norm(true, x, gamma, undefined, eps);
}

// ---- GELU (tanh form) and SwiGLU ----

// GELU's tanh form 0.5 x (1 + tanh(k (x + 0.044715 x³))), k = sqrt(2/pi), as x * sigmoid(x (A + B x²)).
const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = GELU_A * 0.044715;
const ACT_GELU = 0;
const ACT_SWIGLU = 1;

/**
 * GELU in its tanh approximation (Hendrycks & Gimpel 2016; GPT-2's "gelu_new"),
 * x * sigmoid(x * (A + B x²)), elementwise on any shape. One tfjs op with its gradient
 * s + x s (1 - s) (A + 3 B x²), s the sigmoid.
 */
export function fusedGeluTanh(x: tf.Tensor): tf.Tensor {
  checkFloat('fusedGeluTanh', 'x', x);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([xi]);
    const ctx = nativeContext();
    const mem = ctx && storage(ctx.backend, [xi]);
    let y: tf.Tensor;
    if (ctx && mem) {
      const out = outputPool.float32(xi.size);
      ctx.k.fusedActForward(ACT_GELU, mem[0]!, null, out);
      y = wrap(out, xi.shape);
    } else {
      y = tf.mul(xi, tf.sigmoid(tf.mul(xi, tf.add(tf.mul(tf.square(xi), GELU_B), GELU_A))));
    }
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs] = saved as [tf.Tensor];
        const c = nativeContext();
        const m = c && storage(c.backend, [dy, xs]);
        if (c && m) {
          const dx = outputPool.float32(xs.size);
          c.k.fusedActBackward(ACT_GELU, m[0]!, m[1]!, null, dx, null);
          return [wrap(dx, xs.shape)];
        }
        const x2 = tf.square(xs);
        const s = tf.sigmoid(tf.mul(xs, tf.add(tf.mul(x2, GELU_B), GELU_A)));
        const slope = tf.add(tf.mul(x2, 3 * GELU_B), GELU_A);
        return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(xs, tf.mul(s, tf.sub(1, s))), slope)))];
      },
    };
  });
  return f(x);
}

/**
 * The SwiGLU gate (Shazeer 2020) silu(a) * b = a * sigmoid(a) * b, elementwise over two tensors of
 * one shape (Llama's gate and up projections). One tfjs op with gradients for a and b.
 */
export function fusedSwiGLU(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  checkFloat('fusedSwiGLU', 'a', a);
  checkFloat('fusedSwiGLU', 'b', b);
  if (!tf.util.arraysEqual(a.shape, b.shape)) fail('fusedSwiGLU', 'b', `must have a's shape [${a.shape.join(', ')}], got [${b.shape.join(', ')}]`);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [ai, bi, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([ai, bi]);
    const ctx = nativeContext();
    const mem = ctx && storage(ctx.backend, [ai, bi]);
    let y: tf.Tensor;
    if (ctx && mem) {
      const out = outputPool.float32(ai.size);
      ctx.k.fusedActForward(ACT_SWIGLU, mem[0]!, mem[1]!, out);
      y = wrap(out, ai.shape);
    } else {
      y = tf.mul(tf.mul(ai, tf.sigmoid(ai)), bi);
    }
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [as, bs] = saved as [tf.Tensor, tf.Tensor];
        const c = nativeContext();
        const m = c && storage(c.backend, [dy, as, bs]);
        if (c && m) {
          const da = outputPool.float32(as.size);
          const db = outputPool.float32(as.size);
          c.k.fusedActBackward(ACT_SWIGLU, m[0]!, m[1]!, m[2]!, da, db);
          return [wrap(da, as.shape), wrap(db, as.shape)];
        }
        const s = tf.sigmoid(as);
        const silu = tf.mul(as, s);
        return [tf.mul(tf.mul(dy, bs), tf.add(s, tf.mul(silu, tf.sub(1, s)))), tf.mul(dy, silu)];
      },
    };
  });
  return f(a, b);
}

// ---- cross-entropy ----

/** onehot(targets) [rows, cols] as float32 (tf.oneHot refuses a depth of 1). */
function oneHot(idx: Int32Array, cols: number): tf.Tensor2D {
  const out = new Float32Array(idx.length * cols);
  idx.forEach((t, r) => (out[r * cols + t] = 1));
  return tf.tensor2d(out, [idx.length, cols]);
}

/**
 * Mean cross-entropy (nats) of logits [rows, vocab] against integer targets [rows]:
 * mean over rows of logsumexp(logits) - logits[target]. One tfjs op whose gradient is
 * (softmax(logits) - onehot(targets)) / rows, computed from the saved row log-sum-exp in one pass
 * (the [rows, vocab] log-probabilities are never stored). Targets outside [0, vocab) are refused.
 */
export function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor): tf.Scalar {
  const op = 'fusedCrossEntropy';
  checkFloat(op, 'logits', logits);
  if (logits.rank !== 2) fail(op, 'logits', `must be a matrix [rows, vocab], got shape [${logits.shape.join(', ')}]`);
  const [rows, cols] = logits.shape as [number, number];
  if (rows === 0 || cols === 0) fail(op, 'logits', `must have at least one row and one column, got shape [${rows}, ${cols}]`);
  if (!(targets instanceof tf.Tensor) || targets.dtype !== 'int32') fail(op, 'targets', 'must be an int32 tf.Tensor');
  if (targets.size !== rows) fail(op, 'targets', `must hold ${rows} values (logits' rows), got shape [${targets.shape.join(', ')}]`);
  const backendNow = tf.backend() as unknown as CPUStorageBackend;
  const tv = tf.getBackend() === SPARSE_CPU_BACKEND ? numericValues(backendNow, targets) : undefined;
  // a copy: the gradient runs later and must not depend on the targets tensor still being alive
  const tIdx = Int32Array.from(tv instanceof Int32Array ? tv : (targets.dataSync() as Int32Array));
  for (let r = 0; r < rows; r++) {
    const t = tIdx[r]!;
    if (!(t >= 0 && t < cols)) fail(op, `targets[${r}]`, `= ${t} is outside the vocabulary [0, ${cols})`);
  }
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [li, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const ctx = nativeContext();
    const mem = ctx && storage(ctx.backend, [li]);
    let loss: tf.Scalar;
    let lse: tf.Tensor2D;
    if (ctx && mem) {
      const l = new Float32Array(rows);
      const mean = ctx.k.fusedCrossEntropy(mem[0]!, tIdx, rows, cols, l);
      loss = tf.scalar(mean, 'float32');
      lse = wrap(l, [rows, 1]) as tf.Tensor2D;
    } else {
      // shift by the row maximum (a constant: softmax is shift-invariant) so exp cannot overflow
      const m = tf.max(li, 1, true) as tf.Tensor2D;
      const sumExp = tf.matMul(tf.exp(tf.sub(li, expandCols(m, cols))), tf.ones([cols, 1]) as tf.Tensor2D);
      lse = tf.add(tf.log(sumExp), m);
      const picked = tf.matMul(tf.mul(li, oneHot(tIdx, cols)), tf.ones([cols, 1]) as tf.Tensor2D);
      loss = tf.mean(tf.sub(lse, picked)) as tf.Scalar;
    }
    save([li, lse]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ls, lses] = saved as [tf.Tensor2D, tf.Tensor2D];
        const c = nativeContext();
        const m = c && storage(c.backend, [ls, lses, dy]);
        if (c && m) {
          const d = outputPool.float32(rows * cols);
          c.k.fusedCrossEntropyBackward(m[0]!, tIdx, m[1]!, rows, cols, m[2]![0]! / rows, d);
          return [wrap(d, [rows, cols])];
        }
        const probs = tf.exp(tf.sub(ls, expandCols(lses, cols)));
        const diff = tf.sub(probs, oneHot(tIdx, cols));
        return [tf.mul(diff, tf.div(tf.reshape(dy, []), rows))];
      },
    };
  });
  return f(logits) as tf.Scalar;
}

// ---- row softmax ----

/** x [rows, cols] plus the additive mask of a causal softmax: -1e9 where column c > row % causal. */
function addCausalMask(x: tf.Tensor2D, causal: number): tf.Tensor2D {
  const [rows, cols] = x.shape;
  // one period of the mask, broadcast over the sequences when the rows are whole periods
  const period = rows % causal === 0 ? causal : rows;
  const m = new Float32Array(period * cols);
  for (let r = 0; r < period; r++) for (let c = (r % causal) + 1; c < cols; c++) m[r * cols + c] = -1e9;
  const mask = tf.tensor2d(m, [period, cols]);
  return tf.reshape(tf.add(tf.reshape(x, [rows / period, period, cols]), mask), [rows, cols]);
}

/**
 * Softmax over the last axis of x [rows, cols]. With `causal` = T > 0 the rows are the queries of
 * sequences of T tokens (row r is position r % T) and column c > r % T gets probability 0, as the
 * additive mask of -1e9 gives (the attention scores need no separate mask). One tfjs op whose
 * gradient is y * (dy - rowsum(dy * y)). Natively each row is its maximum subtracted, exp, the sum
 * and a product with its reciprocal, each with the bits of the separate tfjs op (the sum in
 * float64); elsewhere the same steps as plain tfjs ops.
 */
export function fusedSoftmax(x: tf.Tensor2D, causal = 0): tf.Tensor2D {
  const op = 'fusedSoftmax';
  checkFloat(op, 'x', x);
  if (x.rank !== 2) fail(op, 'x', `must be a matrix [rows, cols], got shape [${x.shape.join(', ')}]`);
  const [rows, cols] = x.shape as [number, number];
  if (cols === 0) fail(op, 'x', 'must have at least one column');
  if (!Number.isInteger(causal) || causal < 0) fail(op, 'causal', `must be a non-negative integer (0: no mask), got ${String(causal)}`);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const ctx = softmaxContext();
    const mem = ctx && storage(ctx.backend, [xi]);
    let y: tf.Tensor2D;
    if (ctx && mem) {
      const out = outputPool.float32(rows * cols);
      ctx.k.fusedSoftmax(mem[0]!, rows, cols, causal, out);
      y = wrap(out, [rows, cols]) as tf.Tensor2D;
    } else {
      const masked = causal > 0 ? addCausalMask(xi, causal) : xi;
      // the row maximum is a constant here (softmax is shift-invariant): it only keeps exp finite
      const e = tf.exp(tf.sub(masked, expandCols(tf.max(masked, 1, true) as tf.Tensor2D, cols)));
      const inv = tf.reciprocal(tf.matMul(e, tf.ones([cols, 1]) as tf.Tensor2D)) as tf.Tensor2D;
      y = tf.mul(e, expandCols(inv, cols));
    }
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ys] = saved as [tf.Tensor2D];
        const c = softmaxContext();
        const m = c && storage(c.backend, [dy, ys]);
        if (c && m) {
          const dx = outputPool.float32(rows * cols);
          c.k.fusedSoftmaxBackward(m[0]!, m[1]!, rows, cols, causal, dx);
          return [wrap(dx, [rows, cols])];
        }
        const dot = tf.matMul(tf.mul(dy, ys) as tf.Tensor2D, tf.ones([cols, 1]) as tf.Tensor2D);
        return [tf.mul(ys, tf.sub(dy, expandCols(dot as tf.Tensor2D, cols)))];
      },
    };
  });
  return f(x) as tf.Tensor2D;
}
