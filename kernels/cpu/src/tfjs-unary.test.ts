// The float32 unary fast paths of 'sparse-cpu' against tfjs-backend-cpu, the kernels they replace.
// Both evaluate the same float64 expression and round once, so results must be identical element
// for element (Object.is: NaN equals NaN, +0 and -0 differ), on seeded random data over many
// magnitudes plus ±Infinity, NaN, ±0, subnormals and overflow edges, in empty, scalar and odd sizes.
// Gradients through each op are compared the same way.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import { expect, it } from 'vitest';
import { expectIdentical, useQuietCPUBackend } from './__fixtures__/tfjs-backends.js';
import { nativeStatus } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { FAST_TFJS_KERNELS, NATIVE_TFJS_KERNELS, SPARSE_CPU_BACKEND } from './tfjs.js';

const status = nativeStatus();
const suite = nativeSuite();

type Op = (x: tf.Tensor) => tf.Tensor;
const OPS: Record<string, Op> = {
  Sigmoid: tf.sigmoid,
  Exp: tf.exp,
  Neg: tf.neg,
  Sqrt: tf.sqrt,
  Rsqrt: tf.rsqrt,
  Square: tf.square,
  Log: tf.log,
  Tanh: tf.tanh,
  Relu: tf.relu,
  Abs: tf.abs,
  Reciprocal: tf.reciprocal,
  Erf: tf.erf,
};

const SECOND_ORDER = ['Sqrt', 'Rsqrt', 'Square', 'Log', 'Reciprocal', 'Erf', 'Relu', 'Abs'];

const SPECIAL = [
  0, -0, 1, -1, 0.5, -0.5, 2, -2, 1e-7, -1e-7, 1e-30, -1e-30, 1e-45, -1e-45, 1.17549435e-38, 3.4028234e38, -3.4028234e38,
  88.72, 88.73, -87.33, -103.97, -104, 710, -745, 20, -20, 9, -9, 3.9, -3.9, Infinity, -Infinity, NaN,
];

/** Seeded values: uniform in [-1, 1) times 10^e for e in [-40, 40], so every float32 range is hit. */
function randomValues(n: number, seed: number): Float32Array {
  const r = new Random(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.uniform(-1, 1) * 10 ** r.int(-40, 41);
  return out;
}

const CASES: Array<{ shape: number[]; values: Float32Array }> = [
  { shape: [SPECIAL.length], values: Float32Array.from(SPECIAL) },
  { shape: [], values: Float32Array.of(-0.75) },
  { shape: [0], values: new Float32Array(0) },
  { shape: [3, 0, 2], values: new Float32Array(0) },
  { shape: [1], values: Float32Array.of(NaN) },
  { shape: [7, 13], values: randomValues(91, 1) },
  { shape: [3, 5, 67], values: randomValues(1005, 2) },
  // Moderate values, where the functions are not saturated.
  { shape: [1021], values: randomValues(1021, 3).map((v) => Math.sign(v) * (Math.abs(v) % 12)) },
];

useQuietCPUBackend();

suite('float32 unary fast paths match tfjs-backend-cpu bit for bit', () => {
  for (const [name, op] of Object.entries(OPS)) {
    it(`${name}: registered as the fast kernel, same values on special and random inputs`, async () => {
      expect([...FAST_TFJS_KERNELS, ...NATIVE_TFJS_KERNELS]).toContain(name);
      const lower = `${name.charAt(0).toLowerCase()}${name.slice(1)}`;
      expect(tf.getKernel(name, SPARSE_CPU_BACKEND)!.kernelFunc.name).toBe(`${lower}Fast`);
      for (const c of CASES) await expectIdentical(`${name} ${JSON.stringify(c.shape)}`, () => op(tf.tensor(c.values, c.shape, 'float32')));
    });

    it(`${name}: gradient of sum(w * f(x)) matches`, async () => {
      // Inputs in each op's domain, away from kinks (relu, abs at 0) and poles.
      const r = new Random(40);
      const n = 37;
      const x = Float32Array.from({ length: n }, () => {
        const v = r.uniform(0.1, 4);
        return ['Log', 'Sqrt', 'Rsqrt'].includes(name) || r.bernoulli() ? v : -v;
      });
      const w = Float32Array.from({ length: n }, () => r.normal());
      await expectIdentical(`d ${name}`, () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t), tf.tensor(w, [n]))))(tf.tensor(x, [n])));
      // Second order too where tfjs defines it (the first gradient depends on x, not only on f(x)).
      if (SECOND_ORDER.includes(name)) await expectIdentical(`d2 ${name}`, () => tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.sum(tf.mul(op(u), tf.tensor(w, [n]))))(t)))(tf.tensor(x, [n])));
    });
  }

  it('int32 inputs go to tfjs-backend-cpu unchanged (values and dtype)', async () => {
    const ints = tf.tensor1d([-5, -1, 0, 2, 7], 'int32');
    await expectIdentical('int32', () => [tf.neg(ints), tf.abs(ints), tf.square(ints), tf.relu(ints), tf.exp(ints)]);
    ints.dispose();
  });

  it('leaves no data behind in the backend', async () => {
    await tf.setBackend(SPARSE_CPU_BACKEND);
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([0.5, -2, 3]);
    for (const op of Object.values(OPS)) op(x).dispose();
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
