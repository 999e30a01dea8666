import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, ShapeError, SparseError } from '../errors.js';
import { makeGemmCase as makeCase, gemmBruteForce as expected } from '../testing.js';
import { expectClose } from './__fixtures__/dense.js';
import { gemmReference } from './reference/gemm.js';
import type { GemmArgs } from './types.js';
import { validateGemmArgs } from './validate.js';

const dim = fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 33 }));
const scalar = fc.oneof(fc.constantFrom(0, 1, -1, 0.5, 2.25), fc.double({ min: -3, max: 3, noNaN: true }));

const caseArb = fc.record({
  m: dim,
  n: dim,
  k: dim,
  transA: fc.boolean(),
  transB: fc.boolean(),
  alpha: scalar,
  beta: scalar,
  offsets: fc.tuple(fc.nat(5), fc.nat(5), fc.nat(5)),
  pads: fc.tuple(fc.nat(4), fc.nat(4), fc.nat(4)),
  seed: fc.integer(),
  poisonC: fc.boolean(),
});

describe('gemm reference', () => {
  it('matches a float64 triple loop for every transpose combination, offset, leading dimension and scalar', () => {
    fc.assert(
      fc.property(caseArb, (p) => {
        const kase = makeCase(p);
        const want = expected(kase);
        gemmReference(kase.args);
        expectClose(kase.args.c, want, kase.before, JSON.stringify({ ...p, seed: undefined }));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])('computes a known 2x3 @ 3x2 product (transA=%s, transB=%s)', (transA, transB) => {
    const A = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const B = [
      [7, 8],
      [9, 10],
      [11, 12],
    ];
    const store = (rows: number[][], t: boolean) => Float32Array.from(t ? rows[0]!.map((_, j) => rows.map((r) => r[j]!)).flat() : rows.flat());
    const c = new Float32Array(4);
    gemmReference({
      transA,
      transB,
      m: 2,
      n: 2,
      k: 3,
      alpha: 1,
      a: store(A, transA),
      aOffset: 0,
      lda: transA ? 2 : 3,
      b: store(B, transB),
      bOffset: 0,
      ldb: transB ? 3 : 2,
      beta: 0,
      c,
      cOffset: 0,
      ldc: 2,
    });
    expect([...c]).toEqual([58, 64, 139, 154]);
  });

  it('does not read A or B when alpha is 0 (NaN there does not propagate), and scales C by beta', () => {
    const c = Float32Array.from([1, 2, 3, 4]);
    const nan = new Float32Array(4).fill(NaN);
    gemmReference({ transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 0, a: nan, aOffset: 0, lda: 2, b: nan, bOffset: 0, ldb: 2, beta: 3, c, cOffset: 0, ldc: 2 });
    expect([...c]).toEqual([3, 6, 9, 12]);
  });

  it('treats k = 0 as C = beta * C, writing zeros over NaN when beta is 0', () => {
    const c = Float32Array.from([NaN, Infinity, 5]);
    gemmReference({ transA: false, transB: false, m: 1, n: 2, k: 0, alpha: 1, a: new Float32Array(0), aOffset: 0, lda: 1, b: new Float32Array(0), bOffset: 0, ldb: 2, beta: 0, c, cOffset: 0, ldc: 2 });
    expect([...c]).toEqual([0, 0, 5]);
  });
});

describe('validateGemmArgs', () => {
  const good = (): GemmArgs => ({
    transA: false,
    transB: false,
    m: 2,
    n: 3,
    k: 4,
    alpha: 1,
    a: new Float32Array(8),
    aOffset: 0,
    lda: 4,
    b: new Float32Array(12),
    bOffset: 0,
    ldb: 3,
    beta: 0,
    c: new Float32Array(6),
    cOffset: 0,
    ldc: 3,
  });
  const bad = (patch: Partial<Record<keyof GemmArgs, unknown>>) => ({ ...good(), ...patch }) as GemmArgs;

  it('accepts well-formed arguments, including empty matrices with leading dimension 1', () => {
    expect(() => validateGemmArgs(good())).not.toThrow();
    const empty = { ...good(), m: 0, n: 0, k: 0, lda: 1, ldb: 1, ldc: 1, a: new Float32Array(0), b: new Float32Array(0), c: new Float32Array(0) };
    expect(() => validateGemmArgs(empty)).not.toThrow();
    expect(() => gemmReference(empty)).not.toThrow();
    // Accepted means computed: the [2, 4] x [4, 3] fixture, filled, against a triple loop.
    const args = good();
    args.a.forEach((_, i) => (args.a[i] = i - 3));
    args.b.forEach((_, i) => (args.b[i] = (i % 5) - 2));
    gemmReference(args);
    const want = [0, 1].flatMap((i) => [0, 1, 2].map((j) => [0, 1, 2, 3].reduce((s, p) => s + args.a[i * 4 + p]! * args.b[p * 3 + j]!, 0)));
    expect([...args.c]).toEqual(want);
  });

  it.each<[string, Partial<Record<keyof GemmArgs, unknown>>, new (...a: never[]) => SparseError, RegExp]>([
    ['negative m', { m: -1 }, ShapeError, /gemm: m must be a non-negative integer/],
    ['fractional k', { k: 1.5 }, ShapeError, /gemm: k must be/],
    ['lda below k', { lda: 3 }, ShapeError, /gemm: lda must be an integer >= max\(1, 4\) = 4/],
    ['lda below m when transA', { transA: true, lda: 1, a: new Float32Array(16) }, ShapeError, /gemm: lda .*= 2 \(A is stored \[k, m\]/],
    ['ldb below n', { ldb: 2 }, ShapeError, /gemm: ldb/],
    ['ldc zero', { ldc: 0 }, ShapeError, /gemm: ldc/],
    ['a too short for its offset', { aOffset: 1 }, ShapeError, /gemm: a has length 8 but .* needs 9/],
    ['b too short', { b: new Float32Array(11) }, ShapeError, /gemm: b has length 11/],
    ['c too short for ldc', { ldc: 4 }, ShapeError, /gemm: c has length 6 .* needs 7/],
    ['negative offset', { cOffset: -1 }, ShapeError, /gemm: cOffset must be a non-negative integer/],
    ['float64 a', { a: new Float64Array(8) }, DTypeError, /gemm: a must be a Float32Array, got Float64Array/],
    ['plain array c', { c: [0, 0, 0, 0, 0, 0] }, DTypeError, /gemm: c must be a Float32Array, got Array/],
    ['string alpha', { alpha: '1' }, ArgumentError, /gemm: alpha must be a number/],
    ['missing beta', { beta: undefined }, ArgumentError, /gemm: beta must be a number/],
    ['non-boolean transB', { transB: 1 }, ArgumentError, /gemm: transB must be a boolean/],
  ])('rejects %s', (_label, patch, ErrorType, message) => {
    const args = bad(patch);
    expect(() => validateGemmArgs(args)).toThrow(ErrorType);
    expect(() => validateGemmArgs(args)).toThrow(message);
    // The reference kernel validates before touching C.
    const before = args.c instanceof Float32Array ? args.c.slice() : undefined;
    expect(() => gemmReference(args)).toThrow(ErrorType);
    if (before) expect(args.c).toEqual(before);
  });

  it('rejects a non-object', () => {
    expect(() => validateGemmArgs(null as unknown as GemmArgs)).toThrow(ArgumentError);
  });
});
