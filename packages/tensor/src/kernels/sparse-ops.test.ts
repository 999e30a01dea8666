// The reference kernels for activation-sparse gemv, attention and masked optimizer steps against
// independent brute forces and closed forms, plus their validators' typed errors.
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, LayoutError, ShapeError } from '../errors.js';
import { bruteForce, expectClose, randomArray, rng } from './__fixtures__/dense.js';
import { getKernel } from './registry.js';
import { blockSparseAttentionReference, denseAttentionReference } from './reference/attention.js';
import { activeInputChannels, gemvSparseInputReference } from './reference/gemv-sparse-input.js';
import { maskedAdamReference, maskedSGDReference } from './reference/optimizers.js';
import type { AttentionArgs, BlockSparseAttentionArgs, GemvSparseInputArgs, MaskedAdamArgs, MaskedSGDArgs } from './types.js';

function gemvCase(rows: number, cols: number, n: number, transW: boolean, zeroFrac: number, seed: number): GemvSparseInputArgs {
  const next = rng(seed);
  const ldw = (transW ? rows : cols) + 2;
  const w = randomArray(3 + (transW ? cols : rows) * ldw, next);
  const ldx = n + 1;
  const x = randomArray(1 + cols * ldx, next);
  for (let p = 0; p < cols; p++) if (next() < zeroFrac) x.fill(p % 2 ? 0 : -0, 1 + p * ldx, 1 + p * ldx + n);
  const ldy = n + 3;
  const y = randomArray(2 + rows * ldy, next);
  return { transW, rows, cols, n, alpha: 1.5, w, wOffset: 3, ldw, x, xOffset: 1, ldx, beta: -0.5, y, yOffset: 2, ldy };
}

describe('gemvSparseInput reference', () => {
  it('is registered as the reference', () => {
    expect(getKernel('gemvSparseInput', 'reference')).toBe(gemvSparseInputReference);
  });

  for (const transW of [false, true]) {
    for (const [rows, cols, n, zeros] of [
      [1, 1, 1, 0],
      [7, 13, 1, 0.5],
      [9, 33, 3, 0.75],
      [5, 8, 2, 1],
      [0, 4, 1, 0.5],
      [4, 0, 1, 0],
      [6, 5, 0, 0],
    ] as const) {
      it(`equals the dense product, transW=${transW}, [${rows}x${cols}] x [${cols}x${n}], ${zeros * 100}% zero channels`, () => {
        const a = gemvCase(rows, cols, n, transW, zeros, rows * 100 + cols + n);
        const before = Float32Array.from(a.y);
        const getW = (i: number, p: number) => a.w[a.wOffset + (transW ? p * a.ldw + i : i * a.ldw + p)]!;
        const want = bruteForce(rows, n, cols, a.alpha, getW, (p, j) => a.x[a.xOffset + p * a.ldx + j]!, a.beta, a.y, a.yOffset, a.ldy);
        gemvSparseInputReference(a);
        expectClose(a.y, want, before);
      });
    }
  }

  it('never reads the weights of all-zero channels (NaN there does not reach Y)', () => {
    const a = gemvCase(4, 6, 2, false, 0, 5);
    a.x.fill(0, a.xOffset + 2 * a.ldx, a.xOffset + 2 * a.ldx + 2);
    for (let i = 0; i < 4; i++) a.w[a.wOffset + i * a.ldw + 2] = NaN;
    gemvSparseInputReference(a);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) expect(Number.isFinite(a.y[a.yOffset + i * a.ldy + j])).toBe(true);
  });

  it('lists active channels: any nonzero (NaN included) in the row', () => {
    const x = Float32Array.from([0, 0, -0, 1, 0, 0, NaN, 0]);
    expect(Array.from(activeInputChannels(x, 0, 2, 4, 2))).toEqual([1, 3]);
  });

  it('throws typed errors', () => {
    const a = gemvCase(3, 4, 1, false, 0, 1);
    expect(() => gemvSparseInputReference({ ...a, ldw: 2 })).toThrow(ShapeError);
    expect(() => gemvSparseInputReference({ ...a, w: new Float64Array(40) as unknown as Float32Array })).toThrow(DTypeError);
    expect(() => gemvSparseInputReference({ ...a, x: new Float32Array(3) })).toThrow(ShapeError);
    expect(() => gemvSparseInputReference({ ...a, transW: 1 as unknown as boolean })).toThrow(ArgumentError);
    expect(() => gemvSparseInputReference({ ...a, y: a.x, yOffset: 0 })).toThrow(ArgumentError);
  });
});

function attentionCase(heads: number, seq: number, d: number, causal: boolean, seed: number): AttentionArgs {
  const next = rng(seed);
  const size = heads * seq * d;
  return {
    heads,
    seq,
    headDim: d,
    q: randomArray(size + 1, next),
    qOffset: 1,
    k: randomArray(size, next),
    kOffset: 0,
    v: randomArray(size + 2, next),
    vOffset: 2,
    out: new Float32Array(size + 3).fill(7),
    outOffset: 3,
    causal,
  };
}

/** softmax(S + log(M)) V through a full score matrix with -Infinity where masked; zero rows stay zero. */
function attentionByMatrices(a: AttentionArgs, allowed: (h: number, i: number, j: number) => boolean): Float64Array {
  const { heads, seq, headDim: d } = a;
  const scale = a.scale ?? 1 / Math.sqrt(d);
  const out = new Float64Array(heads * seq * d);
  for (let h = 0; h < heads; h++) {
    const at = (arr: Float32Array, off: number, i: number, c: number) => arr[off + (h * seq + i) * d + c]!;
    for (let i = 0; i < seq; i++) {
      const s = Array.from({ length: seq }, (_, j) => {
        if (!allowed(h, i, j) || (a.causal && j > i)) return -Infinity;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += at(a.q, a.qOffset, i, c) * at(a.k, a.kOffset, j, c);
        return dot * scale;
      });
      const max = Math.max(...s);
      if (max === -Infinity) continue;
      const e = s.map((x) => Math.exp(x - max));
      const z = e.reduce((x, y) => x + y, 0);
      for (let c = 0; c < d; c++) out[(h * seq + i) * d + c] = e.reduce((acc, w, j) => acc + (w / z) * at(a.v, a.vOffset, j, c), 0);
    }
  }
  return out;
}

function expectAttention(a: AttentionArgs, want: Float64Array): void {
  const n = want.length;
  for (let i = 0; i < n; i++) expect(Math.abs(a.out[a.outOffset + i]! - want[i]!)).toBeLessThanOrEqual(1e-6);
  for (let i = 0; i < a.outOffset; i++) expect(a.out[i]).toBe(7);
}

describe('attention references', () => {
  it('are registered', () => {
    expect(getKernel('denseAttention', 'reference')).toBe(denseAttentionReference);
    expect(getKernel('blockSparseAttention', 'reference')).toBe(blockSparseAttentionReference);
  });

  for (const causal of [false, true]) {
    it(`dense, causal=${causal}, odd sizes`, () => {
      for (const [heads, seq, d] of [
        [1, 1, 1],
        [2, 7, 5],
        [3, 17, 9],
        [1, 0, 4],
        [2, 3, 0],
      ] as const) {
        const a = attentionCase(heads, seq, d, causal, heads * 31 + seq + d);
        denseAttentionReference(a);
        expectAttention(a, attentionByMatrices(a, () => true));
      }
    });

    it(`block-sparse, causal=${causal}, shared and per-head masks, a partial last block`, () => {
      const [heads, seq, d, bs] = [2, 19, 6, 4];
      const nb = Math.ceil(seq / bs);
      const next = rng(3);
      for (const perHead of [false, true]) {
        const a: BlockSparseAttentionArgs = { ...attentionCase(heads, seq, d, causal, 9), blockSize: bs, blockMask: Uint8Array.from({ length: (perHead ? heads : 1) * nb * nb }, () => (next() < 0.4 ? 1 : 0)) };
        blockSparseAttentionReference(a);
        const tile = (h: number, i: number, j: number) => a.blockMask[(perHead ? h * nb * nb : 0) + Math.floor(i / bs) * nb + Math.floor(j / bs)] !== 0;
        expectAttention(a, attentionByMatrices(a, tile));
      }
    });
  }

  it('closed forms: zero queries average the allowed values; an empty mask gives zeros; a full mask is dense', () => {
    const a = attentionCase(1, 6, 3, true, 4);
    a.q.fill(0);
    denseAttentionReference(a);
    for (let i = 0; i < 6; i++) {
      for (let c = 0; c < 3; c++) {
        let mean = 0;
        for (let j = 0; j <= i; j++) mean += a.v[a.vOffset + j * 3 + c]! / (i + 1);
        expect(a.out[a.outOffset + i * 3 + c]).toBeCloseTo(mean, 6);
      }
    }
    const b: BlockSparseAttentionArgs = { ...attentionCase(1, 5, 2, false, 5), blockSize: 2, blockMask: new Uint8Array(9) };
    blockSparseAttentionReference(b);
    expect(Array.from(b.out.subarray(b.outOffset, b.outOffset + 10))).toEqual(new Array(10).fill(0));
    const c: BlockSparseAttentionArgs = { ...attentionCase(2, 9, 4, true, 6), blockSize: 4, blockMask: new Uint8Array(9).fill(1) };
    const dense = { ...c, out: new Float32Array(c.out.length).fill(7) };
    blockSparseAttentionReference(c);
    denseAttentionReference(dense);
    expect(Array.from(c.out)).toEqual(Array.from(dense.out));
  });

  it('throws typed errors', () => {
    const a = attentionCase(2, 8, 4, false, 1);
    expect(() => denseAttentionReference({ ...a, q: new Float32Array(10) })).toThrow(ShapeError);
    expect(() => denseAttentionReference({ ...a, k: [] as unknown as Float32Array })).toThrow(DTypeError);
    expect(() => denseAttentionReference({ ...a, scale: NaN })).toThrow(ArgumentError);
    expect(() => denseAttentionReference({ ...a, out: a.v, outOffset: a.vOffset })).toThrow(ArgumentError);
    expect(() => blockSparseAttentionReference({ ...a, blockSize: 3, blockMask: new Uint8Array(8) })).toThrow(LayoutError);
    expect(() => blockSparseAttentionReference({ ...a, blockSize: 0, blockMask: new Uint8Array(1) })).toThrow(ShapeError);
    expect(() => blockSparseAttentionReference({ ...a, blockSize: 4, blockMask: [1, 1, 1, 1] as unknown as Uint8Array })).toThrow(LayoutError);
  });
});

function optimizerCase(size: number, density: number, seed: number) {
  const next = rng(seed);
  const params = randomArray(size, next);
  const grads = randomArray(size, next);
  const indices = Int32Array.from([...Array(size).keys()].filter(() => next() < density));
  const bits = new Uint8Array(Math.ceil(size / 8));
  for (const i of indices) bits[i >>> 3]! |= 1 << (i & 7);
  return { params, grads, indices, bits };
}

describe('masked optimizer references', () => {
  it('are registered', () => {
    expect(getKernel('maskedAdam', 'reference')).toBe(maskedAdamReference);
    expect(getKernel('maskedSGD', 'reference')).toBe(maskedSGDReference);
  });

  it('maskedAdam: three steps equal dense Adam on the active entries; inactive entries untouched; indices = bits', () => {
    for (const [size, density] of [
      [37, 0.5],
      [64, 1],
      [20, 0],
      [0, 0],
    ] as const) {
      const c = optimizerCase(size, density, size + 1);
      const count = c.indices.length;
      const runs = [{ indices: c.indices }, { bits: c.bits }, { bits: new Uint32Array(Math.ceil(size / 32)).map((_, w) => c.bits[4 * w]! | ((c.bits[4 * w + 1] ?? 0) << 8) | ((c.bits[4 * w + 2] ?? 0) << 16) | ((c.bits[4 * w + 3] ?? 0) << 24)) }].map((active) => {
        const args: MaskedAdamArgs = { params: Float32Array.from(c.params), grads: c.grads, active, m: new Float32Array(count), v: new Float32Array(count), step: 0, lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 };
        for (let t = 1; t <= 3; t++) maskedAdamReference({ ...args, step: t });
        return args;
      });
      // Dense Adam, written out, on the compacted active entries.
      const p = Array.from(c.indices, (i) => c.params[i]!);
      const m = new Array<number>(count).fill(0);
      const v = new Array<number>(count).fill(0);
      for (let t = 1; t <= 3; t++) {
        for (let k = 0; k < count; k++) {
          const g = c.grads[c.indices[k]!]!;
          m[k] = Math.fround(0.8 * m[k]! + 0.2 * g);
          v[k] = Math.fround(0.95 * v[k]! + 0.05 * g * g);
          p[k] = Math.fround(p[k]! - 0.01 * (m[k]! / (1 - 0.8 ** t) / (Math.sqrt(v[k]! / (1 - 0.95 ** t)) + 1e-6) + 0.1 * p[k]!));
        }
      }
      for (const r of runs) {
        expect(Array.from(r.params)).toEqual(Array.from(runs[0]!.params));
        for (let k = 0; k < count; k++) {
          expect(r.params[c.indices[k]!]).toBeCloseTo(p[k]!, 6);
          expect(r.m[k]).toBeCloseTo(m[k]!, 6);
          expect(r.v[k]).toBeCloseTo(v[k]!, 6);
        }
        for (let i = 0; i < size; i++) if (!c.indices.includes(i)) expect(r.params[i]).toBe(c.params[i]);
      }
    }
  });

  it('maskedSGD: plain, momentum and nesterov match the formulas; inactive entries untouched', () => {
    const c = optimizerCase(29, 0.6, 3);
    for (const [momentum, nesterov] of [
      [0, false],
      [0.9, false],
      [0.9, true],
    ] as const) {
      const args: MaskedSGDArgs = { params: Float32Array.from(c.params), grads: c.grads, active: { bits: c.bits }, lr: 0.1, momentum, velocity: new Float32Array(c.indices.length), weightDecay: 0.01, nesterov };
      maskedSGDReference(args);
      maskedSGDReference(args);
      c.indices.forEach((i, k) => {
        let p = c.params[i]!;
        let b = 0;
        for (let t = 0; t < 2; t++) {
          let g = c.grads[i]! + 0.01 * p;
          if (momentum) {
            b = Math.fround(momentum * b + g);
            g = nesterov ? g + momentum * b : b;
          }
          p = Math.fround(p - 0.1 * g);
        }
        expect(args.params[i]).toBeCloseTo(p, 6);
        if (momentum) expect(args.velocity![k]).toBeCloseTo(b, 6);
      });
      for (let i = 0; i < 29; i++) if (!c.indices.includes(i)) expect(args.params[i]).toBe(c.params[i]);
    }
  });

  it('throw typed errors', () => {
    const c = optimizerCase(10, 0.5, 4);
    const n = c.indices.length;
    const adam: MaskedAdamArgs = { params: c.params, grads: c.grads, active: { indices: c.indices }, m: new Float32Array(n), v: new Float32Array(n), step: 1, lr: 0.1 };
    expect(() => maskedAdamReference({ ...adam, grads: new Float32Array(9) })).toThrow(ShapeError);
    expect(() => maskedAdamReference({ ...adam, m: new Float32Array(n + 1) })).toThrow(ShapeError);
    expect(() => maskedAdamReference({ ...adam, active: { indices: Int32Array.from([3, 2]) }, m: new Float32Array(2), v: new Float32Array(2) })).toThrow(LayoutError);
    expect(() => maskedAdamReference({ ...adam, active: { indices: Int32Array.from([10]) }, m: new Float32Array(1), v: new Float32Array(1) })).toThrow(LayoutError);
    expect(() => maskedAdamReference({ ...adam, active: { bits: Uint8Array.from([0, 4]) }, m: new Float32Array(1), v: new Float32Array(1) })).toThrow(LayoutError);
    expect(() => maskedAdamReference({ ...adam, step: 0 })).toThrow(ArgumentError);
    expect(() => maskedAdamReference({ ...adam, beta1: 1 })).toThrow(ArgumentError);
    expect(() => maskedAdamReference({ ...adam, v: adam.m })).toThrow(ArgumentError);
    expect(() => maskedAdamReference({ ...adam, params: new Float64Array(10) as unknown as Float32Array })).toThrow(DTypeError);
    const sgd: MaskedSGDArgs = { params: c.params, grads: c.grads, active: { indices: c.indices }, lr: 0.1, momentum: 0.9 };
    expect(() => maskedSGDReference(sgd)).toThrow(ArgumentError);
    expect(() => maskedSGDReference({ ...sgd, momentum: 0, nesterov: true })).toThrow(ArgumentError);
    expect(() => maskedSGDReference({ ...sgd, velocity: new Float32Array(n + 2) })).toThrow(ShapeError);
  });
});
