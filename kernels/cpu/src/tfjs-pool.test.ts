// The output pool of 'sparse-cpu': a disposed output's storage serves the next output of its
// length, and never while anything outside the backend can see it (read out with dataSync, a second
// tensor over the same array, a view of part of it). Every kernel that takes pooled storage writes
// each element: a training step with every handed-out array poisoned with NaN gives the same bits as
// without the pool. The free lists stay under their cap, oldest dropped first.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { fusedAdamStep, fusedCrossEntropy, fusedGeluTanh, fusedLayerNorm, fusedSwiGLU, MIN_POOLED_ELEMENTS, OutputPool, outputPool, SPARSE_CPU_BACKEND, type OutputPoolStats } from './tfjs.js';

useQuietCPUBackend();

const suite = nativeSuite(status.available ? undefined : status.reason);
const N = MIN_POOLED_ELEMENTS * 2;

function randn(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  new Random(seed).fillNormal(a, 0, 1);
  return a;
}

/** The backend's storage of t, looked up without readSync (which would end its tracking). */
function storageOf(t: tf.Tensor): unknown {
  return (tf.backend() as unknown as { data: { get(id: object): { values?: unknown } } }).data.get(t.dataId)?.values;
}

describe('OutputPool on its own', () => {
  const track = (pool: OutputPool, n: number) => {
    const a = pool.float32(n);
    pool.attach(a);
    return a;
  };

  it('recycles a released array for the next request of its length, only then', () => {
    const pool = new OutputPool(2 ** 30);
    const a = track(pool, N);
    pool.release(a);
    expect(pool.float32(N + 1)).not.toBe(a);
    expect(pool.float32(N)).toBe(a);
    // below the pooled size: plain allocations, never tracked
    const small = pool.float32(MIN_POOLED_ELEMENTS - 1);
    pool.attach(small);
    expect(pool.isPrivate(small)).toBe(false);
  });

  it('a read-out, a second owner or a view of part of the buffer ends the tracking', () => {
    const pool = new OutputPool(2 ** 30);
    const read = track(pool, N);
    pool.escape(read);
    pool.release(read);
    const twice = track(pool, N);
    pool.attach(twice); // a second tensor over the same array
    pool.release(twice);
    const viewed = track(pool, N);
    pool.attach(viewed.subarray(1)); // a tensor over a view of it
    pool.release(viewed);
    expect(pool.stats().freeBytes).toBe(0);
    const fresh = pool.float32(N);
    expect([read, twice, viewed]).not.toContain(fresh);
  });

  it('zeroes a recycled array on request; poison fills the others with NaN', () => {
    const pool = new OutputPool(2 ** 30);
    const a = track(pool, N);
    a.fill(7);
    pool.release(a);
    expect(pool.float32(N, true)).toBe(a);
    expect(a.every((x) => x === 0)).toBe(true);
    pool.poison = true;
    expect(pool.float32(N).every((x) => Number.isNaN(x))).toBe(true);
    expect(pool.float32(N, true).every((x) => x === 0)).toBe(true);
  });

  it('keeps the free bytes under the cap, dropping the oldest first', () => {
    const bytes = N * 4;
    // the cap is the smaller of the limit and max(64 MiB, peak use): a limit of 2.5 arrays
    const pool = new OutputPool(Math.floor(2.5 * bytes));
    const arrays = [track(pool, N), track(pool, N), track(pool, N)];
    for (const a of arrays) pool.release(a);
    expect(pool.stats().freeBytes).toBe(2 * bytes);
    // the first released was dropped; the newest comes back first
    expect(pool.float32(N)).toBe(arrays[2]);
    expect(pool.float32(N)).toBe(arrays[1]);
    expect(pool.float32(N)).not.toBe(arrays[0]);
    pool.setLimit(0);
    const off = pool.float32(N);
    pool.attach(off);
    expect(pool.isPrivate(off)).toBe(false);
  });
});

suite("sparse-cpu's kernel outputs", () => {
  afterEach(() => {
    outputPool.poison = false;
  });

  it("a disposed output's storage is the next same-length output's, with that output's values", async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const x = tf.tensor1d(randn(N, 1));
    const y = tf.tensor1d(randn(N, 2));
    const a = tf.add(x, y);
    const storage = storageOf(a);
    a.dispose();
    const b = tf.mul(x, y);
    expect(storageOf(b)).toBe(storage);
    const ys = randn(N, 2);
    const want = randn(N, 1).map((v, i) => Math.fround(v * ys[i]!));
    expect(b.dataSync()).toEqual(want);
    tf.dispose([x, y, b]);
  });

  it('an array read out with dataSync keeps its values after its tensor is gone', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const x = tf.tensor1d(randn(N, 3));
    const a = tf.exp(x);
    const read = a.dataSync();
    const copy = Float32Array.from(read);
    a.dispose();
    const b = tf.neg(x);
    const c = tf.sqrt(tf.abs(x));
    expect(storageOf(b)).not.toBe(read);
    expect(storageOf(c)).not.toBe(read);
    expect(read).toEqual(copy);
    tf.dispose([x, b, c]);
  });

  it('a tensor over a view of pooled storage keeps that storage out of the pool', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const backend = tf.backend() as unknown as { makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo };
    const x = tf.tensor1d(randn(N, 4));
    const a = tf.neg(x);
    const whole = storageOf(a) as Float32Array;
    const info = backend.makeTensorInfo([N - 1], 'float32', whole.subarray(1));
    const view = tf.engine().makeTensorFromTensorInfo(info);
    a.dispose();
    const b = tf.neg(x);
    expect(storageOf(b)).not.toBe(whole);
    expect(view.dataSync()).toEqual(randn(N, 4).subarray(1).map((v) => -v));
    tf.dispose([x, b, view]);
  });

  it('a training step gives the same bits with every handed-out array poisoned as without the pool', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const rows = 96;
    const d = 192; // rows x 4d = 73,728 floats: the MLP activations are pooled
    const vocab = 200;
    const step = (): Float32Array[] => {
      const param = (values: Float32Array, shape: number[]) => tf.tidy(() => tf.variable(tf.tensor(values, shape)));
      const w1 = param(randn(d * 4 * d, 5).map((v) => v * 0.05), [d, 4 * d]);
      const w2 = param(randn(4 * d * d, 6).map((v) => v * 0.05), [4 * d, d]);
      const wg = param(randn(d * 4 * d, 7).map((v) => v * 0.05), [d, 4 * d]);
      const head = param(randn(d * vocab, 8).map((v) => v * 0.05), [d, vocab]);
      const gamma = param(new Float32Array(d).fill(1), [d]);
      const beta = param(new Float32Array(d), [d]);
      const x = tf.tensor2d(randn(rows * d, 9), [rows, d]);
      const targets = tf.tensor1d(Int32Array.from({ length: rows }, (_, i) => (i * 37) % vocab), 'int32');
      const vars = [w1, w2, wg, head, gamma, beta];
      const out: Float32Array[] = [];
      const m = vars.map((v) => param(new Float32Array(v.size), v.shape));
      const s = vars.map((v) => param(new Float32Array(v.size), v.shape));
      for (let t = 1; t <= 2; t++) {
        const { value, grads } = tf.variableGrads(() => {
          const h = fusedLayerNorm(x, gamma, beta);
          const up = tf.matMul(h, w1);
          const act = fusedSwiGLU(fusedGeluTanh(up), tf.matMul(h, wg));
          const y = tf.add(tf.matMul(tf.transpose(tf.transpose(act)), w2), h);
          const logits = tf.matMul(tf.sub(y, tf.mean(y, 0, true)), head);
          const aux = tf.mean(tf.max(tf.softmax(logits), 1));
          return tf.add(fusedCrossEntropy(logits as tf.Tensor2D, targets), tf.mul(aux, 0.1)) as tf.Scalar;
        }, vars);
        out.push(value.dataSync() as Float32Array);
        const entries = vars.map((v, i) => ({ variable: v, grad: grads[v.name]!, m: m[i]!, v: s[i]!, c1: 1 - 0.9 ** t, c2: 1 - 0.95 ** t }));
        expect(fusedAdamStep(entries, { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 1e-3 })).toBe(true);
        tf.dispose([value, ...Object.values(grads)]);
      }
      out.push(...vars.map((v) => Float32Array.from(v.dataSync() as Float32Array)));
      tf.dispose([x, targets, ...vars, ...m, ...s]);
      return out;
    };
    const limit = outputPool.stats().limitBytes;
    let plain: Float32Array[];
    let pooled: Float32Array[];
    let before: OutputPoolStats;
    let after: OutputPoolStats;
    try {
      outputPool.setLimit(0);
      plain = step();
      outputPool.setLimit(2 ** 30);
      outputPool.poison = true;
      step(); // fills the free lists
      before = outputPool.stats(true);
      pooled = step();
      after = outputPool.stats();
    } finally {
      outputPool.setLimit(limit);
    }
    expect(after.reused, JSON.stringify({ before, after })).toBeGreaterThan(10);
    expect(pooled.length).toBe(plain.length);
    pooled.forEach((got, i) => {
      expect(got.some((v) => Number.isNaN(v)), `output ${i} has NaN`).toBe(false);
      expect(got, `output ${i}`).toEqual(plain[i]);
    });
  }, 60_000);

  it('Adam updates private storage in place and leaves read-out arrays alone', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const n = N + 3;
    // made inside tidy: the initial tensors are disposed, so each variable owns its storage alone
    const [p, m, v] = tf.tidy(() => [tf.variable(tf.tensor1d(randn(n, 11))), tf.variable(tf.zeros([n])), tf.variable(tf.zeros([n]))]);
    const g = tf.tensor1d(randn(n, 12));
    const opts = { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 0.1 };
    const entry = { variable: p, grad: g, m, v, c1: 0.1, c2: 0.05 };
    // first step: storage from outside (tf.tensor1d) becomes a private pooled copy
    const outside = storageOf(p);
    expect(fusedAdamStep([entry], opts)).toBe(true);
    const privateStorage = storageOf(p);
    expect(privateStorage).not.toBe(outside);
    expect(outputPool.isPrivate(privateStorage)).toBe(true);
    // second step: in place
    expect(fusedAdamStep([entry], opts)).toBe(true);
    expect(storageOf(p)).toBe(privateStorage);
    // read out, then stepped: the read-out array keeps its values
    const read = p.dataSync() as Float32Array;
    const copy = Float32Array.from(read);
    expect(fusedAdamStep([entry], opts)).toBe(true);
    expect(read).toEqual(copy);
    expect(storageOf(p)).not.toBe(read);
    expect((p.dataSync() as Float32Array)[0]).not.toBe(copy[0]);
    tf.dispose([p, m, v, g]);
  });
});
