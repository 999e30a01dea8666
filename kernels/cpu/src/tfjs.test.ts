// The 'sparse-cpu' tfjs backend against tfjs-backend-cpu: matMul in every transpose combination and
// batch-broadcasting form, fused matMul with each activation and bias shape, gradients, and one Adam
// step of a small transformer. Inputs are seeded Float32Arrays turned into tensors on each backend,
// so both backends see identical data. Tolerance: max |x - y| <= 1e-5 * max |y| per tensor (the two
// sum in different orders; float32 rounding of k-term sums is far below that); the training step
// to 1e-4 relative.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { randomArray, rng } from './__fixtures__/gemm-cases.js';
import { expectIdentical as expectIdenticalOnBoth, useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { nativeStatus } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { selectBackend } from './select-backend.js';
import { FAST_TFJS_KERNELS, FUSED_ACTIVATIONS, NATIVE_TFJS_KERNELS, SPARSE_CPU_BACKEND, registerSparseCPUBackend, sparseCPURegistration, type FusedActivation } from './tfjs.js';

const status = nativeStatus();
const suite = nativeSuite();

const BACKENDS = ['cpu', SPARSE_CPU_BACKEND] as const;

/** Data of a tensor to create on each backend. */
interface Input {
  shape: number[];
  values: Float32Array;
}

function input(shape: number[], seed: number, scale = 1): Input {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = randomArray(size, rng(seed));
  if (scale !== 1) for (let i = 0; i < size; i++) values[i]! *= scale;
  return { shape, values };
}

const toTensor = (x: Input) => tf.tensor(x.values, x.shape, 'float32');

/** Runs fn on each backend with fresh tensors; returns each backend's outputs as [shape, values]. */
async function onBoth(inputs: Input[], fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<Record<string, Array<{ shape: number[]; values: Float32Array }>>> {
  const out: Record<string, Array<{ shape: number[]; values: Float32Array }>> = {};
  for (const backend of BACKENDS) {
    await tf.setBackend(backend);
    const results = tf.tidy(() => {
      const r = fn(...inputs.map(toTensor));
      return Array.isArray(r) ? r : [r];
    });
    out[backend] = results.map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    tf.dispose(results);
  }
  return out;
}

function relError(got: Float32Array, want: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff === 0 ? 0 : diff / Math.max(scale, 1e-30);
}

async function expectSame(inputs: Input[], fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = 1e-5): Promise<void> {
  const r = await onBoth(inputs, fn);
  const [cpu, native] = [r.cpu!, r[SPARSE_CPU_BACKEND]!];
  expect(native.length).toBe(cpu.length);
  cpu.forEach((want, i) => {
    const got = native[i]!;
    expect(got.shape).toEqual(want.shape);
    for (const v of got.values) expect(Number.isFinite(v)).toBe(true);
    expect(relError(got.values, want.values)).toBeLessThanOrEqual(tol);
  });
}

/** float64 brute force of tf.matMul with broadcasting batch dims (for shapes tfjs-backend-cpu mishandles). */
function matMulReference(a: Input, b: Input, transA: boolean, transB: boolean): { shape: number[]; values: Float64Array } {
  const ar = a.shape.length;
  const br = b.shape.length;
  const m = transA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const k = transA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const n = transB ? b.shape[br - 2]! : b.shape[br - 1]!;
  const oa = a.shape.slice(0, -2);
  const ob = b.shape.slice(0, -2);
  const rank = Math.max(oa.length, ob.length);
  const pa = [...Array<number>(rank - oa.length).fill(1), ...oa];
  const pb = [...Array<number>(rank - ob.length).fill(1), ...ob];
  const outer = pa.map((d, i) => Math.max(d, pb[i]!));
  const count = outer.reduce((x, y) => x * y, 1);
  const values = new Float64Array(count * m * n);
  for (let t = 0; t < count; t++) {
    let rem = t;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rem % outer[d]!;
      rem = Math.floor(rem / outer[d]!);
      ia += (pa[d] === 1 ? 0 : c) * sa;
      ib += (pb[d] === 1 ? 0 : c) * sb;
      sa *= pa[d]!;
      sb *= pb[d]!;
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = a.values[ia * m * k + (transA ? p * m + i : i * k + p)]!;
          const bv = b.values[ib * k * n + (transB ? j * k + p : p * n + j)]!;
          s += av * bv;
        }
        values[t * m * n + i * n + j] = s;
      }
    }
  }
  return { shape: [...outer, m, n], values };
}

/** Stored shapes of A and B for op(A) [.., m, k] and op(B) [.., k, n]. */
function stored(outerA: number[], outerB: number[], m: number, k: number, n: number, transA: boolean, transB: boolean): [number[], number[]] {
  return [
    [...outerA, ...(transA ? [k, m] : [m, k])],
    [...outerB, ...(transB ? [n, k] : [k, n])],
  ];
}

const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

useQuietCPUBackend();

describe('registration', () => {
  it('registers sparse-cpu on import exactly when the native addon loads', () => {
    expect(sparseCPURegistration.registered).toBe(status.available);
    expect(tf.findBackendFactory(SPARSE_CPU_BACKEND) != null).toBe(status.available);
    // Idempotent.
    expect(registerSparseCPUBackend()).toEqual(sparseCPURegistration);
  });

  /** Runs an ES module script in a fresh Node process from this package (built dist); returns its last stdout line as JSON. */
  function inFreshProcess<T>(script: string): T {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: join(dirname(fileURLToPath(import.meta.url)), '..'), timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
  }

  const PRETEND_MISSING = `globalThis[Symbol.for('@sparse/kernels-cpu.native')] = { result: { available: false, reason: 'pretend it is missing', tried: [] }, warned: false };`;

  it('without the addon registers nothing, says so in one line, and selectBackend moves on (built dist, child process)', () => {
    const dist = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'tfjs.js')).href;
    const out = inFreshProcess<{
      sparseCPURegistration: { registered: boolean; reason: string };
      lines: string[];
      factory: boolean;
      chosen: string;
      tried: Array<{ name: string; ok: boolean; reason: string }>;
    }>(`
      ${PRETEND_MISSING}
      const lines = [];
      const warn = console.warn;
      console.warn = (line) => lines.push(String(line));
      const tf = await import('@tensorflow/tfjs-core');
      const { sparseCPURegistration } = await import(${JSON.stringify(dist)});
      console.warn = warn;
      const { selectBackend } = await import('@sparse/kernels-cpu/select-backend');
      const choice = await selectBackend({ prefer: ['sparse-cpu', 'cpu'], log: () => {} });
      console.log(JSON.stringify({ sparseCPURegistration, lines, factory: tf.findBackendFactory('sparse-cpu') != null, chosen: choice.name, tried: choice.tried }));
    `);
    expect(out.sparseCPURegistration).toMatchObject({ registered: false, reason: 'pretend it is missing' });
    expect(out.lines).toEqual([
      "@sparse/kernels-cpu/tfjs: tfjs backend 'sparse-cpu' not registered: native addon unavailable (pretend it is missing)",
    ]);
    expect(out.factory).toBe(false);
    expect(out.chosen).toBe('cpu');
    expect(out.tried[0]).toEqual({ name: 'sparse-cpu', ok: false, reason: 'native addon unavailable (pretend it is missing)' });
  });

  it('without the addon, selectBackend alone says why in its one line and warns nothing (built dist, child process)', () => {
    const out = inFreshProcess<{ warnings: string[]; info: string[]; chosen: string }>(`
      ${PRETEND_MISSING}
      const warnings = [];
      const info = [];
      console.warn = (line) => warnings.push(String(line));
      console.info = (line) => info.push(String(line));
      const { selectBackend } = await import('@sparse/kernels-cpu/select-backend');
      const choice = await selectBackend({ training: true });
      console.log(JSON.stringify({ warnings, info, chosen: choice.name }));
    `);
    expect(out.chosen).toBe('cpu');
    expect(out.warnings).toEqual([]);
    expect(out.info).toHaveLength(1);
    expect(out.info[0]).toMatch(/^\[@sparse\/kernels-cpu\] tfjs backend 'cpu': @tensorflow\/tfjs-backend-cpu \(plain JavaScript\); first that works in default order .*sparse-cpu: native addon unavailable \(pretend it is missing\); wasm: skipped for training/);
  });

  suite('with the addon', () => {
    it('selectBackend registers sparse-cpu and picks it in a fresh process (built dist)', () => {
      // Importing the selection registers nothing; choosing sparse-cpu does.
      const out = inFreshProcess<{ before: boolean; chosen: string; tried: Array<{ name: string; ok: boolean }> }>(`
        const tf = await import('@tensorflow/tfjs-core');
        const { selectBackend } = await import('@sparse/kernels-cpu/select-backend');
        const before = tf.findBackendFactory('sparse-cpu') != null;
        const choice = await selectBackend({ training: true, log: () => {} });
        console.log(JSON.stringify({ before, chosen: choice.name, tried: choice.tried }));
      `);
      expect(out.before).toBe(false);
      expect(out.chosen).toBe(SPARSE_CPU_BACKEND);
      expect(out.tried.map((t) => [t.name, t.ok])).toEqual([
        ['tensorflow', false],
        ['tensorflow', false],
        [SPARSE_CPU_BACKEND, true],
      ]);
    });

    it('is what selectBackend picks for training when tfjs-node is absent', async () => {
      const choice = await selectBackend({ prefer: ['sparse-cpu', 'cpu'], training: true, log: () => {} });
      expect(choice.name).toBe(SPARSE_CPU_BACKEND);
    });

    it('copies every tfjs-backend-cpu kernel and replaces the matrix products', () => {
      const cpu = tf.getKernelsForBackend('cpu').map((k) => k.kernelName).sort();
      const ours = tf.getKernelsForBackend(SPARSE_CPU_BACKEND).map((k) => k.kernelName).sort();
      expect(ours).toEqual(cpu);
      // This addon exports the elementwise kernels, so every native kernel is served natively.
      expect([...sparseCPURegistration.nativeKernels].sort()).toEqual([...NATIVE_TFJS_KERNELS].sort());
      expect([...sparseCPURegistration.fastKernels].sort()).toEqual([...FAST_TFJS_KERNELS].sort());
      const replaced = new Set([...NATIVE_TFJS_KERNELS, ...FAST_TFJS_KERNELS]);
      for (const k of tf.getKernelsForBackend(SPARSE_CPU_BACKEND)) {
        expect(k.kernelFunc === tf.getKernel(k.kernelName, 'cpu')!.kernelFunc, k.kernelName).toBe(!replaced.has(k.kernelName));
      }
      expect(tf.getKernel('BatchMatMul', SPARSE_CPU_BACKEND)!.kernelFunc.name).toBe('batchMatMulNative');
    });

    it('activates and reports the native addon', async () => {
      await tf.setBackend(SPARSE_CPU_BACKEND);
      expect(tf.getBackend()).toBe(SPARSE_CPU_BACKEND);
      expect((tf.backend() as unknown as { native: { simd: string } }).native.simd).toBe(status.available ? status.info.simd : '');
    });
  });
});

suite('matMul forward', () => {
  const sizes: Array<[number, number, number]> = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 33, 9],
    [6, 16, 16],
    [64, 31, 65],
    [130, 70, 97],
    [2, 300, 1],
    [0, 3, 4],
    [3, 0, 4],
    [5, 4, 0],
  ];
  for (const [m, k, n] of sizes) {
    for (const [ta, tb] of TRANSPOSES) {
      it(`[${m}x${k}] x [${k}x${n}] transposeA=${ta} transposeB=${tb}`, async () => {
        const [sa, sb] = stored([], [], m, k, n, ta, tb);
        await expectSame([input(sa, m * 31 + k), input(sb, n * 17 + k + 1)], (a, b) => tf.matMul(a!, b!, ta, tb));
      });
    }
  }

  const batched: Array<{ name: string; outerA: number[]; outerB: number[]; cpuAgrees: boolean }> = [
    { name: 'equal batch dims', outerA: [2, 3], outerB: [2, 3], cpuAgrees: true },
    { name: 'rank-2 B broadcast over A batches', outerA: [4], outerB: [], cpuAgrees: true },
    { name: 'rank-2 A broadcast over B batches', outerA: [], outerB: [3], cpuAgrees: true },
    { name: 'size-1 batch of B', outerA: [5], outerB: [1], cpuAgrees: true },
    { name: 'B batch a suffix of A batch', outerA: [2, 3], outerB: [3], cpuAgrees: true },
    // tfjs-backend-cpu indexes batches modulo the batch size, which is wrong here; compared with float64.
    { name: 'broadcast on both sides', outerA: [3, 1], outerB: [1, 2], cpuAgrees: false },
    { name: 'middle axis broadcast', outerA: [2, 1, 3], outerB: [2, 4, 1], cpuAgrees: false },
  ];
  for (const { name, outerA, outerB, cpuAgrees } of batched) {
    for (const [ta, tb] of TRANSPOSES) {
      it(`batched, ${name}: [${outerA}] x [${outerB}] transposeA=${ta} transposeB=${tb}`, async () => {
        const [m, k, n] = [5, 9, 7];
        const [sa, sb] = stored(outerA, outerB, m, k, n, ta, tb);
        const inputs = [input(sa, 3 + outerA.length), input(sb, 11 + outerB.length)];
        const fn = (a?: tf.Tensor, b?: tf.Tensor) => tf.matMul(a!, b!, ta, tb);
        if (cpuAgrees) await expectSame(inputs, fn);
        const want = matMulReference(inputs[0]!, inputs[1]!, ta, tb);
        await tf.setBackend(SPARSE_CPU_BACKEND);
        const got = tf.tidy(() => fn(toTensor(inputs[0]!), toTensor(inputs[1]!)));
        expect(got.shape).toEqual(want.shape);
        expect(relError(got.dataSync() as Float32Array, Float32Array.from(want.values))).toBeLessThanOrEqual(1e-6);
        got.dispose();
      });
    }
  }

  it('throws tfjs-style errors for mismatched inner or batch shapes', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    expect(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 2]))).toThrow(/inner shapes/);
    expect(() => tf.matMul(tf.zeros([2, 2, 3]), tf.zeros([3, 3, 2]))).toThrow();
  });

  it('falls back to tfjs-backend-cpu for int32 operands', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const c = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([5, 6, 7, 8], [2, 2], 'int32'));
    expect(c.dtype).toBe('int32');
    expect(Array.from(c.dataSync())).toEqual([19, 22, 43, 50]);
  });

  it('leaves no data behind in the backend', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const before = tf.backend().numDataIds();
    tf.tidy(() => {
      tf.matMul(tf.ones([3, 4, 5]), tf.ones([5, 6]), false, false);
      tf.fused.matMul({ a: tf.ones([2, 3]), b: tf.ones([4, 3]), transposeB: true, bias: tf.ones([4]), activation: 'relu' });
    });
    expect(tf.backend().numDataIds()).toBe(before);
  });
});

suite('fused matMul forward', () => {
  const biasShapes: Array<{ name: string; shape: (batch: number, m: number, n: number) => number[] | undefined }> = [
    { name: 'no bias', shape: () => undefined },
    { name: 'bias [n]', shape: (_b, _m, n) => [n] },
    { name: 'bias [1, n]', shape: (_b, _m, n) => [1, n] },
    { name: 'bias [m, n]', shape: (_b, m, n) => [m, n] },
    { name: 'bias [m, 1]', shape: (_b, m) => [m, 1] },
    { name: 'bias [batch, 1, n]', shape: (b, _m, n) => [b, 1, n] },
    { name: 'scalar bias', shape: () => [] },
  ];
  for (const activation of FUSED_ACTIVATIONS) {
    for (const { name, shape } of biasShapes) {
      for (const [ta, tb] of [TRANSPOSES[0]!, TRANSPOSES[3]!]) {
        it(`${activation}, ${name}, transposeA=${ta} transposeB=${tb}`, async () => {
          const [batch, m, k, n] = [3, 7, 13, 11];
          const [sa, sb] = stored([batch], [batch], m, k, n, ta, tb);
          const bs = shape(batch, m, n);
          const inputs = [input(sa, 5), input(sb, 6)];
          if (bs) inputs.push(input(bs, 7));
          const preluIndex = inputs.length;
          if (activation === 'prelu') inputs.push(input([n], 8, 0.5));
          await expectSame(inputs, (...xs) =>
            tf.fused.matMul({
              a: xs[0]! as tf.Tensor3D,
              b: xs[1]! as tf.Tensor3D,
              transposeA: ta,
              transposeB: tb,
              bias: bs ? xs[2] : undefined,
              activation: activation as FusedActivation,
              preluActivationWeights: activation === 'prelu' ? xs[preluIndex] : undefined,
              leakyreluAlpha: 0.15,
            }),
          );
        });
      }
    }
  }

  it('prelu with scalar and [m, n] weights, 2-D operands', async () => {
    for (const w of [[], [4, 6]]) {
      await expectSame([input([4, 5], 1), input([5, 6], 2), input([6], 3), input(w, 4)], (a, b, bias, alpha) =>
        tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'prelu', preluActivationWeights: alpha }),
      );
    }
  });

  it('a bias that would enlarge the output behaves exactly as on tfjs-backend-cpu', async () => {
    // The kernel leaves it to tfjs-backend-cpu; tfjs then rejects reshaping the result to the product's shape.
    const outcome: string[] = [];
    for (const backend of BACKENDS) {
      await tf.setBackend(backend);
      try {
        tf.tidy(() => tf.fused.matMul({ a: tf.ones([1, 4, 5]) as tf.Tensor3D, b: tf.ones([1, 5, 6]) as tf.Tensor3D, bias: tf.ones([2, 4, 6]), activation: 'relu' }));
        outcome.push('ok');
      } catch (err) {
        outcome.push(String(err));
      }
    }
    expect(outcome[1]).toBe(outcome[0]);
  });
});

suite('gradients through the native products', () => {
  for (const [ta, tb] of TRANSPOSES) {
    it(`d/dA, d/dB of sum(w * matMul(A, B)), batched, transposeA=${ta} transposeB=${tb}`, async () => {
      const [m, k, n] = [9, 14, 6];
      const [sa, sb] = stored([2], [2], m, k, n, ta, tb);
      await expectSame([input(sa, 21), input(sb, 22), input([2, m, n], 23)], (a, b, w) =>
        tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w!, tf.matMul(x, y, ta, tb))))([a!, b!]),
      );
    });
  }

  for (const activation of ['linear', 'relu', 'sigmoid', 'elu'] as const) {
    for (const [ta, tb] of [TRANSPOSES[0]!, TRANSPOSES[1]!, TRANSPOSES[2]!]) {
      it(`fused matMul with bias and ${activation}, transposeA=${ta} transposeB=${tb}`, async () => {
        const [m, k, n] = [8, 12, 10];
        const [sa, sb] = stored([], [], m, k, n, ta, tb);
        await expectSame([input(sa, 31), input(sb, 32), input([n], 33), input([m, n], 34)], (a, b, bias, w) =>
          tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.sum(tf.mul(w!, tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, transposeA: ta, transposeB: tb, activation }))),
          )([a!, b!, bias!]),
        );
      });
    }
  }

  it('second-order: gradient of a gradient', async () => {
    await expectSame([input([5, 7], 41), input([7, 3], 42)], (a, b) => {
      const g = (x: tf.Tensor) => tf.grad((y: tf.Tensor) => tf.sum(tf.square(tf.matMul(y, b!))))(x);
      return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(g(x), g(x))))(a!);
    });
  });
});

/** Runs fn on both backends; the outputs must be identical (same shape, dtype and bits). */
const expectIdentical = (fn: () => tf.Tensor | tf.Tensor[]): Promise<void> => expectIdenticalOnBoth('sparse-cpu vs cpu', fn);

suite('kernels replaced by float32 fast paths match tfjs-backend-cpu exactly', () => {
  const t = (shape: number[], seed: number) => tf.tensor(input(shape, seed).values, shape);
  const pairs: Array<[number[], number[]]> = [
    [[5, 7], [5, 7]],
    [[5, 7], [5, 1]],
    [[5, 1], [5, 7]],
    [[5, 7], [7]],
    [[7], [5, 7]],
    [[5, 7], []],
    [[], [5, 7]],
    [[], []],
    [[2, 1, 3], [1, 4, 1]],
    [[3, 1, 5], [1, 4, 5]],
    [[2, 3, 4, 5], [3, 1, 5]],
    [[4, 1, 1, 6], [1, 3, 2, 1]],
    [[0, 3], [1, 3]],
  ];
  for (const op of ['add', 'sub', 'mul', 'div'] as const) {
    it(`${op} with broadcasting`, async () => {
      for (const [sa, sb] of pairs) await expectIdentical(() => tf[op](t(sa, 1), t(sb, 2)));
      // int32 goes to tfjs-backend-cpu's kernel
      await expectIdentical(() => tf[op === 'div' ? 'floorDiv' : op](tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor1d([3, 5], 'int32')));
    });
  }

  it('unsortedSegmentSum (and the gradient of gather)', async () => {
    const ids = tf.tensor1d([3, 0, 3, 1, 7, 3, 0], 'int32');
    await expectIdentical(() => tf.unsortedSegmentSum(t([7, 4, 3], 3), ids, 6)); // id 7 dropped, segments 2, 4, 5 empty
    await expectIdentical(() => tf.unsortedSegmentSum(t([7], 4), ids, 8));
    await expectIdentical(() => tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.gather(w, ids), t([7, 5], 6))))(t([9, 5], 5)));
    ids.dispose();
  });

  it('transpose of every permutation up to rank 4, float32, int32 and bool', async () => {
    const perms = (n: number): number[][] => (n === 0 ? [[]] : perms(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])));
    for (const shape of [[6], [3, 5], [2, 3, 4], [2, 3, 1, 5], [3, 0, 2]]) {
      for (const perm of perms(shape.length)) {
        await expectIdentical(() => [tf.transpose(t(shape, 7), perm), tf.transpose(tf.cast(tf.mul(t(shape, 8), 10), 'int32'), perm), tf.transpose(tf.greater(t(shape, 9), 0), perm)]);
      }
    }
  });

  it('slice and split, contiguous or not, sizes given or -1', async () => {
    const x = () => t([4, 6, 5], 10);
    await expectIdentical(() => [tf.slice(x(), [1, 2, 0], [2, 3, 5]), tf.slice(x(), [0, 1, 1], [-1, 4, 3]), tf.slice(x(), [2], [1]), tf.slice(x(), [3, 5, 4], [1, 1, 1]), tf.slice(x(), [0, 0, 0], [0, 2, 2])]);
    await expectIdentical(() => [...tf.split(x(), 2, 1), ...tf.split(x(), [1, -1, 2], 2), ...tf.split(x(), [3, 1], 0)]);
    await expectIdentical(() => tf.split(tf.cast(x(), 'int32'), [2, 4], 1));
  });

  it('sum over any axes, with and without keepDims', async () => {
    const x = () => t([3, 4, 5, 2], 11);
    for (const axis of [0, 1, 3, -1, [0, 2], [1, 3], [0, 1, 2, 3], [2, 0]] as Array<number | number[]>) {
      for (const keepDims of [false, true]) await expectIdentical(() => tf.sum(x(), axis, keepDims));
    }
    await expectIdentical(() => [tf.sum(x()), tf.sum(tf.ones([0, 3]), 0), tf.sum(tf.tensor1d([1, 2], 'int32'))]);
  });

  it('softmax over the last axis, including -Infinity and large logits', async () => {
    await expectIdentical(() => tf.softmax(t([3, 4, 7], 12)));
    await expectIdentical(() => tf.softmax(tf.tensor2d([0, -Infinity, 1, 3, 1000, 999, -1e9, -1e9, 5], [3, 3])));
    await expectIdentical(() => tf.softmax(tf.tensor1d([1, 2, 3, 4])));
  });
});

// A small pre-norm transformer written with tfjs ops: embeddings (gather), layer norm, causal
// multi-head attention with softmax, a GELU MLP and a ReLU MLP, tied output, cross-entropy.
interface TinyConfig {
  vocab: number;
  d: number;
  heads: number;
  t: number;
  batch: number;
}

function initParams(cfg: TinyConfig, seed: number): Record<string, Input> {
  const { vocab, d, t } = cfg;
  const next = rng(seed);
  const normal = (shape: number[], std: number): Input => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      // Box-Muller from the seeded uniform generator.
      const u = Math.max(next(), 1e-12);
      values[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    }
    return { shape, values };
  };
  const fill = (shape: number[], v: number): Input => ({ shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });
  const lin = 1 / Math.sqrt(d);
  return {
    wte: normal([vocab, d], 0.1),
    wpe: normal([t, d], 0.1),
    ln1g: fill([d], 1),
    ln1b: fill([d], 0),
    wqkv: normal([d, 3 * d], lin),
    bqkv: fill([3 * d], 0),
    wo: normal([d, d], lin),
    ln2g: fill([d], 1),
    ln2b: fill([d], 0),
    w1: normal([d, 4 * d], lin),
    b1: fill([4 * d], 0.01),
    w2: normal([4 * d, d], 1 / Math.sqrt(4 * d)),
    w3: normal([d, 2 * d], lin),
    w4: normal([2 * d, d], 1 / Math.sqrt(2 * d)),
    lnfg: fill([d], 1),
    lnfb: fill([d], 0),
  };
}

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
}

function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

function tinyLoss(cfg: TinyConfig, p: Record<string, tf.Tensor>, tokens: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  const { d, heads, t, batch, vocab } = cfg;
  const hd = d / heads;
  const flat = tf.reshape(tokens, [-1]);
  let x = tf.add(tf.reshape(tf.gather(p.wte!, flat), [batch, t, d]), p.wpe!);
  // attention
  const h = layerNorm(x, p.ln1g!, p.ln1b!);
  const qkv = tf.reshape(tf.fused.matMul({ a: tf.reshape(h, [batch * t, d]) as tf.Tensor2D, b: p.wqkv as tf.Tensor2D, bias: p.bqkv }), [batch, t, 3, heads, hd]);
  const [q, k, v] = tf.split(qkv, 3, 2).map((z) => tf.transpose(tf.reshape(z, [batch, t, heads, hd]), [0, 2, 1, 3]));
  const causal = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
  const scores = tf.add(tf.mul(tf.matMul(q!, k!, false, true), 1 / Math.sqrt(hd)), tf.mul(tf.sub(1, causal), -1e9));
  const att = tf.matMul(tf.softmax(scores), v!);
  const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [batch * t, d]);
  x = tf.add(x, tf.reshape(tf.matMul(merged, p.wo!), [batch, t, d]));
  // GELU MLP, then a ReLU MLP through the fused kernel
  const h2 = tf.reshape(layerNorm(x, p.ln2g!, p.ln2b!), [batch * t, d]);
  const mlp = tf.matMul(gelu(tf.add(tf.matMul(h2, p.w1!), p.b1!)), p.w2!);
  const relu = tf.matMul(tf.fused.matMul({ a: h2 as tf.Tensor2D, b: p.w3 as tf.Tensor2D, activation: 'relu' }), p.w4!);
  x = tf.add(x, tf.reshape(tf.add(mlp, relu), [batch, t, d]));
  const out = layerNorm(tf.reshape(x, [batch * t, d]), p.lnfg!, p.lnfb!);
  const logits = tf.matMul(out, p.wte!, false, true);
  const labels = tf.oneHot(tf.reshape(targets, [-1]), vocab);
  return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
}

suite('training step of a small transformer', () => {
  it('one Adam step gives the same losses and parameters on sparse-cpu and cpu (1e-4 relative)', async () => {
    const cfg: TinyConfig = { vocab: 37, d: 32, heads: 4, t: 12, batch: 3 };
    const init = initParams(cfg, 1234);
    const next = rng(99);
    const tokens = Int32Array.from({ length: cfg.batch * cfg.t }, () => Math.floor(next() * cfg.vocab));
    const targets = Int32Array.from({ length: cfg.batch * cfg.t }, () => Math.floor(next() * cfg.vocab));
    const results: Record<string, { before: number; after: number; params: Record<string, Float32Array> }> = {};
    for (const backend of BACKENDS) {
      await tf.setBackend(backend);
      const vars: Record<string, tf.Variable> = {};
      for (const [name, v] of Object.entries(init)) vars[name] = tf.variable(tf.tensor(v.values, v.shape), true, `${backend}/${name}`);
      const tok = tf.tensor2d(tokens, [cfg.batch, cfg.t], 'int32');
      const tgt = tf.tensor2d(targets, [cfg.batch, cfg.t], 'int32');
      const optimizer = tf.train.adam(0.01);
      const loss0 = optimizer.minimize(() => tinyLoss(cfg, vars, tok, tgt), true, Object.values(vars))!;
      const before = loss0.dataSync()[0]!;
      const loss1 = tf.tidy(() => tinyLoss(cfg, vars, tok, tgt));
      const after = loss1.dataSync()[0]!;
      const params = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, v.dataSync() as Float32Array]));
      results[backend] = { before, after, params };
      tf.dispose([loss0, loss1, tok, tgt, ...Object.values(vars)]);
      optimizer.dispose();
    }
    const cpu = results.cpu!;
    const native = results[SPARSE_CPU_BACKEND]!;
    expect(Number.isFinite(cpu.before) && Number.isFinite(cpu.after)).toBe(true);
    expect(cpu.after).toBeLessThan(cpu.before); // the step did something
    expect(Math.abs(native.before - cpu.before) / Math.abs(cpu.before)).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(native.after - cpu.after) / Math.abs(cpu.after)).toBeLessThanOrEqual(1e-4);
    // The key bias (bqkv[d:2d]) has an exact gradient of zero (softmax ignores a shift shared by a
    // row of scores), so Adam's first step moves it by +-lr on the sign of rounding noise, on either
    // backend; it is left out. Every other parameter must agree.
    const { d } = cfg;
    for (const p of [cpu.params, native.params]) p.bqkv = Float32Array.from(p.bqkv!).fill(0, d, 2 * d);
    for (const name of Object.keys(init)) expect(relError(native.params[name]!, cpu.params[name]!), name).toBeLessThanOrEqual(1e-4);
  });
});
