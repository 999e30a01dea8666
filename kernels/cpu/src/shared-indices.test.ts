// Index arrays in a SharedArrayBuffer that another thread rewrites while kernels run. Native code
// trusts validated indices, so each kernel must read a private snapshot: a call either computes the
// product of the valid pattern or fails with a typed error, and never reads out of bounds (which
// would crash the test process, failing the file).
import { getKernel, REFERENCE_BACKEND, SparseError, type CSRLayout } from '@sparse/tensor';
import { Worker } from 'node:worker_threads';
import { afterEach, expect, it } from 'vitest';
import { linearCSRGradInputKernelFrom, linearCSRKernelFrom, sddmmCSRKernelFrom } from './linear.js';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { maskedAdamKernelFrom, maskedSGDKernelFrom } from './ops.js';
import { spmmBlockKernelFrom, spmmCSRKernelFrom, spmmNMKernelFrom } from './spmm.js';

const suite = nativeSuite();
const CALLS = 400;

// The worker flips every element of `target` between its valid value and `bad` until `stop[0]` is 1.
const FLIPPER = `
const { workerData } = require('node:worker_threads');
const { target, bad, stop, bytes } = workerData;
const view = bytes ? new Uint8Array(target) : new Int32Array(target);
const good = view.slice();
const flag = new Int32Array(stop);
Atomics.store(flag, 1, 1);
let phase = 0;
while (Atomics.load(flag, 0) === 0) {
  phase ^= 1;
  if (phase) view.fill(bad); else view.set(good);
}
view.set(good);
`;

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

/** Starts a flipper on `array` (which must live in a SharedArrayBuffer); resolves once it runs. */
async function flip(array: Int32Array | Uint8Array, bad: number): Promise<() => Promise<void>> {
  const stop = new SharedArrayBuffer(8);
  const flag = new Int32Array(stop);
  const worker = new Worker(FLIPPER, { eval: true, workerData: { target: array.buffer, bad, stop, bytes: array instanceof Uint8Array } });
  workers.push(worker);
  while (Atomics.load(flag, 1) === 0) await new Promise((r) => setTimeout(r, 1));
  return async () => {
    Atomics.store(flag, 0, 1);
    await new Promise((r) => worker.once('exit', r));
  };
}

function sharedInt32(values: ArrayLike<number>): Int32Array {
  const a = new Int32Array(new SharedArrayBuffer(values.length * 4));
  a.set(values);
  return a;
}

function sharedUint8(values: ArrayLike<number>): Uint8Array {
  const a = new Uint8Array(new SharedArrayBuffer(values.length));
  a.set(values);
  return a;
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** A [rows, cols] CSR matrix with every `stride`-th column of each row stored. */
function csr(rows: number, cols: number, stride: number): CSRLayout<'float32'> {
  const indptr: number[] = [0];
  const indices: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = i % stride; j < cols; j += stride) indices.push(j);
    indptr.push(indices.length);
  }
  return { format: 'csr', shape: [rows, cols], dtype: 'float32', indptr: Int32Array.from(indptr), indices: Int32Array.from(indices), values: random(indices.length, 7) };
}

/** Calls `run` CALLS times: each call must throw a SparseError or leave `out()` equal to `want`. */
function hammer(run: () => void, out: () => Float32Array, want: Float32Array): { ok: number; rejected: number } {
  let ok = 0;
  let rejected = 0;
  for (let t = 0; t < CALLS; t++) {
    try {
      run();
    } catch (err) {
      if (!SparseError.isInstance(err)) throw err;
      rejected++;
      continue;
    }
    const got = out();
    for (let i = 0; i < want.length; i++) {
      if (Math.abs(got[i]! - want[i]!) > 1e-4 * (1 + Math.abs(want[i]!))) expect.fail(`call ${t}: element ${i} is ${got[i]}, expected ${want[i]}`);
    }
    ok++;
  }
  return { ok, rejected };
}

suite('native kernels with index arrays another thread rewrites', () => {
  const addon = status.available ? status.addon : (undefined as never);
  const BAD = 1 << 30;

  it('spmmCSR: indices and indptr', { timeout: 60_000 }, async () => {
    const base = csr(128, 512, 3);
    const n = 16;
    const b = random(512 * n, 1);
    const want = new Float32Array(128 * n);
    getKernel('spmmCSR', REFERENCE_BACKEND)({ a: base, n, alpha: 1, b, bOffset: 0, ldb: n, beta: 0, c: want, cOffset: 0, ldc: n });
    const kernel = spmmCSRKernelFrom(addon);
    for (const field of ['indices', 'indptr'] as const) {
      const a = { ...base, [field]: sharedInt32(base[field]) };
      const stop = await flip(a[field], BAD);
      const c = new Float32Array(128 * n);
      const seen = hammer(() => kernel({ a, n, alpha: 1, b, bOffset: 0, ldb: n, beta: 0, c, cOffset: 0, ldc: n }), () => c, want);
      await stop();
      expect(seen.ok + seen.rejected).toBe(CALLS);
    }
  });

  it('linearCSR, linearCSRGradInput and sddmmCSR: the weight pattern', { timeout: 60_000 }, async () => {
    const base = csr(96, 256, 2);
    const tokens = 8;
    const x = random(tokens * 256, 2);
    const dy = random(tokens * 96, 3);
    const wantY = new Float32Array(tokens * 96);
    const wantDx = new Float32Array(tokens * 256);
    const nnz = base.indices.length;
    const wantG = new Float32Array(nnz);
    getKernel('linearCSR', REFERENCE_BACKEND)({ w: base, tokens, alpha: 1, x, xOffset: 0, ldx: 256, beta: 0, y: wantY, yOffset: 0, ldy: 96 });
    getKernel('linearCSRGradInput', REFERENCE_BACKEND)({ w: base, tokens, alpha: 1, dy, dyOffset: 0, lddy: 96, beta: 0, dx: wantDx, dxOffset: 0, lddx: 256 });
    getKernel('sddmmCSR', REFERENCE_BACKEND)({ pattern: base, tokens, alpha: 1, dy, dyOffset: 0, lddy: 96, x, xOffset: 0, ldx: 256, beta: 0, out: wantG, outOffset: 0 });
    const w = { ...base, indices: sharedInt32(base.indices) };
    const stop = await flip(w.indices, BAD);
    const y = new Float32Array(tokens * 96);
    const dx = new Float32Array(tokens * 256);
    const g = new Float32Array(nnz);
    const forward = linearCSRKernelFrom(addon);
    const gradInput = linearCSRGradInputKernelFrom(addon);
    const sddmm = sddmmCSRKernelFrom(addon);
    hammer(() => forward({ w, tokens, alpha: 1, x, xOffset: 0, ldx: 256, beta: 0, y, yOffset: 0, ldy: 96 }), () => y, wantY);
    hammer(() => gradInput({ w, tokens, alpha: 1, dy, dyOffset: 0, lddy: 96, beta: 0, dx, dxOffset: 0, lddx: 256 }), () => dx, wantDx);
    hammer(() => sddmm({ pattern: w, tokens, alpha: 1, dy, dyOffset: 0, lddy: 96, x, xOffset: 0, ldx: 256, beta: 0, out: g, outOffset: 0 }), () => g, wantG);
    await stop();
  });

  it('spmmNM (m = 5, so a packed position can reach past the group) and spmmBlock', { timeout: 60_000 }, async () => {
    // 2:5 over [64, 200]: positions 0 and 1 of each group, 3 bits each; 0xff packs positions 7.
    const rows = 64;
    const cols = 200;
    const count = rows * (cols / 5) * 2;
    const packed = new Uint8Array(Math.ceil((count * 3) / 8));
    for (let q = 0; q < count; q++) {
      const pos = q % 2;
      for (let bit = 0; bit < 3; bit++) if ((pos >> bit) & 1) packed[(q * 3 + bit) >> 3]! |= 1 << ((q * 3 + bit) & 7);
    }
    const nm = { format: 'nm' as const, shape: [rows, cols] as [number, number], dtype: 'float32' as const, n: 2, m: 5, indexBits: 3, values: random(count, 4), indices: packed };
    const n = 8;
    const b = random(cols * n, 5);
    const want = new Float32Array(rows * n);
    getKernel('spmmNM', REFERENCE_BACKEND)({ a: nm, n, alpha: 1, b, bOffset: 0, ldb: n, beta: 0, c: want, cOffset: 0, ldc: n });
    const a = { ...nm, indices: sharedUint8(packed) };
    let stop = await flip(a.indices, 0xff);
    const c = new Float32Array(rows * n);
    hammer(() => spmmNMKernelFrom(addon)({ a, n, alpha: 1, b, bOffset: 0, ldb: n, beta: 0, c, cOffset: 0, ldc: n }), () => c, want);
    await stop();

    const bsr = { format: 'bsr' as const, shape: [64, 64] as [number, number], dtype: 'float32' as const, blockShape: [4, 4] as [number, number], indptr: Int32Array.from({ length: 17 }, (_, i) => i * 2), indices: Int32Array.from({ length: 32 }, (_, i) => (i * 5) % 16), values: random(32 * 16, 6) };
    // Block columns must be distinct within a block row for the reference; (i * 5) % 16 pairs are.
    const wantB = new Float32Array(64 * n);
    const bb = random(64 * n, 8);
    getKernel('spmmBlock', REFERENCE_BACKEND)({ a: bsr, n, alpha: 1, b: bb, bOffset: 0, ldb: n, beta: 0, c: wantB, cOffset: 0, ldc: n });
    const sharedBsr = { ...bsr, indices: sharedInt32(bsr.indices) };
    stop = await flip(sharedBsr.indices, BAD);
    const cb = new Float32Array(64 * n);
    hammer(() => spmmBlockKernelFrom(addon)({ a: sharedBsr, n, alpha: 1, b: bb, bOffset: 0, ldb: n, beta: 0, c: cb, cOffset: 0, ldc: n }), () => cb, wantB);
    await stop();
  });

  it('maskedAdam and maskedSGD: active indices and bits', { timeout: 60_000 }, async () => {
    const size = 4096;
    const params0 = random(size, 9);
    const grads = random(size, 10);
    const list = Int32Array.from({ length: size / 2 }, (_, i) => i * 2);
    const adamWant = () => {
      const params = params0.slice();
      getKernel('maskedAdam', REFERENCE_BACKEND)({ params, grads, active: { indices: list }, m: new Float32Array(list.length), v: new Float32Array(list.length), step: 1, lr: 0.01 });
      return params;
    };
    const want = adamWant();
    const indices = sharedInt32(list);
    let stop = await flip(indices, BAD);
    let params = params0.slice();
    const adam = maskedAdamKernelFrom(addon);
    hammer(
      () => {
        params = params0.slice();
        adam({ params, grads, active: { indices }, m: new Float32Array(list.length), v: new Float32Array(list.length), step: 1, lr: 0.01 });
      },
      () => params,
      want,
    );
    await stop();

    // Bits: 0x55 marks the even entries; 0xff marks all of them (then m is too short: a typed error).
    const bits = sharedUint8(new Uint8Array(size / 8).fill(0x55));
    stop = await flip(bits, 0xff);
    const sgdWant = params0.slice();
    getKernel('maskedSGD', REFERENCE_BACKEND)({ params: sgdWant, grads, active: { indices: list }, velocity: new Float32Array(list.length), momentum: 0.9, lr: 0.01 });
    const sgd = maskedSGDKernelFrom(addon);
    hammer(
      () => {
        params = params0.slice();
        sgd({ params, grads, active: { bits }, velocity: new Float32Array(list.length), momentum: 0.9, lr: 0.01 });
      },
      () => params,
      sgdWant,
    );
    await stop();
  });
});
