import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DTypeError, LayoutError, ShapeError } from '../errors.js';
import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';
import { fromArray, get, slice, tensor, toArray, transpose, zeros, type Float32Tensor, type Tensor } from '../tensor.js';
import { randomArray, rng } from './__fixtures__/dense.js';
import { matmul, spmm } from './ops.js';
import { gemmReference } from './reference/gemm.js';
import { spmmBlockReference } from './reference/spmm-block.js';
import { spmmCSRReference } from './reference/spmm-csr.js';
import { spmmNMReference } from './reference/spmm-nm.js';
import { registerKernel } from './registry.js';
import type { GemmArgs, SpmmBlockArgs, SpmmCSRArgs, SpmmNMArgs } from './types.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** Records every gemm call while delegating to the reference, registered above it. */
function spyGemm(): GemmArgs[] {
  const calls: GemmArgs[] = [];
  cleanups.push(
    registerKernel({
      name: 'gemm',
      backend: 'test-spy',
      priority: 100,
      fn: (args) => {
        calls.push(args);
        gemmReference(args);
      },
    }),
  );
  return calls;
}

const kinds = ['contiguous', 'padded', 'transposed', 'transposed-padded', 'stepped', 'reversed', 'broadcast'] as const;
type Kind = (typeof kinds)[number];

/** A [rows, cols] float32 view of the given kind, plus the array it lives in. */
function makeView(kind: Kind, rows: number, cols: number, next: () => number): { view: Float32Tensor; storage: Float32Array } {
  switch (kind) {
    case 'contiguous': {
      const data = randomArray(rows * cols, next);
      return { view: tensor<'float32'>(data, [rows, cols]), storage: data };
    }
    case 'padded': {
      const data = randomArray((rows + 2) * (cols + 3), next);
      const base = tensor<'float32'>(data, [rows + 2, cols + 3]);
      return { view: slice(base, { start: 1, end: 1 + rows }, { start: 2, end: 2 + cols }), storage: data };
    }
    case 'transposed': {
      const data = randomArray(rows * cols, next);
      return { view: transpose(tensor<'float32'>(data, [cols, rows])), storage: data };
    }
    case 'transposed-padded': {
      const data = randomArray((cols + 1) * (rows + 2), next);
      const base = slice(tensor<'float32'>(data, [cols + 1, rows + 2]), { start: 1 }, { start: 0, end: rows });
      return { view: transpose(base), storage: data };
    }
    case 'stepped': {
      const data = randomArray(rows * cols * 2, next);
      return { view: slice(tensor<'float32'>(data, [rows, cols * 2]), null, { step: 2 }), storage: data };
    }
    case 'reversed': {
      const data = randomArray(rows * cols, next);
      return { view: slice(tensor<'float32'>(data, [rows, cols]), { step: -1 }), storage: data };
    }
    case 'broadcast': {
      const data = randomArray(cols, next);
      return { view: tensor<'float32'>(data, [rows, cols], { stride: [0, 1] }), storage: data };
    }
  }
}

function bruteMatmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): { values: Float64Array; scale: Float64Array } {
  const at = (i: number, p: number) => (transA ? get(a, p, i) : get(a, i, p));
  const bt = (p: number, j: number) => (transB ? get(b, j, p) : get(b, p, j));
  const m = transA ? a.shape[1]! : a.shape[0]!;
  const k = transA ? a.shape[0]! : a.shape[1]!;
  const n = transB ? b.shape[0]! : b.shape[1]!;
  const values = new Float64Array(m * n);
  const scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      for (let p = 0; p < k; p++) {
        values[i * n + j] += at(i, p) * bt(p, j);
        scale[i * n + j] += Math.abs(at(i, p) * bt(p, j));
      }
    }
  }
  return { values, scale };
}

function expectMatches(got: Float32Tensor, want: { values: Float64Array; scale: Float64Array }, shape: number[]): void {
  expect(got.shape).toEqual(shape);
  expect(got.dtype).toBe('float32');
  const flat = toArray(got);
  for (let i = 0; i < flat.length; i++) {
    if (!(Math.abs(flat[i]! - want.values[i]!) <= 1e-6 * want.scale[i]! + 1e-12)) expect.fail(`element ${i}: ${flat[i]} vs ${want.values[i]}`);
  }
}

describe('matmul', () => {
  it('multiplies strided views of every kind, with and without transposes', () => {
    const dim = fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 9 }));
    fc.assert(
      fc.property(dim, dim, dim, fc.constantFrom(...kinds), fc.constantFrom(...kinds), fc.boolean(), fc.boolean(), fc.integer(), (m, n, k, kindA, kindB, transA, transB, seed) => {
        const next = rng(seed);
        const { view: a } = transA ? makeView(kindA, k, m, next) : makeView(kindA, m, k, next);
        const { view: b } = transB ? makeView(kindB, n, k, next) : makeView(kindB, k, n, next);
        expectMatches(matmul(a, b, { transA, transB }), bruteMatmul(a, b, transA, transB), [m, n]);
      }),
      { numRuns: 400 },
    );
  });

  it('passes row-contiguous views in place with their row stride as leading dimension', () => {
    const calls = spyGemm();
    const next = rng(1);
    const { view: a, storage } = makeView('padded', 3, 4, next);
    const { view: b } = makeView('contiguous', 4, 2, next);
    matmul(a, b);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.a).toBe(storage);
    expect(calls[0]!.aOffset).toBe(a.offset);
    expect(calls[0]!.lda).toBe(7);
    expect(calls[0]!.transA).toBe(false);
  });

  it('passes a transposed view in place as a transposed operand, flipping an explicit transpose', () => {
    const calls = spyGemm();
    const next = rng(2);
    const { view: a, storage: aData } = makeView('transposed-padded', 3, 4, next);
    const { view: b, storage: bData } = makeView('transposed', 2, 4, next);
    const out = matmul(a, b, { transB: true });
    expect(calls[0]).toMatchObject({ a: aData, lda: 5, transA: true, b: bData, ldb: 2, transB: false, m: 3, n: 2, k: 4 });
    expectMatches(out, bruteMatmul(a, b, false, true), [3, 2]);
  });

  it('packs views gemm cannot take in place (inner stride != 1 both ways, negative or zero row stride)', () => {
    const calls = spyGemm();
    const next = rng(3);
    for (const kind of ['stepped', 'reversed', 'broadcast'] as const) {
      const { view: a, storage } = makeView(kind, 3, 4, next);
      matmul(a, fromArray(new Float32Array(8).fill(1), [4, 2]));
      const call = calls.at(-1)!;
      expect(call.a).not.toBe(storage);
      expect(call).toMatchObject({ aOffset: 0, lda: 4, transA: false });
    }
  });

  it('rejects what it cannot multiply', () => {
    const a = zeros([2, 3]);
    expect(() => matmul(a, zeros([2, 3]))).toThrow(ShapeError);
    expect(() => matmul(a, zeros([2, 3]))).toThrow(/inner dimensions differ: op\(a\) is \[2, 3\].*op\(b\) is \[2, 3\]/);
    const ok = matmul(a, zeros([2, 3]), { transB: true });
    expect(ok.shape).toEqual([2, 2]);
    expect(Array.from(ok.data)).toEqual([0, 0, 0, 0]);
    expect(() => matmul(a, zeros([3, 2], 'int32'))).toThrow(DTypeError);
    expect(() => matmul(zeros([2, 3, 1]), zeros([3, 2]))).toThrow(/a must be a matrix/);
  });
});

describe('spmm', () => {
  // A = [[1, 0, 2, 0], [0, 0, 0, 3], [4, 5, 0, 0]] in each layout.
  const A = [1, 0, 2, 0, 0, 0, 0, 3, 4, 5, 0, 0];
  const csr: CSRLayout<'float32'> = {
    format: 'csr',
    shape: [3, 4],
    dtype: 'float32',
    indptr: Int32Array.from([0, 2, 3, 5]),
    indices: Int32Array.from([0, 2, 3, 0, 1]),
    values: Float32Array.from([1, 2, 3, 4, 5]),
  };
  // 2:4 keeps two per group of four; row 1 keeps an explicit zero at position 0.
  const nm: NMLayout<'float32'> = {
    format: 'nm',
    shape: [3, 4],
    n: 2,
    m: 4,
    dtype: 'float32',
    indexBits: 2,
    values: Float32Array.from([1, 2, 0, 3, 4, 5]),
    // positions 0,2 | 0,3 | 0,1 packed LSB-first at 2 bits.
    indices: Uint8Array.from([0b11_00_10_00, 0b01_00]),
  };
  const bsr: BSRLayout<'float32'> = {
    format: 'bsr',
    shape: [3, 4],
    blockShape: [2, 2],
    dtype: 'float32',
    indptr: Int32Array.from([0, 2, 3]),
    indices: Int32Array.from([0, 1, 0]),
    values: Float32Array.from([1, 0, 0, 0, 2, 0, 0, 3, 4, 5, 0, 0]),
  };
  const dense = fromArray([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
  const want = toArray(matmul(fromArray(A, [3, 4]), dense));

  it.each([
    ['csr', csr],
    ['nm', nm],
    ['bsr', bsr],
  ] as const)('multiplies a %s matrix by a dense one like the dense product', (_f, layout) => {
    const out = spmm(layout, dense);
    expect(out.shape).toEqual([3, 2]);
    expect(toArray(out)).toEqual(want);
  });

  it('dispatches through the registry to the kernel for the layout format', () => {
    const seen: string[] = [];
    cleanups.push(registerKernel({ name: 'spmmCSR', backend: 'test', priority: 9, fn: (a: SpmmCSRArgs) => (seen.push('csr'), spmmCSRReference(a)) }));
    cleanups.push(registerKernel({ name: 'spmmNM', backend: 'test', priority: 9, fn: (a: SpmmNMArgs) => (seen.push('nm'), spmmNMReference(a)) }));
    cleanups.push(registerKernel({ name: 'spmmBlock', backend: 'test', priority: 9, fn: (a: SpmmBlockArgs) => (seen.push('bsr'), spmmBlockReference(a)) }));
    spmm(bsr, dense);
    spmm(csr, dense);
    spmm(nm, dense);
    expect(seen).toEqual(['bsr', 'csr', 'nm']);
  });

  it('accepts strided dense views: a padded slice in place, a transposed view packed', () => {
    const big = tensor(randomArray(6 * 5, rng(4)), [6, 5]);
    const padded = slice(big, { start: 1, end: 5 }, { start: 1, end: 3 });
    expect(toArray(spmm(csr, padded))).toEqual(toArray(matmul(fromArray(A, [3, 4]), padded)));
    const t = transpose(fromArray([1, 3, 5, 7, 2, 4, 6, 8], [2, 4]));
    expect(toArray(spmm(nm, t))).toEqual(want);
  });

  it('rejects layouts and operands it cannot multiply', () => {
    expect(() => spmm({ format: 'coo', shape: [3, 4], dtype: 'float32', deltas: new Uint32Array(0), values: new Float32Array(0) }, dense)).toThrow(LayoutError);
    expect(() => spmm({ format: 'bitmask', shape: [3, 4], dtype: 'float32', bits: new Uint8Array(2), values: new Float32Array(0) }, dense)).toThrow(
      /no sparse x dense kernel for format 'bitmask'/,
    );
    expect(() => spmm({ ...csr, dtype: 'float16', values: new Uint16Array(5) }, dense)).toThrow(DTypeError);
    expect(() => spmm(csr, zeros([3, 2]))).toThrow(/the sparse matrix is \[3, 4\] but dense is \[3, 2\]/);
    expect(() => spmm(csr, zeros([4, 2], 'float64'))).toThrow(DTypeError);
    // Layout inconsistencies surface from the kernel's validator.
    expect(() => spmm({ ...csr, indices: Int32Array.from([0, 2, 4, 0, 1]) }, dense)).toThrow(LayoutError);
  });
});
