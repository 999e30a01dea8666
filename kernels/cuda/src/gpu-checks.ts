// The GPU checks, shared by the vitest suite (src/gpu.test.ts) and the standalone bundle that
// gpu-check.sh runs where node_modules is absent (scripts/bundle-gpu-check.mjs): every registered
// CUDA kernel against the TypeScript reference, the GPU 2:4 compressor against compressDense24, the
// sparse tensor-core GEMM against a float64 product, and device buffers. They assume the CUDA kernels
// are registered (registerCUDAKernels) and fail when CUDA is unavailable.
import {
  REFERENCE_BACKEND,
  fromArray,
  getKernel,
  toBSR,
  toCSR,
  toNM,
  type BSRLayout,
  type CSRLayout,
  type KernelName,
  type NMLayout,
} from '@sparse/tensor';
import { randomArray, relativeMismatch } from '@sparse/tensor/testing';
import { isDeepStrictEqual } from 'node:util';
import { DeviceBuffer, SPARSE_CUDA_BACKEND, compress24, compressDense24, gemm24, loadCudaKernels } from './index.js';

export interface GpuCheck {
  name: string;
  run(): void;
}

class CheckFailure extends Error {}

/** The few matchers the checks use, with vitest's meaning. */
function expect(actual: unknown, message = '') {
  const fail = (what: string): never => {
    throw new CheckFailure(`${message ? `${message}: ` : ''}${what}`);
  };
  const show = (x: unknown) => {
    const s = JSON.stringify(x);
    return s === undefined ? String(x) : s.length > 200 ? `${s.slice(0, 200)}...` : s;
  };
  return {
    toBe(expected: unknown) {
      if (!Object.is(actual, expected)) fail(`expected ${show(actual)} to be ${show(expected)}`);
    },
    toEqual(expected: unknown) {
      if (!isDeepStrictEqual(actual, expected)) fail(`expected ${show(actual)} to equal ${show(expected)}`);
    },
    toBeLessThan(limit: number) {
      if (!((actual as number) < limit)) fail(`expected ${show(actual)} < ${limit}`);
    },
    toBeLessThanOrEqual(limit: number) {
      if (!((actual as number) <= limit)) fail(`expected ${show(actual)} <= ${limit}`);
    },
    toThrow(pattern: RegExp) {
      try {
        (actual as () => unknown)();
      } catch (err) {
        const text = err instanceof Error ? err.message : String(err);
        if (!pattern.test(text)) fail(`threw ${show(text)}, expected ${pattern}`);
        return;
      }
      fail(`expected a throw matching ${pattern}`);
    },
  };
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  expect(relativeMismatch(got, want, tol, what)).toBe(null);
}

/** Exact fp16 / bf16 bits of small multiples of 1/8 (exactly representable in both). */
function toHalfBits(x: number, dtype: 'float16' | 'bfloat16'): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  if (dtype === 'bfloat16') return u >>> 16;
  if (x === 0) return (u >>> 16) & 0x8000;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}
function fromHalfBits(h: number, dtype: 'float16' | 'bfloat16'): number {
  if (dtype === 'bfloat16') return new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A random 2:4 matrix of multiples of 1/8 in [-4, 4]; groups keep 0, 1 or 2 non-zeros. */
function random24(rows: number, cols: number, r: () => number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let c0 = 0; c0 < cols; c0 += 4) {
      const pos = [0, 1, 2, 3].sort(() => r() - 0.5);
      const count = Math.floor(r() * 3);
      for (const p of pos.slice(0, count)) if (c0 + p < cols) out[i * cols + c0 + p] = (Math.floor(r() * 64) - 32) / 8 || 0.5;
    }
  }
  return out;
}

/** The checks, in order. */
export function gpuChecks(): GpuCheck[] {
  const checks: GpuCheck[] = [];
  const it = (name: string, run: () => void) => checks.push({ name, run });
  const status = loadCudaKernels();

  it('CUDA is available and every kernel is registered under sparse-cuda', () => {
    expect(status.available, status.available ? '' : status.reason).toBe(true);
    for (const name of ['gemm', 'spmmCSR', 'spmmNM', 'spmmBlock', 'denseAttention', 'blockSparseAttention', 'maskedAdam'] as KernelName[]) {
      expect(typeof getKernel(name, SPARSE_CUDA_BACKEND)).toBe('function');
    }
  });

  it('gemm matches the reference for every transposition, odd shapes, offsets, alpha and beta', () => {
    const r = rng(1);
    for (const [m, n, k] of [[67, 45, 33], [1, 1, 1], [128, 64, 100], [0, 3, 4], [5, 7, 0]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const lda = (transA ? m : k) + 3;
          const ldb = (transB ? k : n) + 1;
          const ldc = n + 2;
          const a = randomArray(5 + (transA ? k : m) * lda, r);
          const b = randomArray(2 + (transB ? n : k) * ldb, r);
          const c0 = randomArray(1 + m * ldc, r);
          const args = { transA, transB, m, n, k, alpha: 0.75, a, aOffset: 5, lda, b, bOffset: 2, ldb, beta: 0.5, cOffset: 1, ldc };
          const want = Float32Array.from(c0);
          const got = Float32Array.from(c0);
          getKernel('gemm', REFERENCE_BACKEND)({ ...args, c: want });
          getKernel('gemm', SPARSE_CUDA_BACKEND)({ ...args, c: got });
          expectClose(got, want, 1e-5, `gemm ${m}x${n}x${k} transA=${transA} transB=${transB}`);
        }
      }
    }
  });

  it('spmmCSR, spmmBlock and spmmNM match the reference', () => {
    const r = rng(2);
    const rows = 70;
    const cols = 96;
    const n = 33;
    const dense = randomArray(rows * cols, r).map((x) => (Math.abs(x) < 0.7 ? 0 : x));
    const t = fromArray(dense, [rows, cols]);
    const layouts = {
      spmmCSR: toCSR(t) as CSRLayout<'float32'>,
      spmmBlock: toBSR(t, { blockShape: [8, 16] }) as BSRLayout<'float32'>,
      spmmNM: toNM(t, { n: 2, m: 4 }) as NMLayout<'float32'>,
    };
    for (const [name, a] of Object.entries(layouts) as Array<['spmmCSR' | 'spmmBlock' | 'spmmNM', never]>) {
      const b = randomArray(cols * (n + 1), r);
      const c0 = randomArray(rows * n, r);
      const args = { a, b, bOffset: 1, ldb: n, n, alpha: 1.5, beta: 0.25, cOffset: 0, ldc: n };
      const want = Float32Array.from(c0);
      const got = Float32Array.from(c0);
      getKernel(name, REFERENCE_BACKEND)({ ...args, c: want } as never);
      getKernel(name, SPARSE_CUDA_BACKEND)({ ...args, c: got } as never);
      expectClose(got, want, 1e-5, name);
    }
  });

  it('denseAttention and blockSparseAttention (shared, per-head, partial tiles, causal, lse, stats) match the reference', () => {
    const r = rng(3);
    for (const { heads, seq, headDim, blockSize, causal, kind } of [
      { heads: 2, seq: 100, headDim: 64, blockSize: 16, causal: false, kind: 'shared' },
      { heads: 3, seq: 77, headDim: 40, blockSize: 16, causal: true, kind: 'perHead' },
      { heads: 2, seq: 96, headDim: 32, blockSize: 24, causal: false, kind: 'partial' },
      { heads: 1, seq: 130, headDim: 128, blockSize: 64, causal: true, kind: 'dense' },
    ]) {
      const total = heads * seq * headDim;
      const q = randomArray(total, r);
      const k = randomArray(total, r);
      const v = randomArray(total, r);
      const nb = Math.ceil(seq / blockSize);
      const blockMask = Uint8Array.from({ length: (kind === 'perHead' ? heads : 1) * nb * nb }, () => (r() < 0.5 ? 0 : kind === 'partial' && r() < 0.5 ? 2 : 1));
      blockMask[0] = 1;
      const elementMask = kind === 'partial' ? Uint8Array.from({ length: Math.ceil((seq * seq) / 8) }, () => Math.floor(r() * 256)) : undefined;
      const base = { heads, seq, headDim, q, qOffset: 0, k, kOffset: 0, v, vOffset: 0, outOffset: 0, causal };
      if (kind === 'dense') {
        const want = new Float32Array(total);
        const got = new Float32Array(total);
        getKernel('denseAttention', REFERENCE_BACKEND)({ ...base, out: want });
        getKernel('denseAttention', SPARSE_CUDA_BACKEND)({ ...base, out: got });
        expectClose(got, want, 1e-4, 'denseAttention');
        continue;
      }
      const run = (backend: string) => {
        const out = new Float32Array(total);
        const lse = new Float32Array(heads * seq);
        const stats = { tiles: 0 };
        getKernel('blockSparseAttention', backend)({ ...base, out, blockSize, blockMask, elementMask, lse, stats });
        return { out, lse, stats };
      };
      const want = run(REFERENCE_BACKEND);
      const got = run(SPARSE_CUDA_BACKEND);
      expectClose(got.out, want.out, 1e-4, `blockSparseAttention ${kind}`);
      for (let i = 0; i < want.lse.length; i++) {
        if (!Number.isFinite(want.lse[i]!)) expect(got.lse[i]).toBe(want.lse[i]);
        else expect(Math.abs(got.lse[i]! - want.lse[i]!)).toBeLessThan(1e-4);
      }
      expect(got.stats.tiles).toBe(want.stats.tiles);
    }
  });

  it('maskedAdam matches the reference with indices and with a bit mask', () => {
    const r = rng(4);
    const size = 1000;
    const activeIdx = Int32Array.from({ length: size }, (_, i) => i).filter(() => r() < 0.3);
    const bits = new Uint8Array(Math.ceil(size / 8));
    for (const i of activeIdx) bits[i >> 3]! |= 1 << (i & 7);
    for (const active of [{ indices: activeIdx }, { bits }]) {
      const params = randomArray(size, r);
      const grads = randomArray(size, r);
      const m = randomArray(activeIdx.length, r).map((x) => x * 0.1);
      const v = randomArray(activeIdx.length, r).map((x) => Math.abs(x) * 0.01);
      const mk = () => ({ params: Float32Array.from(params), grads, active, m: Float32Array.from(m), v: Float32Array.from(v), step: 3, lr: 1e-2, weightDecay: 0.01 });
      const want = mk();
      const got = mk();
      getKernel('maskedAdam', REFERENCE_BACKEND)(want);
      getKernel('maskedAdam', SPARSE_CUDA_BACKEND)(got);
      expectClose(got.params, want.params, 1e-6, 'params');
      expectClose(got.m, want.m, 1e-6, 'm');
      expectClose(got.v, want.v, 1e-6, 'v');
    }
  });

  for (const dtype of ['bfloat16', 'float16'] as const) {
    it(`compress24 (${dtype}) on the GPU writes what compressDense24 writes, tails included, and names a bad group`, () => {
      const r = rng(5);
      for (const [rows, cols] of [[16, 32], [37, 70], [130, 256], [0, 32]] as const) {
        const dense = random24(rows, cols, r);
        const bitsIn = Uint16Array.from(dense, (x) => toHalfBits(x, dtype));
        const gpu = compress24(bitsIn, rows, cols, dtype);
        const cpu = compressDense24(dense, rows, cols);
        expect(Array.from(gpu.meta), `meta ${rows}x${cols}`).toEqual(Array.from(cpu.meta));
        expect(Array.from(gpu.values, (h) => fromHalfBits(h, dtype)), `values ${rows}x${cols}`).toEqual(Array.from(cpu.values));
      }
      const bad = new Uint16Array(2 * 8);
      bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = toHalfBits(1, dtype);
      expect(() => compress24(bad, 2, 8, dtype)).toThrow(/row 1, columns 4..7 hold more than 2 non-zeros/);
    });

    it(`gemm24 (${dtype}, mma.sp) matches a float64 product, with tails, odd N, alpha/beta and device buffers`, () => {
      const r = rng(6);
      for (const [m, n, k] of [[16, 8, 32], [200, 136, 96], [77, 50, 70], [300, 8, 1000], [1, 1, 1]] as const) {
        const a = random24(m, k, r);
        const b = Float32Array.from({ length: k * n }, () => (Math.floor(r() * 16) - 8) / 8);
        const c0 = Float32Array.from({ length: m * n }, () => (Math.floor(r() * 16) - 8) / 8);
        const tc = compress24(Uint16Array.from(a, (x) => toHalfBits(x, dtype)), m, k, dtype);
        const bBits = Uint16Array.from(b, (x) => toHalfBits(x, dtype));
        const want = new Float64Array(m * n);
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let l = 0; l < k; l++) s += a[i * k + l]! * b[l * n + j]!;
            want[i * n + j] = 2 * s + 0.5 * c0[i * n + j]!;
          }
        const got = Float32Array.from(c0);
        gemm24({ a: tc, dtype, b: bBits, n, c: got, alpha: 2, beta: 0.5 });
        // Products of multiples of 1/8 summed in fp32: exact up to fp32 rounding of the partial sums.
        expectClose(got, want, 1e-5, `gemm24 ${dtype} ${m}x${n}x${k}`);
        const dB = DeviceBuffer.from(bBits, dtype);
        const dC = DeviceBuffer.alloc('float32', m * n);
        try {
          gemm24({ a: tc, dtype, b: dB, n, c: dC });
          const plain = new Float32Array(m * n);
          gemm24({ a: tc, dtype, b: bBits, n, c: plain });
          expect(Array.from(dC.download())).toEqual(Array.from(plain));
        } finally {
          dB.dispose();
          dC.dispose();
        }
      }
    });
  }

  it('DeviceBuffer round-trips data, refuses wrong types and sizes, and throws after dispose', () => {
    const host = Float32Array.from({ length: 100 }, (_, i) => i * 0.5);
    const buf = DeviceBuffer.from(host, 'float32');
    expect(Array.from(buf.download())).toEqual(Array.from(host));
    buf.upload(Float32Array.from([7, 8]), 10);
    expect(Array.from(buf.download(new Float32Array(3), 9))).toEqual([4.5, 7, 8]);
    expect(() => buf.upload(new Float32Array(101))).toThrow(/do not fit a buffer of 100/);
    expect(() => buf.upload(new Int32Array(2) as never)).toThrow(/takes a Float32Array/);
    buf.dispose();
    expect(buf.disposed).toBe(true);
    expect(() => buf.download()).toThrow(/used after dispose/);
    buf.dispose();
  });
  return checks;
}
