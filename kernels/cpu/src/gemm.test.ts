// The native gemm against a float64 brute force and against the TypeScript reference kernel, over
// random shapes that hit every path of the addon: empty and 1-sized dimensions, sizes that are not
// multiples of the 6x16 micro-tile or the 8-wide SIMD vector, the skinny (gemv-like) path, more
// than one K slice (k > 256), M block (m > 144) and N panel (n > 3072), every transpose combination,
// offsets and padded leading dimensions, alpha/beta including beta = 0 over a NaN-filled C.
import fc from 'fast-check';
import { ArgumentError, BackendError, DTypeError, getKernel, REFERENCE_BACKEND, ShapeError, type GemmArgs } from '@sparse/tensor';
import { expect, it } from 'vitest';
import { bruteForce, expectMatches, makeCase, randomArray, rng, tolerance, type CaseParams } from './__fixtures__/gemm-cases.js';
import { gemmKernelFrom } from './gemm.js';
import { gemmBlockedNative, gemmOpenBLASNative, SPARSE_CPU_BACKEND, registerCPUKernels } from './index.js';
import { nativeStatus } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';

const status = nativeStatus();
const suite = nativeSuite();

const dim = fc.oneof(
  fc.constantFrom(0, 1, 2, 5, 6, 7, 8, 15, 16, 17),
  fc.integer({ min: 0, max: 24 }),
  fc.integer({ min: 25, max: 70 }),
);
const scalar = fc.oneof(fc.constantFrom(0, 1, -1, 0.5, 2.25), fc.double({ min: -3, max: 3, noNaN: true }));
const caseArb: fc.Arbitrary<CaseParams> = fc.record({
  m: dim,
  n: dim,
  k: fc.oneof(dim, fc.integer({ min: 250, max: 600 })),
  transA: fc.boolean(),
  transB: fc.boolean(),
  alpha: scalar,
  beta: scalar,
  offsets: fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7)),
  pads: fc.tuple(fc.nat(5), fc.nat(5), fc.nat(5)),
  seed: fc.integer(),
  poisonC: fc.boolean(),
});

function label(p: CaseParams): string {
  return JSON.stringify({ ...p, seed: undefined });
}

suite('native gemm', () => {
  const addon = status.available ? status.addon : undefined;
  const native = addon ? gemmKernelFrom(addon.gemm) : () => {};
  const blocked = addon ? gemmKernelFrom(addon.gemmBlocked) : () => {};
  const reference = getKernel('gemm', REFERENCE_BACKEND);

  it('matches a float64 brute force on random shapes, transposes, offsets, leading dimensions and scalars', () => {
    fc.assert(
      fc.property(caseArb, (p) => {
        const kase = makeCase(p);
        const want = bruteForce(kase);
        native(kase.args);
        expectMatches(kase.args.c, want, p.k, kase.before, label(p));
      }),
      { numRuns: 400 },
    );
  });

  it('matches the TypeScript reference kernel from the registry', () => {
    fc.assert(
      fc.property(caseArb, (p) => {
        const mine = makeCase(p);
        const theirs = makeCase(p);
        native(mine.args);
        reference(theirs.args);
        const want = bruteForce(makeCase(p));
        expectMatches(mine.args.c, want, p.k, mine.before, `native ${label(p)}`);
        expectMatches(theirs.args.c, want, p.k, theirs.before, `reference ${label(p)}`);
        // Hence within twice the tolerance of each other; checked directly too.
        for (let i = 0; i < mine.args.c.length; i++) {
          if (!want.inC[i]) continue;
          expect(Math.abs(mine.args.c[i]! - theirs.args.c[i]!)).toBeLessThanOrEqual(2 * tolerance(p.k, want.scale[i]!));
        }
      }),
      { numRuns: 150 },
    );
  });

  it.each<[string, Partial<CaseParams>]>([
    ['several K slices, M blocks and threads', { m: 150, n: 37, k: 520 }],
    ['more than one N panel', { m: 20, n: 3100, k: 9 }],
    ['a skinny row block (m = 3) over many columns', { m: 3, n: 700, k: 300 }],
    ['a skinny column block (n = 2) over many rows', { m: 700, n: 2, k: 300 }],
    ['the largest skinny size (16) and the smallest packed one (17)', { m: 16, n: 17, k: 70 }],
    ['gemv: one row', { m: 1, n: 513, k: 1000 }],
    ['gemv: one column', { m: 513, n: 1, k: 1000 }],
  ])('handles %s for every transpose combination', (_name, shape) => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const beta of [0, 1, -0.75]) {
          const p: CaseParams = {
            m: 1,
            n: 1,
            k: 1,
            transA,
            transB,
            alpha: 1.25,
            beta,
            offsets: [3, 1, 2],
            pads: [2, 5, 1],
            seed: 7,
            poisonC: true,
            ...shape,
          };
          const kase = makeCase(p);
          const want = bruteForce(kase);
          native(kase.args);
          expectMatches(kase.args.c, want, p.k, kase.before, label(p));
          const again = makeCase(p);
          blocked(again.args);
          expectMatches(again.args.c, want, p.k, again.before, `gemmBlocked ${label(p)}`);
        }
      }
    }
  });

  it('overwrites C with beta = 0 (NaN and Inf in C do not survive) and scales it when alpha = 0 or k = 0', () => {
    const c = Float32Array.from([NaN, Infinity, -Infinity, NaN]);
    native({ transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1, a: new Float32Array(0), aOffset: 0, lda: 1, b: new Float32Array(0), bOffset: 0, ldb: 2, beta: 0, c, cOffset: 0, ldc: 2 });
    expect([...c]).toEqual([0, 0, 0, 0]);
    const nan = new Float32Array(4).fill(NaN);
    const c2 = Float32Array.from([1, 2, 3, 4]);
    native({ transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 0, a: nan, aOffset: 0, lda: 2, b: nan, bOffset: 0, ldb: 2, beta: 3, c: c2, cOffset: 0, ldc: 2 });
    expect([...c2]).toEqual([3, 6, 9, 12]);
  });

  it('computes the right result when C shares memory with A (the input is copied first)', () => {
    const next = rng(11);
    const buf = randomArray(64 * 64 + 64 * 64, next);
    const args: GemmArgs = { transA: false, transB: false, m: 64, n: 64, k: 64, alpha: 1, a: buf, aOffset: 0, lda: 64, b: buf, bOffset: 0, ldb: 64, beta: 0, c: buf, cOffset: 32 * 64, ldc: 64 };
    const copy = { ...args, a: buf.slice(), b: buf.slice(), c: buf.slice() };
    native(args);
    reference(copy);
    for (let i = 0; i < buf.length; i++) expect(Math.abs(buf[i]! - copy.c[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(copy.c[i]!)));
  });

  it.each<[string, Partial<Record<keyof GemmArgs, unknown>>, new (...a: never[]) => Error]>([
    ['a shape mismatch (A too short)', { a: new Float32Array(7) }, ShapeError],
    ['an offset past the end', { cOffset: 1 }, ShapeError],
    ['lda below k', { lda: 3 }, ShapeError],
    ['a Float64Array', { b: new Float64Array(12) }, DTypeError],
    ['a plain array', { c: [0, 0, 0, 0, 0, 0] }, DTypeError],
    ['a negative dimension', { n: -1 }, ShapeError],
    ['a fractional dimension', { k: 2.5 }, ShapeError],
    ['a string alpha', { alpha: '2' }, ArgumentError],
  ])('throws a typed error before native code runs for %s', (_name, patch, ErrorType) => {
    const args = {
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
      c: Float32Array.from([1, 2, 3, 4, 5, 6]),
      cOffset: 0,
      ldc: 3,
      ...patch,
    } as GemmArgs;
    const before = args.c instanceof Float32Array ? args.c.slice() : undefined;
    expect(() => native(args)).toThrow(ErrorType);
    if (before) expect(args.c).toEqual(before);
  });

  it('refuses out-of-bounds calls in the binding itself, even without the TypeScript validator', () => {
    const raw = addon!.gemm;
    const a = new Float32Array(8);
    const b = new Float32Array(12);
    const c = new Float32Array(6);
    expect(() => raw(false, false, 2, 3, 4, 1, a, 1, 4, b, 0, 3, 0, c, 0, 3)).toThrow(RangeError);
    expect(() => raw(false, false, 2, 3, 4, 1, a, 0, 4, b, 0, 3, 0, c, 0, 4)).toThrow(RangeError);
    expect(() => raw(false, false, 2, 3, 4, 1, a, 0, 3, b, 0, 3, 0, c, 0, 3)).toThrow(RangeError);
    expect(() => raw(false, false, 2, 3, 4, 1, a, 0, 4, b, 0, 3, 0, c, 0, 3.5)).toThrow(RangeError);
    expect(() => raw(false, false, 2, 3, 4, 1, a, 0, 4, new Float64Array(12) as unknown as Float32Array, 0, 3, 0, c, 0, 3)).toThrow(TypeError);
    expect(() => (raw as unknown as (...x: unknown[]) => void)(false, false, 2)).toThrow(TypeError);
  });

  it('registers as the preferred gemm under the sparse-cpu backend and unregisters cleanly', () => {
    const result = registerCPUKernels();
    try {
      expect(result.native).toBe(true);
      expect(result.kernels).toContain('gemm');
      const kase = makeCase({ m: 9, n: 33, k: 17, transA: true, transB: false, alpha: 1, beta: 0.5, offsets: [0, 0, 0], pads: [0, 0, 0], seed: 3, poisonC: false });
      const want = bruteForce(kase);
      getKernel('gemm')(kase.args);
      expectMatches(kase.args.c, want, 17, kase.before, 'registered');
      // Preferred: the default gemm is the sparse-cpu one, not the reference.
      expect(getKernel('gemm')).toBe(getKernel('gemm', SPARSE_CPU_BACKEND));
      expect(getKernel('gemm')).not.toBe(getKernel('gemm', REFERENCE_BACKEND));
    } finally {
      result.unregister();
    }
    expect(() => getKernel('gemm', SPARSE_CPU_BACKEND)).toThrow();
  });

  // OpenBLAS is optional (the build links it only when it finds one), so exactly one of the next two
  // tests runs; the other is skipped and says why in its name.
  const openblas = status.available && status.info.blas === 'openblas';
  const unlessBLAS = (linked: boolean) =>
    linked === openblas ? '' : linked ? ' (skipped: this addon was built without the optional OpenBLAS)' : ' (skipped: this addon links OpenBLAS)';
  it.runIf(openblas)(`OpenBLAS gemm (linked at build time) matches the brute force, split across threads by rows or columns${unlessBLAS(true)}`, () => {
    const viaOpenBLAS = gemmOpenBLASNative();
    fc.assert(
      fc.property(caseArb, (p) => {
        const kase = makeCase(p);
        const want = bruteForce(kase);
        viaOpenBLAS(kase.args);
        expectMatches(kase.args.c, want, p.k, kase.before, `gemmOpenBLAS ${label(p)}`);
      }),
      { numRuns: 200 },
    );
    // Products big enough to split: tall ones by rows, wide ones by columns; every transpose.
    for (const [m, n, k] of [[401, 45, 129], [45, 401, 129], [200, 200, 70]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const p: CaseParams = { m, n, k, transA, transB, alpha: -0.5, beta: 0, offsets: [2, 3, 1], pads: [1, 0, 2], seed: m + n, poisonC: true };
          const kase = makeCase(p);
          const want = bruteForce(kase);
          viaOpenBLAS(kase.args);
          expectMatches(kase.args.c, want, k, kase.before, `gemmOpenBLAS ${label(p)}`);
          const again = makeCase({ ...p, beta: 0.75, poisonC: false });
          const want2 = bruteForce(again);
          native(again.args);
          expectMatches(again.args.c, want2, k, again.before, `registered gemm over OpenBLAS ${label(p)}`);
        }
      }
    }
  });

  it.runIf(!openblas)(`without OpenBLAS the addon exports no OpenBLAS gemm and asking for it throws BackendError${unlessBLAS(false)}`, () => {
    expect(addon!.gemmOpenBLAS).toBeUndefined();
    expect(() => gemmOpenBLASNative()).toThrow(BackendError);
  });

  it('exposes its own blocked gemm for side-by-side benchmarks', () => {
    const kase = makeCase({ m: 31, n: 29, k: 300, transA: false, transB: true, alpha: -2, beta: 1, offsets: [1, 2, 3], pads: [1, 1, 1], seed: 5, poisonC: false });
    const want = bruteForce(kase);
    gemmBlockedNative()(kase.args);
    expectMatches(kase.args.c, want, 300, kase.before, 'gemmBlockedNative');
  });
});
