// The native gemvSparseInput, dense/block-sparse attention and masked optimizer steps against the
// TypeScript reference kernels of @sparse/tensor, over odd sizes (not multiples of the 8-wide vector,
// the 64-row query chunks or the block size), empty and all-zero inputs; plus the typed errors that
// must come before any native code runs, and the binding's own bounds checks.
// Tolerances: gemvSparseInput as gemm (1e-6 * (k + 8) * sum |w x| per element); attention 2e-6 *
// max |v| (float32 sums of at most seq terms of weights in [0, 1]; the native exp is within 2 ulp);
// optimizer states and parameters 2e-6 relative (a handful of float32 operations per entry).
import fc from 'fast-check';
import {
  ArgumentError,
  DTypeError,
  LayoutError,
  REFERENCE_BACKEND,
  ShapeError,
  getKernel,
  type ActiveEntries,
  type AttentionArgs,
  type BlockSparseAttentionArgs,
  type GemvSparseInputArgs,
  type MaskedAdamArgs,
  type MaskedSGDArgs,
} from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { randomArray, rng, tolerance } from './__fixtures__/gemm-cases.js';
import { nativeStatus, type NativeAddon } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { blockSparseAttentionKernelFrom, denseAttentionKernelFrom, gemvSparseInputKernelFrom, maskedAdamKernelFrom, maskedSGDKernelFrom } from './ops.js';

const status = nativeStatus();
const suite = nativeSuite();
const addon = (status.available ? status.addon : undefined) as NativeAddon;

// ---- gemvSparseInput ----

interface GemvParams {
  transW: boolean;
  rows: number;
  cols: number;
  n: number;
  zeroFrac: number;
  alpha: number;
  beta: number;
  pads: [number, number, number];
  seed: number;
}

function gemvArgs(p: GemvParams): GemvSparseInputArgs {
  const next = rng(p.seed);
  const [wRows, wCols] = p.transW ? [p.cols, p.rows] : [p.rows, p.cols];
  const ldw = Math.max(1, wCols) + p.pads[0];
  const ldx = Math.max(1, p.n) + p.pads[1];
  const ldy = Math.max(1, p.n) + p.pads[2];
  const w = randomArray(2 + wRows * ldw + 3, next);
  const x = randomArray(1 + p.cols * ldx + 3, next);
  for (let c = 0; c < p.cols; c++) {
    if (next() < p.zeroFrac) {
      x.fill(c % 3 === 0 ? -0 : 0, 1 + c * ldx, 1 + c * ldx + p.n);
      // NaN weights of a skipped channel must never be read.
      for (let r = 0; r < p.rows; r++) w[2 + (p.transW ? c * ldw + r : r * ldw + c)] = NaN;
    }
  }
  const y = randomArray(3 + p.rows * ldy + 3, next);
  if (p.beta === 0) y.fill(NaN);
  return { transW: p.transW, rows: p.rows, cols: p.cols, n: p.n, alpha: p.alpha, w, wOffset: 2, ldw, x, xOffset: 1, ldx, beta: p.beta, y, yOffset: 3, ldy };
}

function checkGemv(p: GemvParams): void {
  const native = gemvArgs(p);
  const reference = { ...native, y: native.y.slice() };
  const before = native.y.slice();
  getKernel('gemvSparseInput', REFERENCE_BACKEND)(reference);
  gemvSparseInputKernelFrom(addon)(native);
  for (let i = 0; i < before.length; i++) {
    const r = Math.floor((i - native.yOffset) / native.ldy);
    const j = i - native.yOffset - r * native.ldy;
    const inY = r >= 0 && r < p.rows && j >= 0 && j < p.n;
    if (!inY) {
      expect(Object.is(native.y[i], before[i]), `element ${i} outside Y changed`).toBe(true);
      continue;
    }
    // Error scale: |alpha| * sum over active channels of |w x| + |beta y|.
    let scale = 0;
    for (let c = 0; c < p.cols; c++) {
      const xv = native.x[native.xOffset + c * native.ldx + j]!;
      if (xv === 0) continue;
      const wv = native.w[native.wOffset + (p.transW ? c * native.ldw + r : r * native.ldw + c)]!;
      scale += Math.abs(wv * xv);
    }
    scale = Math.abs(p.alpha) * scale + (p.beta === 0 ? 0 : Math.abs(p.beta * before[i]!));
    const err = Math.abs(native.y[i]! - reference.y[i]!);
    if (!(err <= tolerance(p.cols, scale))) expect.fail(`Y(${r}, ${j}) = ${native.y[i]}, reference ${reference.y[i]} (error ${err})`);
  }
}

suite('gemvSparseInput (native vs reference)', () => {
  for (const transW of [false, true]) {
    for (const [rows, cols, n, zeros] of [
      [1, 1, 1, 0],
      [37, 53, 1, 0.5],
      [129, 300, 1, 0.75],
      [2100, 70, 1, 0.5],
      [50, 400, 1, 0.95],
      [33, 41, 3, 0.5],
      [70, 90, 20, 0.3],
      [9, 17, 1, 1],
      [9, 17, 4, 1],
      [9, 17, 1, 0],
      [0, 5, 1, 0],
      [5, 0, 1, 0],
      [5, 6, 0, 0],
    ] as const) {
      it(`transW=${transW}, [${rows}x${cols}] x [${cols}x${n}], ${zeros * 100}% zero channels`, () => {
        for (const [alpha, beta] of [
          [1, 0],
          [-0.5, 1.5],
        ] as const) {
          checkGemv({ transW, rows, cols, n, zeroFrac: zeros, alpha, beta, pads: [1, 0, 2], seed: rows * 7 + cols + n });
        }
      });
    }
  }

  it('random shapes (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          transW: fc.boolean(),
          rows: fc.integer({ min: 0, max: 90 }),
          cols: fc.integer({ min: 0, max: 90 }),
          n: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 12 })),
          zeroFrac: fc.constantFrom(0, 0.25, 0.5, 0.9, 1),
          alpha: fc.constantFrom(1, 0, -2),
          beta: fc.constantFrom(0, 1, 0.5),
          pads: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3)),
          seed: fc.integer(),
        }),
        (p) => checkGemv(p),
      ),
      { numRuns: 150 },
    );
  });
});

// ---- attention ----

function attentionArgs(heads: number, seq: number, d: number, causal: boolean, seed: number, scale?: number): AttentionArgs {
  const next = rng(seed);
  const size = heads * seq * d;
  const q = randomArray(size + 1, next);
  for (let i = 0; i < q.length; i++) q[i]! *= 3; // sharper softmax than uniform
  return { heads, seq, headDim: d, q, qOffset: 1, k: randomArray(size, next), kOffset: 0, v: randomArray(size + 2, next), vOffset: 2, out: new Float32Array(size + 5).fill(NaN), outOffset: 3, causal, scale };
}

function checkAttention(native: AttentionArgs, run: (a: AttentionArgs) => void, reference: (a: AttentionArgs) => void, label: string, tol = 2e-6): void {
  const want = { ...native, out: native.out.slice() };
  reference(want);
  run(native);
  const n = native.heads * native.seq * native.headDim;
  for (let i = 0; i < native.out.length; i++) {
    const inOut = i >= native.outOffset && i < native.outOffset + n;
    if (!inOut) {
      expect(Number.isNaN(native.out[i]), `${label}: element ${i} outside out changed`).toBe(true);
      continue;
    }
    const err = Math.abs(native.out[i]! - want.out[i]!);
    if (!(err <= tol)) expect.fail(`${label}: out[${i - native.outOffset}] = ${native.out[i]}, reference ${want.out[i]} (error ${err})`);
  }
}

function randomMask(nb: number, copies: number, density: number, next: () => number): Uint8Array {
  return Uint8Array.from({ length: copies * nb * nb }, () => (next() < density ? 1 : 0));
}

suite('attention (native vs reference)', () => {
  const dense = () => denseAttentionKernelFrom(addon);
  const sparse = () => blockSparseAttentionKernelFrom(addon);
  for (const causal of [false, true]) {
    for (const [heads, seq, d] of [
      [1, 1, 1],
      [2, 7, 5],
      [1, 64, 16],
      [3, 65, 17],
      [2, 130, 64],
      [1, 300, 8],
      [2, 0, 4],
      [2, 5, 0],
    ] as const) {
      it(`dense, causal=${causal}, heads ${heads}, seq ${seq}, headDim ${d}`, () => {
        checkAttention(attentionArgs(heads, seq, d, causal, heads * 1000 + seq + d), dense(), getKernel('denseAttention', REFERENCE_BACKEND), 'dense');
      });
    }
    for (const [heads, seq, d, bs, density] of [
      [1, 10, 4, 3, 0.5],
      [2, 97, 13, 16, 0.4],
      [2, 200, 32, 64, 0.3],
      [1, 257, 8, 32, 0.2],
      [1, 300, 16, 300, 1],
      [2, 90, 8, 7, 0],
      [1, 70, 24, 128, 1],
    ] as const) {
      for (const perHead of [false, true]) {
        it(`block-sparse, causal=${causal}, heads ${heads}, seq ${seq}, headDim ${d}, block ${bs}, density ${density}${perHead ? ', per-head mask' : ''}`, () => {
          const next = rng(seq + bs);
          const nb = Math.ceil(seq / bs);
          const a: BlockSparseAttentionArgs = { ...attentionArgs(heads, seq, d, causal, seq * 3 + d), blockSize: bs, blockMask: randomMask(nb, perHead ? heads : 1, density, next) };
          checkAttention(a, sparse() as (x: AttentionArgs) => void, getKernel('blockSparseAttention', REFERENCE_BACKEND) as (x: AttentionArgs) => void, 'block-sparse');
        });
      }
    }
  }

  it('a full block mask equals dense attention; all-zero queries give the mean of the values', () => {
    const a = attentionArgs(2, 150, 16, true, 5);
    const full: BlockSparseAttentionArgs = { ...a, out: a.out.slice(), blockSize: 32, blockMask: new Uint8Array(25).fill(1) };
    dense()(a);
    sparse()(full);
    for (let i = 0; i < a.out.length; i++) expect(Math.abs(a.out[i]! - full.out[i]!) <= 1e-6 || (Number.isNaN(a.out[i]) && Number.isNaN(full.out[i]))).toBe(true);
    const z = attentionArgs(1, 20, 3, false, 6);
    z.q.fill(0);
    dense()(z);
    for (let c = 0; c < 3; c++) {
      let mean = 0;
      for (let j = 0; j < 20; j++) mean += z.v[z.vOffset + j * 3 + c]! / 20;
      for (let i = 0; i < 20; i++) expect(z.out[z.outOffset + i * 3 + c]).toBeCloseTo(mean, 5);
    }
  });

  it('custom scale, and extreme scores that would overflow a plain exp', () => {
    // Scores reach several hundred here; their float32 rounding (relative 2^-24, against the
    // reference's float64) moves the weights by about 1e-5, hence the looser bound.
    const a = attentionArgs(1, 40, 8, false, 7, 50);
    checkAttention(a, dense(), getKernel('denseAttention', REFERENCE_BACKEND), 'large scale', 5e-5);
  });
});

// ---- masked optimizers ----

function activeCase(size: number, density: number, runs: boolean, seed: number): { indices: Int32Array; bits: Uint8Array } {
  const next = rng(seed);
  const on = new Uint8Array(size);
  if (runs) {
    // Long runs of active entries (whole bytes), as structured masks have.
    for (let i = 0; i < size; ) {
      const len = 1 + Math.floor(next() * 40);
      const v = next() < density ? 1 : 0;
      on.fill(v, i, Math.min(size, i + len));
      i += len;
    }
  } else {
    for (let i = 0; i < size; i++) on[i] = next() < density ? 1 : 0;
  }
  const indices = Int32Array.from([...on.keys()].filter((i) => on[i]));
  const bits = new Uint8Array(Math.ceil(size / 8));
  for (const i of indices) bits[i >>> 3]! |= 1 << (i & 7);
  return { indices, bits };
}

function expectRelClose(got: Float32Array, want: Float32Array, label: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= 2e-6 * Math.max(1, Math.abs(want[i]!)))) expect.fail(`${label}[${i}] = ${got[i]}, reference ${want[i]} (error ${err})`);
  }
}

suite('masked optimizers (native vs reference)', () => {
  const sizes: Array<[number, number, boolean]> = [
    [1, 1, false],
    [13, 0.5, false],
    [100, 0.3, true],
    [1000, 0.9, true],
    [4099, 0.5, false],
    [300_001, 0.6, true],
    [64, 0, false],
    [0, 0, false],
    [77, 1, false],
  ];
  for (const [size, density, runs] of sizes) {
    for (const form of ['indices', 'bits', 'words'] as const) {
      it(`maskedAdam, ${size} entries, density ${density}${runs ? ' in runs' : ''}, active as ${form}, 3 steps with weight decay`, () => {
        const next = rng(size + 11);
        const { indices, bits } = activeCase(size, density, runs, size);
        const words = new Uint32Array(Math.ceil(size / 32));
        new Uint8Array(words.buffer).set(bits);
        const active: ActiveEntries = form === 'indices' ? { indices } : form === 'bits' ? { bits } : { bits: words };
        const params = randomArray(size, next);
        const count = indices.length;
        const mk = (): MaskedAdamArgs => ({ params: params.slice(), grads: randomArray(size, rng(size)), active, m: new Float32Array(count), v: new Float32Array(count), step: 1, lr: 1e-2, beta1: 0.85, beta2: 0.99, eps: 1e-6, weightDecay: 0.05 });
        const native = mk();
        const reference = mk();
        for (let step = 1; step <= 3; step++) {
          maskedAdamKernelFrom(addon)({ ...native, step });
          getKernel('maskedAdam', REFERENCE_BACKEND)({ ...reference, step });
        }
        expectRelClose(native.m, reference.m, 'm');
        expectRelClose(native.v, reference.v, 'v');
        expectRelClose(native.params, reference.params, 'params');
        const isActive = new Uint8Array(size);
        for (const i of indices) isActive[i] = 1;
        for (let i = 0; i < size; i++) if (!isActive[i]) expect(native.params[i]).toBe(params[i]);
      });
    }
    it(`maskedSGD, ${size} entries, density ${density}${runs ? ' in runs' : ''}: plain, momentum, nesterov`, () => {
      const next = rng(size + 12);
      const { indices, bits } = activeCase(size, density, runs, size + 1);
      const params = randomArray(size, next);
      const grads = randomArray(size, next);
      for (const [momentum, nesterov, active] of [
        [0, false, { bits }],
        [0.9, false, { indices }],
        [0.8, true, { bits }],
      ] as Array<[number, boolean, ActiveEntries]>) {
        const mk = (): MaskedSGDArgs => ({ params: params.slice(), grads, active, lr: 0.1, momentum, velocity: new Float32Array(indices.length), weightDecay: 0.01, nesterov });
        const native = mk();
        const reference = mk();
        for (let t = 0; t < 2; t++) {
          maskedSGDKernelFrom(addon)(native);
          getKernel('maskedSGD', REFERENCE_BACKEND)(reference);
        }
        expectRelClose(native.params, reference.params, 'params');
        expectRelClose(native.velocity!, reference.velocity!, 'velocity');
      }
    });
  }
});

// ---- errors ----

describe('typed errors before any native code runs', () => {
  // An addon whose functions fail the test if called: validation must reject the call first.
  const trap = () => {
    throw new Error('native code was reached');
  };
  const fake = { info: () => ({ simd: 'scalar', threads: 1, blas: 'none', kernels: [] }), gemm: trap, gemmBlocked: trap, gemvSparseInput: trap, attention: trap, maskedAdam: trap, maskedSGD: trap } as unknown as NativeAddon;

  it('gemvSparseInput', () => {
    const a = gemvArgs({ transW: false, rows: 3, cols: 4, n: 1, zeroFrac: 0, alpha: 1, beta: 0, pads: [0, 0, 0], seed: 1 });
    const k = gemvSparseInputKernelFrom(fake);
    expect(() => k({ ...a, ldw: 3 })).toThrow(ShapeError);
    expect(() => k({ ...a, w: new Float64Array(30) as unknown as Float32Array })).toThrow(DTypeError);
    expect(() => k({ ...a, x: new Float32Array(2) })).toThrow(ShapeError);
    expect(() => k({ ...a, y: a.w, yOffset: 0, ldy: 1 })).toThrow(ArgumentError);
    expect(() => k(a)).toThrow('native code was reached');
  });

  it('attention', () => {
    const a = attentionArgs(2, 9, 4, false, 1);
    const dense = denseAttentionKernelFrom(fake);
    const sparse = blockSparseAttentionKernelFrom(fake);
    expect(() => dense({ ...a, k: new Float32Array(3) })).toThrow(ShapeError);
    expect(() => dense({ ...a, out: a.q, outOffset: 0 })).toThrow(ArgumentError);
    expect(() => sparse({ ...a, blockSize: 4, blockMask: new Uint8Array(8) })).toThrow(LayoutError);
    expect(() => sparse({ ...a, blockSize: 0, blockMask: new Uint8Array(0) })).toThrow(ShapeError);
    expect(() => sparse({ ...a, blockSize: 4, blockMask: new Uint8Array(9) })).toThrow('native code was reached');
  });

  it('masked optimizers', () => {
    const params = new Float32Array(10);
    const base: MaskedAdamArgs = { params, grads: new Float32Array(10), active: { indices: Int32Array.from([1, 4]) }, m: new Float32Array(2), v: new Float32Array(2), step: 1, lr: 0.1 };
    const adam = maskedAdamKernelFrom(fake);
    expect(() => adam({ ...base, active: { indices: Int32Array.from([4, 1]) } })).toThrow(LayoutError);
    expect(() => adam({ ...base, active: { indices: Int32Array.from([1, 10]) } })).toThrow(LayoutError);
    expect(() => adam({ ...base, active: { bits: Uint8Array.from([0, 0x80]) } })).toThrow(LayoutError);
    expect(() => adam({ ...base, m: new Float32Array(3) })).toThrow(ShapeError);
    expect(() => adam({ ...base, grads: new Float32Array(9) })).toThrow(ShapeError);
    expect(() => adam({ ...base, step: 0 })).toThrow(ArgumentError);
    expect(() => adam({ ...base, m: params })).toThrow(ShapeError);
    expect(() => adam(base)).toThrow('native code was reached');
    const sgd = maskedSGDKernelFrom(fake);
    expect(() => sgd({ params, grads: new Float32Array(10), active: { indices: Int32Array.from([1]) }, lr: 0.1, momentum: 0.9 })).toThrow(ArgumentError);
    expect(() => sgd({ params, grads: params, active: { indices: Int32Array.from([1]) }, lr: 0.1 })).toThrow(ArgumentError);
  });
});

suite('the binding checks bounds itself', () => {
  it('rejects out-of-range calls made directly on the addon', () => {
    const f = new Float32Array(8);
    expect(() => addon.gemvSparseInput!(false, 3, 3, 1, 1, f, 0, 3, f, 0, 1, 0, new Float32Array(3), 0, 1)).toThrow(RangeError);
    expect(() => addon.attention!(1, 4, 2, f, 0, f, 0, f, 1, new Float32Array(8), 0, false, 1, 2, null)).toThrow(RangeError);
    expect(() => addon.attention!(1, 4, 2, f, 0, f, 0, f, 0, new Float32Array(8), 0, false, 1, 2, new Uint8Array(3))).toThrow(RangeError);
    expect(() => addon.attention!(1, 4, 2, f, 0, f, 0, f, 0, f, 0, false, 1, 2, null)).toThrow(RangeError);
    expect(() => addon.maskedAdam!(f, new Float32Array(8), Int32Array.from([2, 9]), null, new Float32Array(2), new Float32Array(2), 1, 0.1, 0.9, 0.99, 1e-8, 0)).toThrow(RangeError);
    expect(() => addon.maskedAdam!(f, new Float32Array(8), null, Uint8Array.from([3]), new Float32Array(1), new Float32Array(2), 1, 0.1, 0.9, 0.99, 1e-8, 0)).toThrow(RangeError);
    expect(() => addon.maskedSGD!(f, new Float32Array(8), null, new Uint8Array(0), null, 0.1, 0, 0, false)).toThrow(RangeError);
    expect(() => addon.maskedSGD!(f, new Float32Array(8), Int32Array.from([1]), null, null, 0.1, 0.5, 0, false)).toThrow(RangeError);
  });
});
