// The addon's float32 elementwise kernels behind 'sparse-cpu' (Add, Sub, Multiply, RealDiv; Neg,
// Abs, Square, Sqrt, Rsqrt, Reciprocal, Relu, Exp, Sigmoid; Sum, Max; the strided copies of
// Transpose, Slice, SplitV) against tfjs-backend-cpu, the kernels they replace. Arithmetic and Max must be identical element for element (Object.is: NaN equals NaN,
// +0 and -0 differ) on seeded data mixed with ±Infinity, NaN, ±0, subnormals and extremes, over
// same-shape, scalar, trailing, column and general broadcasts, odd sizes, empty tensors and sizes
// that split across the pool's threads. Sum may differ by its float64 summation order only:
// |got - want| <= 2^-23 |want| + cols * 2^-51 * sum |x| per output (an ulp of the float32 result
// plus both float64 accumulations' error bounds). Gradients through the ops are compared too, and
// the binding's portable spans (SPARSE_FORCE_SCALAR, in a child process) and argument checks.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { BACKENDS, expectIdentical, firstDifference, onBoth, useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { nativeStatus, type NativeAddon } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { NATIVE_TFJS_KERNELS, sparseCPURegistration } from './tfjs.js';

const status = nativeStatus();
const addon: NativeAddon | undefined = status.available ? status.addon : undefined;
const hasElementwise = typeof addon?.elementwiseBinary === 'function';
const suite = nativeSuite(hasElementwise ? undefined : status.available ? 'it exports no elementwiseBinary() (stale build?)' : status.reason);

const SPECIAL = [0, -0, 1, -1, 0.5, -3, 1e-7, 1e-30, -1e-30, 1e-45, -1e-45, 1.17549435e-38, 3.4028234e38, -3.4028234e38, 1e20, -1e20, Infinity, -Infinity, NaN];

/** Seeded values: uniform in [-1, 1) times 10^e for e in [-6, 6], with a special value at about one in eight positions. */
function values(n: number, seed: number, specials = true): Float32Array {
  const r = new Random(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = specials && r.uniform() < 0.125 ? SPECIAL[r.int(0, SPECIAL.length)]! : r.uniform(-1, 1) * 10 ** r.int(-6, 7);
  return out;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const tensor = (shape: number[], seed: number, specials = true) => tf.tensor(values(sizeOf(shape), seed, specials), shape, 'float32');

useQuietCPUBackend();

const BINARY = { Add: tf.add, Sub: tf.sub, Multiply: tf.mul, RealDiv: tf.div } as const;

// [a shape, b shape]: same shape, scalars, a trailing operand (bias), a column (per-row value),
// general broadcasts, empty tensors, and sizes past the thread split (262144 elements), one of them
// splitting in the middle of a row.
const PAIRS: Array<[number[], number[]]> = [
  [[1031], [1031]],
  [[37, 129], [37, 129]],
  [[517, 3], []],
  [[], [517, 3]],
  [[], []],
  [[300, 257], [257]],
  [[257], [300, 257]],
  [[2, 150, 33], [150, 33]],
  [[64, 67], [1, 67]],
  [[257, 300], [257, 1]],
  [[1, 300], [257, 300]],
  [[5, 1, 7, 9], [1, 11, 7, 1]],
  [[4, 1, 1, 6], [1, 3, 2, 1]],
  [[2, 3, 1, 5, 7], [3, 4, 1, 7]],
  [[0, 3], [1, 3]],
  [[4, 0], [4, 1]],
  [[0], []],
  [[3, 100003], [3, 100003]],
  [[3, 100003], [3, 1]],
  [[1003, 301], [301]],
  [[301903], []],
];

suite('native binary arithmetic matches tfjs-backend-cpu bit for bit', () => {
  it('is registered as native', () => {
    for (const op of Object.keys(BINARY)) {
      expect(NATIVE_TFJS_KERNELS).toContain(op);
      expect(sparseCPURegistration.nativeKernels).toContain(op);
    }
  });

  for (const [name, op] of Object.entries(BINARY)) {
    it(`${name}: every broadcast form, special values, odd, empty and threaded sizes`, async () => {
      for (const [sa, sb] of PAIRS) await expectIdentical(`${name} [${sa}] [${sb}]`, () => op(tensor(sa, 1), tensor(sb, 2)));
      // Same tensor on both sides, and a reused input.
      await expectIdentical(`${name} x x`, () => {
        const x = tensor([45, 31], 3);
        return op(x, x);
      });
    });
  }

  it('int32 and mixed dtypes go to tfjs-backend-cpu', async () => {
    const i = () => tf.tensor2d([1, -2, 3, 40, 5, 6], [2, 3], 'int32');
    await expectIdentical('int32', () => [tf.add(i(), i()), tf.sub(i(), tf.scalar(3, 'int32')), tf.mul(i(), i()), tf.div(i(), tf.scalar(4, 'int32'))]);
  });

  it('raises tfjs-backend-cpu errors for shapes that do not broadcast', async () => {
    for (const backend of BACKENDS) {
      await tf.setBackend(backend);
      expect(() => tf.tidy(() => tf.add(tf.zeros([3, 4]), tf.zeros([5])))).toThrow(/broadcast/);
    }
  });
});

const UNARY = { Neg: tf.neg, Abs: tf.abs, Square: tf.square, Sqrt: tf.sqrt, Rsqrt: tf.rsqrt, Reciprocal: tf.reciprocal, Relu: tf.relu, Exp: tf.exp, Sigmoid: tf.sigmoid } as const;

suite('native exact unary maps match tfjs-backend-cpu bit for bit', () => {
  for (const [name, op] of Object.entries(UNARY)) {
    it(`${name}: special values, odd and threaded sizes`, async () => {
      expect(sparseCPURegistration.nativeKernels).toContain(name);
      for (const shape of [[129], [1021], [7, 0], [3, 100003]]) await expectIdentical(`${name} [${shape}]`, () => op(tensor(shape, 4)));
    });
  }

  // Exp and Sigmoid reproduce Math.exp: every float32 bit pattern class (random bits: subnormals,
  // NaNs with payloads, huge values), the range where results are neither 0, 1 nor Infinity, and
  // the edges of fdlibm's branches (|x| near 2^-28, 0.5 ln2, 1.5 ln2, the overflow and underflow thresholds).
  it('Exp and Sigmoid: Math.exp reproduced on a million inputs and at its branch edges', async () => {
    const r = new Random(80);
    const n = 1 << 20;
    const x = new Float32Array(n);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) bits[i] = r.int(0, 2 ** 32);
      else x[i] = r.uniform(-1, 1) * (i % 3 === 1 ? 110 : 2);
    }
    const edges = [2 ** -28, 0.5 * Math.LN2, 1.5 * Math.LN2, 88.72283, 709.78, -745.13, 1, 0.3465736, 1.0397208].flatMap((v) => [v, -v]);
    const near = edges.flatMap((v) => [Math.fround(v), Math.fround(v * (1 + 2 ** -23)), Math.fround(v * (1 - 2 ** -23))]);
    for (const [name, op] of [['Exp', tf.exp], ['Sigmoid', tf.sigmoid]] as const) {
      await expectIdentical(`${name} random`, () => op(tf.tensor1d(x)));
      await expectIdentical(`${name} edges`, () => op(tf.tensor1d(Float32Array.from([...near, ...near, ...near, ...near]))));
    }
  });
});

/** Sum compared within its stated tolerance, against tfjs-backend-cpu and against a float64 sum of |x|. */
async function expectSumClose(shape: number[], axis: number | number[], keepDims: boolean, seed: number): Promise<void> {
  const x = () => tensor(shape, seed, false);
  const { cpu, sparse } = await onBoth(() => [tf.sum(x(), axis, keepDims), tf.sum(tf.abs(x()), axis, keepDims)]);
  const want = cpu[0]!;
  const got = sparse[0]!;
  expect(got.shape).toEqual(want.shape);
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
  const cols = sizeOf(axes.map((a) => shape[a]!));
  for (let i = 0; i < want.values.length; i++) {
    const tol = 2 ** -23 * Math.abs(want.values[i]!) + cols * 2 ** -51 * cpu[1]!.values[i]!;
    expect(Math.abs(got.values[i]! - want.values[i]!), `sum [${shape}] axis ${axis} output ${i}`).toBeLessThanOrEqual(tol);
  }
}

suite('native reductions over the innermost axes', () => {
  it('Sum is registered as native and is within its tolerance of tfjs-backend-cpu', async () => {
    expect(sparseCPURegistration.nativeKernels).toEqual(expect.arrayContaining(['Sum', 'Max']));
    const cases: Array<[number[], number | number[], boolean]> = [
      [[37, 129], 1, false],
      [[37, 129], -1, true],
      [[300, 7], 1, false],
      [[4, 5, 6], [1, 2], false],
      [[4, 5, 6], 0, true],
      [[4, 5, 6], [0, 2], false],
      [[9, 1031], 1, false],
      [[2, 200003], 1, false],
      [[1000, 300], 1, false],
      [[100003], 0, false],
    ];
    let seed = 10;
    for (const [shape, axis, keepDims] of cases) await expectSumClose(shape, axis, keepDims, seed++);
  });

  it('Sum of short rows (under 16 columns) is exact, and empty sums are 0', async () => {
    await expectIdentical('short rows', () => [tf.sum(tensor([200, 15], 20, false), 1), tf.sum(tensor([300, 3], 21, false), 1)]);
    await expectIdentical('empty', () => [tf.sum(tf.zeros([3, 0]), 1), tf.sum(tf.zeros([0, 3]), 1), tf.sum(tf.zeros([0, 3]), 0)]);
  });

  it('Max is exact: NaN wins, the first of ±0 is kept, -Infinity rows, any axes', async () => {
    const rows = [
      [1, NaN, 3],
      [-0, 0, -1],
      [0, -0, -1],
      [-Infinity, -Infinity, -Infinity],
      [-5, -0, -3],
      [2, 2, NaN],
      [-1e-45, -3, -2],
      [3.4028234e38, Infinity, 1],
    ];
    // Each special row spread over 40 columns (past the 16-lane vector loop), the rest -2.
    const cols = 40;
    const data = new Float32Array(rows.length * cols).fill(-2);
    rows.forEach((row, r) => row.forEach((v, k) => (data[r * cols + 7 + k * 11] = v)));
    await expectIdentical('special rows', () => [tf.max(tf.tensor2d(data, [rows.length, cols]), 1), tf.max(tf.tensor2d(data, [rows.length, cols]), 1, true)]);
    for (const [shape, axis] of [
      [[37, 129], 1],
      [[4, 5, 6], [0, 2]],
      [[4, 5, 6], 1],
      [[9, 1031], -1],
      [[2, 200003], 1],
      [[1000, 301], 1],
      [[6], 0],
    ] as Array<[number[], number | number[]]>) {
      await expectIdentical(`max [${shape}] ${axis}`, () => tf.max(tensor(shape, 30), axis));
    }
  });

  it('Max of an empty axis and of int32 go to tfjs-backend-cpu', async () => {
    await expectIdentical('int32', () => tf.max(tf.tensor2d([1, 5, -3, 2], [2, 2], 'int32'), 1));
    await expectIdentical('empty rows', () => tf.max(tf.zeros([0, 4]), 1));
  });
});

suite('native strided copies (Transpose, Slice, SplitV) match tfjs-backend-cpu exactly', () => {
  const perms = (n: number): number[][] => (n === 0 ? [[]] : perms(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)])));
  // int32 values whose bits read as float32 NaNs with payloads, infinities and -0: copies must move bits.
  const ints = (shape: number[], seed: number) => {
    const r = new Random(seed);
    const odd = [0x7fc00001, -0x3fffff, 0x7f800000, -0x80000000, 0x7fffffff, 1, -1, 0];
    return tf.tensor(Int32Array.from({ length: sizeOf(shape) }, () => (r.uniform() < 0.3 ? odd[r.int(0, odd.length)]! : r.int(-1e9, 1e9))), shape, 'int32');
  };

  it('are registered as native', () => {
    for (const k of ['Transpose', 'Slice', 'SplitV']) expect(sparseCPURegistration.nativeKernels).toContain(k);
  });

  it('transpose: every permutation of a rank-4 tensor, float32, int32 and bool', async () => {
    for (const perm of perms(4)) {
      await expectIdentical(`transpose ${perm}`, () => [tf.transpose(tensor([5, 7, 9, 11], 60), perm), tf.transpose(ints([5, 7, 9, 11], 61), perm), tf.transpose(tf.greater(tensor([5, 7, 9, 11], 62), 0), perm)]);
    }
  });

  it('transpose: attention layouts, size-1 axes, threaded sizes', async () => {
    await expectIdentical('qkv', () => [tf.transpose(tensor([8, 32, 3, 4, 8], 63), [2, 0, 3, 1, 4]), tf.transpose(tensor([3, 8, 4, 32, 8], 64), [1, 3, 0, 2, 4])]);
    await expectIdentical('ones', () => tf.transpose(tensor([1, 33, 1, 17, 1], 65), [4, 3, 2, 1, 0]));
    await expectIdentical('big', () => [tf.transpose(tensor([3, 100003], 66), [1, 0]), tf.transpose(ints([517, 1031], 67), [1, 0])]);
  });

  it('slice and split: contiguous or not, int32, threaded sizes', async () => {
    const x = () => tensor([40, 60, 50], 68);
    await expectIdentical('slice', () => [tf.slice(x(), [1, 2, 0], [20, 30, 50]), tf.slice(x(), [3, 1, 1], [-1, 40, 33]), tf.slice(x(), [39, 0, 0], [1, 60, 50]), tf.slice(ints([40, 60, 50], 69), [5, 5, 5], [30, 30, 30])]);
    await expectIdentical('split', () => [...tf.split(x(), 3, 1), ...tf.split(x(), [7, -1, 13], 2), ...tf.split(x(), [10, 30], 0), ...tf.split(ints([40, 60, 50], 70), 2, 2)]);
    await expectIdentical('big', () => tf.split(tensor([3, 200003], 71), [100001, 100002], 1));
  });
});

suite('gradients through the native kernels match plain cpu', () => {
  it('same-shape arithmetic: identical gradients', async () => {
    const y = () => tf.add(tf.abs(tensor([33, 65], 41, false)), 0.5);
    await expectIdentical('d/dx', () => tf.grad((x: tf.Tensor) => tf.sum(tf.sub(tf.mul(x, y()), tf.div(tf.square(x), y()))))(tensor([33, 65], 40, false)));
  });

  it('broadcasting arithmetic (a layer norm with gain and bias): gradients within 1e-6 relative', async () => {
    const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const mean = tf.mean(x, -1, true);
      const xc = tf.sub(x, mean);
      const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), 1e-5));
      const y = tf.add(tf.mul(tf.mul(xc, rstd), g), b);
      return tf.sum(tf.mul(tf.relu(y), tf.max(x, -1, true)));
    };
    const { cpu, sparse } = await onBoth(() => tf.grads(f)([tensor([96, 40], 42, false), tensor([40], 43, false), tensor([40], 44, false)]));
    cpu.forEach((want, j) => {
      const got = sparse[j]!;
      expect(got.shape).toEqual(want.shape);
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < want.values.length; i++) {
        scale = Math.max(scale, Math.abs(want.values[i]!));
        diff = Math.max(diff, Math.abs(got.values[i]! - want.values[i]!));
      }
      expect(diff, `gradient ${j}`).toBeLessThanOrEqual(1e-6 * scale);
    });
  });
});

suite('the binding', () => {
  const a = addon!;
  const f32 = (n: number) => new Float32Array(n);

  it('checks operator codes, lengths, steps, overlap and types', () => {
    const plan = Float64Array.of(4, 1, 1);
    expect(() => a.elementwiseBinary!(4, f32(4), f32(4), f32(4), 1, plan)).toThrow(/op must be below 4/);
    expect(() => a.elementwiseBinary!(0, f32(3), f32(4), f32(4), 1, plan)).toThrow(/a is too short/);
    expect(() => a.elementwiseBinary!(0, f32(4), f32(4), f32(3), 1, plan)).toThrow(/out is shorter/);
    expect(() => a.elementwiseBinary!(0, f32(8), f32(8), f32(4), 1, Float64Array.of(4, 2, 1))).toThrow(/innermost steps/);
    expect(() => a.elementwiseBinary!(0, f32(4), f32(4), f32(4), 9, new Float64Array(27))).toThrow(/more than 8 axes/);
    expect(() => a.elementwiseBinary!(0, f32(4), f32(4), f32(4), 2, plan)).toThrow(/plan is shorter/);
    expect(() => a.elementwiseBinary!(0, f32(4), f32(4), f32(4), 1, Float64Array.of(4, 0.5, 1))).toThrow(/non-negative integer/);
    const shared = f32(8);
    expect(() => a.elementwiseBinary!(0, shared.subarray(2, 6), f32(4), shared.subarray(0, 4), 1, plan)).toThrow(/out overlaps a/);
    expect(() => a.elementwiseBinary!(0, f32(4), new Float64Array(4) as unknown as Float32Array, f32(4), 1, plan)).toThrow(TypeError);
    expect(() => a.elementwiseUnary!(9, f32(4), f32(4))).toThrow(/op must be below 9/);
    expect(() => a.elementwiseUnary!(0, f32(4), f32(3))).toThrow(/out is shorter/);
    expect(() => a.elementwiseUnary!(0, shared.subarray(0, 4), shared.subarray(3, 7))).toThrow(/overlaps/);
    expect(() => a.reduceLastAxis!(2, f32(4), 2, 2, f32(2))).toThrow(/op must be below 2/);
    expect(() => a.reduceLastAxis!(0, f32(4), 2, 0, f32(2))).toThrow(/cols must be positive/);
    expect(() => a.reduceLastAxis!(0, f32(5), 2, 3, f32(2))).toThrow(/x is shorter/);
    expect(() => a.reduceLastAxis!(0, f32(6), 2, 3, f32(1))).toThrow(/out is shorter/);
    expect(() => a.gather32!(f32(10), 3, f32(8), 1, Float64Array.of(8, 1))).toThrow(/x is too short/);
    expect(() => a.gather32!(f32(10), 0, f32(4), 2, Float64Array.of(2, 3, 1, 2))).toThrow(/out is shorter/);
    expect(() => a.gather32!(f32(10), 0, f32(4), 2, Float64Array.of(2, 2, 1))).toThrow(/plan is shorter/);
    expect(() => a.gather32!(shared, 0, shared.subarray(4, 8), 1, Float64Array.of(4, 2))).toThrow(/out overlaps x/);
    const g = f32(6);
    a.gather32!(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 1, g, 2, Float64Array.of(3, 2, 3, 1));
    expect(Array.from(g)).toEqual([1, 4, 7, 2, 5, 8]);
  });

  it('the portable spans (SPARSE_FORCE_SCALAR) give the same values as AVX2 and as float64-then-round references', () => {
    if (!status.available) throw new Error('unreachable: this suite runs only with the addon');
    const n = 1037;
    const x = values(n, 50);
    const y = values(n, 51);
    // Independent references: each element in float64, rounded once, as tfjs-backend-cpu writes them.
    const fr = Math.fround;
    const refs: Record<string, Float32Array> = {
      add: x.map((v, i) => fr(v + y[i]!)),
      sub: x.map((v, i) => fr(v - y[i]!)),
      mul: x.map((v, i) => fr(v * y[i]!)),
      div: x.map((v, i) => fr(v / y[i]!)),
      divScalar: x.map((v) => fr(v / y[5]!)),
      neg: x.map((v) => -v),
      abs: x.map((v) => Math.abs(v)),
      square: x.map((v) => fr(v * v)),
      sqrt: x.map((v) => fr(Math.sqrt(v))),
      rsqrt: x.map((v) => fr(1 / Math.sqrt(v))),
      reciprocal: x.map((v) => fr(1 / v)),
      relu: x.map((v) => Math.max(0, v)),
      exp: x.map((v) => fr(Math.exp(v))),
      sigmoid: x.map((v) => fr(1 / (1 + Math.exp(-v)))),
    };
    // The kernels under test, as a snippet run here (AVX2) and in a child forced to the portable spans.
    const snippet = `
      const run = (addon, x, y) => {
        const n = x.length, out = {};
        const bin = (op, sb, name) => { const o = new Float32Array(n); addon.elementwiseBinary(op, x, sb ? y : y.subarray(5, 6), o, 1, Float64Array.of(n, 1, sb)); out[name] = o; };
        bin(0, 1, 'add'); bin(1, 1, 'sub'); bin(2, 1, 'mul'); bin(3, 1, 'div'); bin(3, 0, 'divScalar');
        ['neg', 'abs', 'square', 'sqrt', 'rsqrt', 'reciprocal', 'relu', 'exp', 'sigmoid'].forEach((name, op) => { const o = new Float32Array(n); addon.elementwiseUnary(op, x, o); out[name] = o; });
        // Finite row sums: magnitudes from 1e30 on (and NaN) count as 0.
        const rows = 17, cols = Math.floor(n / rows), absx = x.map(Math.abs).map((v) => (v < 1e30 ? v : 0));
        const s = new Float32Array(rows); addon.reduceLastAxis(0, absx, rows, cols, s); out.sum = s;
        const m = new Float32Array(rows); addon.reduceLastAxis(1, x, rows, cols, m); out.max = m;
        return out;
      };`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sparse-elementwise-'));
    try {
      const input = path.join(dir, 'in.json');
      const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      const unb64 = (s: string) => {
        const b = Buffer.from(s, 'base64');
        return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      };
      writeFileSync(input, JSON.stringify({ x: b64(x), y: b64(y) }));
      const child = `
        const addon = require(${JSON.stringify(status.path)});
        const fs = require('node:fs');
        const unb64 = (s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
        ${snippet}
        const io = JSON.parse(fs.readFileSync(${JSON.stringify(input)}, 'utf8'));
        const out = run(addon, unb64(io.x), unb64(io.y));
        const enc = {};
        for (const [k, v] of Object.entries(out)) enc[k] = Buffer.from(v.buffer).toString('base64');
        console.log(JSON.stringify({ simd: addon.info().simd, out: enc }));`;
      const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', env: { ...process.env, SPARSE_CPU_ISA: 'scalar', SPARSE_FORCE_SCALAR: '1' }, timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const scalar = JSON.parse(r.stdout) as { simd: string; out: Record<string, string> };
      expect(scalar.simd).toBe('scalar');
      const here = (new Function(`${snippet}; return run;`)() as (addon: NativeAddon, x: Float32Array, y: Float32Array) => Record<string, Float32Array>)(a, x, y);
      for (const [name, want] of Object.entries(refs)) {
        const got = unb64(scalar.out[name]!);
        expect(firstDifference(got, want), `scalar ${name}`).toBe(-1);
        expect(firstDifference(here[name]!, want), `${status.info.simd} ${name}`).toBe(-1);
      }
      // Reductions: max exactly as tfjs's rule; the portable sum in tfjs's order exactly, the vector
      // sum within the stated tolerance of it.
      const rows = 17;
      const cols = Math.floor(n / rows);
      const absx = x.map(Math.abs).map((v) => (v < 1e30 ? v : 0));
      const sumRef = new Float32Array(rows);
      const maxRef = new Float32Array(rows);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        let m = x[i * cols]!;
        for (let j = 0; j < cols; j++) {
          s += absx[i * cols + j]!;
          const v = x[i * cols + j]!;
          if (Number.isNaN(v) || v > m) m = v;
        }
        sumRef[i] = s;
        maxRef[i] = m;
      }
      expect(firstDifference(unb64(scalar.out.sum!), sumRef), 'scalar sum').toBe(-1);
      expect(firstDifference(unb64(scalar.out.max!), maxRef), 'scalar max').toBe(-1);
      expect(firstDifference(here.max!, maxRef), 'max').toBe(-1);
      here.sum!.forEach((v, i) => expect(Math.abs(v - sumRef[i]!)).toBeLessThanOrEqual(2 ** -23 * sumRef[i]! + cols * 2 ** -51 * sumRef[i]!));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Every vector family this machine runs (a child per family, forced with SPARSE_CPU_ISA, which must be
// the family that ran), on lengths around the 8- and 16-lane vectors and their masked tails, every
// broadcast form: each span against its float64-then-round reference bit for bit (Max: tfjs's rule),
// and the row sums the same bits in every vector family (the 16-wide sum keeps the AVX2 order of its
// float64 partial sums). A family the machine cannot run is reported skipped, with the reason.
suite('every kernel family gives the same elementwise bits, tails included', () => {
  const cpu = status.available ? status.info.cpu : undefined;
  const built = new Set((cpu?.built ?? '').split(','));
  const families = [
    { isa: 'avx2', runs: built.has('avx2') && cpu?.avx2 === true, why: 'this CPU or build lacks AVX2+FMA' },
    { isa: 'avx512-emu', runs: built.has('avx512-emu') && cpu?.avx2 === true, why: built.has('avx512-emu') ? 'this CPU lacks AVX2+FMA' : 'built without the 16-wide kernels' },
    { isa: 'avx512', runs: built.has('avx512') && cpu?.avx512 === true, why: built.has('avx512') ? 'this CPU or OS lacks AVX-512 F/BW/VL' : 'built without the 16-wide kernels' },
  ];
  const LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 1003];
  const ROWS = 3;
  const UNARY_NAMES = ['neg', 'abs', 'square', 'sqrt', 'rsqrt', 'reciprocal', 'relu', 'exp', 'sigmoid'];
  const fr = Math.fround;
  const unaryRef: Record<string, (v: number) => number> = {
    neg: (v) => -v,
    abs: Math.abs,
    square: (v) => fr(v * v),
    sqrt: (v) => fr(Math.sqrt(v)),
    rsqrt: (v) => fr(1 / Math.sqrt(v)),
    reciprocal: (v) => fr(1 / v),
    relu: (v) => Math.max(0, v),
    exp: (v) => fr(Math.exp(v)),
    sigmoid: (v) => fr(1 / (1 + Math.exp(-v))),
  };
  const binaryRef = [(p: number, q: number) => fr(p + q), (p: number, q: number) => fr(p - q), (p: number, q: number) => fr(p * q), (p: number, q: number) => fr(p / q)];
  // Inputs per length: x and y of ROWS * n values (the binary and unary spans read the first n).
  const inputs = LENGTHS.map((n, i) => ({ n, x: values(ROWS * n, 900 + i), y: values(n, 950 + i) }));

  const child = (isa: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sparse-families-'));
    try {
      const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      const input = path.join(dir, 'in.json');
      writeFileSync(input, JSON.stringify(inputs.map((c) => ({ n: c.n, x: b64(c.x), y: b64(c.y) }))));
      const script = `
        const addon = require(${JSON.stringify(status.available ? status.path : '')});
        const fs = require('node:fs');
        const unb64 = (s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
        const enc = (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
        const out = [];
        for (const c of JSON.parse(fs.readFileSync(${JSON.stringify(input)}, 'utf8'))) {
          const n = c.n, x = unb64(c.x), y = unb64(c.y), r = { binary: [], unary: [] };
          for (let op = 0; op < 4; op++) {
            for (const [sa, sb] of [[1, 1], [1, 0], [0, 1], [0, 0]]) {
              const o = new Float32Array(n);
              addon.elementwiseBinary(op, sa ? x.subarray(0, n) : x.subarray(1, 2), sb ? y : y.subarray(n - 1), o, 1, Float64Array.of(n, sa, sb));
              r.binary.push(enc(o));
            }
          }
          for (let op = 0; op < 9; op++) { const o = new Float32Array(n); addon.elementwiseUnary(op, x.subarray(0, n), o); r.unary.push(enc(o)); }
          const absx = x.map(Math.abs).map((v) => (v < 1e30 ? v : 0));
          const s = new Float32Array(${ROWS}); addon.reduceLastAxis(0, absx, ${ROWS}, n, s); r.sum = enc(s);
          const m = new Float32Array(${ROWS}); addon.reduceLastAxis(1, x, ${ROWS}, n, m); r.max = enc(m);
          out.push(r);
        }
        // Rows whose float32 sum depends on how the float64 partial sums are associated: 1 and 2^-24
        // (a float32 tie) plus two 2^-53 that push it up only when they meet each other first.
        const ordered = [];
        for (const cols of [16, 35]) {
          const x = new Float32Array(4 * cols);
          for (let r = 0; r < 4; r++) { x[r * cols + r] = 1; x[r * cols + 4 + r] = 2 ** -24; x[r * cols + 8 + r] = 2 ** -53; x[r * cols + 12 + r] = 2 ** -53; }
          const s = new Float32Array(4); addon.reduceLastAxis(0, x, 4, cols, s); ordered.push(enc(s));
        }
        console.log(JSON.stringify({ isa: addon.info().isa, note: addon.info().isaNote, out, ordered }));`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, SPARSE_CPU_ISA: isa }, timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { isa: string; note: string; out: Array<{ binary: string[]; unary: string[]; sum: string; max: string }>; ordered: string[] };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const unb64 = (s: string) => {
    const b = Buffer.from(s, 'base64');
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };

  for (const f of families) {
    it.skipIf(!f.runs)(`${f.isa}: binary, unary, Sum and Max spans on lengths ${LENGTHS.join(', ')}${f.runs ? '' : ` (skipped: ${f.why})`}`, () => {
      const got = child(f.isa);
      expect(got.isa, got.note).toBe(f.isa);
      const familySums: Float32Array[] = [];
      inputs.forEach(({ n, x, y }, i) => {
        const r = got.out[i]!;
        let at = 0;
        for (let op = 0; op < 4; op++) {
          for (const [sa, sb] of [[1, 1], [1, 0], [0, 1], [0, 0]] as const) {
            const want = Float32Array.from({ length: n }, (_, j) => binaryRef[op]!(sa ? x[j]! : x[1]!, sb ? y[j]! : y[n - 1]!));
            expect(firstDifference(unb64(r.binary[at++]!), want), `${f.isa} binary op ${op} (${sa}, ${sb}) n ${n}`).toBe(-1);
          }
        }
        UNARY_NAMES.forEach((name, op) => {
          const want = Float32Array.from({ length: n }, (_, j) => unaryRef[name]!(x[j]!));
          expect(firstDifference(unb64(r.unary[op]!), want), `${f.isa} ${name} n ${n}`).toBe(-1);
        });
        const sumRef = new Float32Array(ROWS);
        const maxRef = new Float32Array(ROWS);
        for (let row = 0; row < ROWS; row++) {
          let s = 0;
          let m = x[row * n]!;
          for (let j = 0; j < n; j++) {
            const v = x[row * n + j]!;
            s += Math.abs(v) < 1e30 ? Math.abs(v) : 0;
            if (Number.isNaN(v) || v > m) m = v;
          }
          sumRef[row] = s;
          maxRef[row] = m;
        }
        expect(firstDifference(unb64(r.max), maxRef), `${f.isa} max n ${n}`).toBe(-1);
        const sum = unb64(r.sum);
        sum.forEach((v, row) => expect(Math.abs(v - sumRef[row]!), `${f.isa} sum n ${n} row ${row}`).toBeLessThanOrEqual(2 ** -23 * sumRef[row]! + n * 2 ** -51 * sumRef[row]!));
        familySums.push(sum);
      });
      // The 16-wide families must give the AVX2 family's sums bit for bit (avx2 runs wherever they do).
      if (f.isa !== 'avx2') {
        const avx2 = child('avx2');
        expect(avx2.isa, avx2.note).toBe('avx2');
        familySums.forEach((s, i) => expect(firstDifference(s, unb64(avx2.out[i]!.sum)), `${f.isa} sum n ${inputs[i]!.n} vs avx2`).toBe(-1));
        got.ordered.forEach((s, i) => expect(firstDifference(unb64(s), unb64(avx2.ordered[i]!)), `${f.isa} order-sensitive sums ${i}`).toBe(-1));
      } else {
        // The AVX2 order meets the two 2^-53 first (left to right would give 1): these rows do tell orders apart.
        for (const s of got.ordered) expect(Array.from(unb64(s))).toEqual([1, 1, 1, 1].map(() => Math.fround(1 + 2 ** -23)));
      }
    });
  }
});
