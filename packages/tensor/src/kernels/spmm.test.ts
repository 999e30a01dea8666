import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DTypeError, LayoutError, ShapeError, SparseError } from '../errors.js';
import { indexBitsFor, packedByteLength, writePacked } from '../layouts/packed.js';
import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';
import { bruteForce, expectClose, randomArray, rng } from './__fixtures__/dense.js';
import { gemmReference } from './reference/gemm.js';
import { spmmBlockReference } from './reference/spmm-block.js';
import { spmmCSRReference } from './reference/spmm-csr.js';
import { spmmNMReference } from './reference/spmm-nm.js';
import type { SpmmDenseArgs } from './types.js';
import { validateSpmmBlockArgs, validateSpmmCSRArgs, validateSpmmNMArgs } from './validate.js';

// Layout builders and densifiers are written here from the layout definitions in types.ts, so the
// kernels are checked against an independent reading of the format.

function randomCSR(rows: number, cols: number, density: number, next: () => number): CSRLayout<'float32'> {
  const indptr = new Int32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      if (next() < density) {
        indices.push(j);
        values.push(next() * 2 - 1);
      }
    }
    indptr[i + 1] = indices.length;
  }
  return { format: 'csr', shape: [rows, cols], dtype: 'float32', indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) };
}

function densifyCSR(a: CSRLayout<'float32'>): Float64Array {
  const [rows, cols] = a.shape;
  const d = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let p = a.indptr[i]!; p < a.indptr[i + 1]!; p++) d[i * cols + a.indices[p]!] += a.values[p]!;
  return d;
}

function randomNM(rows: number, groups: number, n: number, m: number, next: () => number): NMLayout<'float32'> {
  const bits = indexBitsFor(m);
  const count = rows * groups * n;
  const values = randomArray(count, next);
  const indices = new Uint8Array(packedByteLength(count, bits));
  let q = 0;
  for (let g = 0; g < rows * groups; g++) {
    // n distinct positions out of m, ascending.
    const pool = [...Array(m).keys()];
    for (let i = pool.length - 1; i > 0; i--) {
      const r = Math.floor(next() * (i + 1));
      [pool[i], pool[r]] = [pool[r]!, pool[i]!];
    }
    for (const pos of pool.slice(0, n).sort((x, y) => x - y)) writePacked(indices, bits, q++, pos);
  }
  return { format: 'nm', shape: [rows, groups * m], n, m, dtype: 'float32', indexBits: bits, values, indices };
}

function densifyNM(a: NMLayout<'float32'>): Float64Array {
  const [rows, cols] = a.shape;
  const d = new Float64Array(rows * cols);
  const groups = cols / a.m;
  let q = 0;
  for (let i = 0; i < rows; i++) {
    for (let g = 0; g < groups; g++) {
      for (let t = 0; t < a.n; t++, q++) {
        // Independent of readPacked: gather indexBits bits LSB-first one at a time.
        let pos = 0;
        for (let bit = 0; bit < a.indexBits; bit++) {
          const at = q * a.indexBits + bit;
          pos |= ((a.indices[at >> 3]! >> (at & 7)) & 1) << bit;
        }
        d[i * cols + g * a.m + pos] = a.values[q]!;
      }
    }
  }
  return d;
}

function randomBSR(rows: number, cols: number, br: number, bc: number, density: number, next: () => number, padding = 0): BSRLayout<'float32'> {
  const blockRows = Math.ceil(rows / br);
  const blockCols = Math.ceil(cols / bc);
  const indptr = new Int32Array(blockRows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let I = 0; I < blockRows; I++) {
    for (let J = 0; J < blockCols; J++) {
      if (next() >= density) continue;
      indices.push(J);
      for (let r = 0; r < br; r++) {
        for (let c = 0; c < bc; c++) {
          const inside = I * br + r < rows && J * bc + c < cols;
          // Out-of-range cells of edge blocks hold `padding` (0 per the layout's contract).
          values.push(inside ? next() * 2 - 1 : padding);
        }
      }
    }
    indptr[I + 1] = indices.length;
  }
  return {
    format: 'bsr',
    shape: [rows, cols],
    blockShape: [br, bc],
    dtype: 'float32',
    indptr,
    indices: Int32Array.from(indices),
    values: Float32Array.from(values),
  };
}

function densifyBSR(a: BSRLayout<'float32'>): Float64Array {
  const [rows, cols] = a.shape;
  const [br, bc] = a.blockShape;
  const d = new Float64Array(rows * cols);
  for (let I = 0; I + 1 < a.indptr.length; I++) {
    for (let p = a.indptr[I]!; p < a.indptr[I + 1]!; p++) {
      for (let r = 0; r < br; r++) {
        for (let c = 0; c < bc; c++) {
          const i = I * br + r;
          const j = a.indices[p]! * bc + c;
          if (i < rows && j < cols) d[i * cols + j] = a.values[p * br * bc + r * bc + c]!;
        }
      }
    }
  }
  return d;
}

const small = fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 13 }));
const scalar = fc.oneof(fc.constantFrom(0, 1, -1, 0.5), fc.double({ min: -3, max: 3, noNaN: true }));
const denseArb = fc.record({
  n: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 11 })),
  alpha: scalar,
  beta: scalar,
  bOffset: fc.nat(4),
  cOffset: fc.nat(4),
  ldbPad: fc.nat(3),
  ldcPad: fc.nat(3),
  seed: fc.integer(),
});

type DenseParams = typeof denseArb extends fc.Arbitrary<infer T> ? T : never;

function denseOperands(rows: number, inner: number, p: DenseParams): SpmmDenseArgs {
  const next = rng(p.seed ^ 0x5bd1e995);
  const ldb = Math.max(1, p.n) + p.ldbPad;
  const ldc = Math.max(1, p.n) + p.ldcPad;
  return {
    b: randomArray(p.bOffset + inner * ldb + 1, next),
    bOffset: p.bOffset,
    ldb,
    n: p.n,
    alpha: p.alpha,
    beta: p.beta,
    c: randomArray(p.cOffset + rows * ldc + 1, next),
    cOffset: p.cOffset,
    ldc,
  };
}

/**
 * Runs a sparse kernel and checks it twice: against a float64 triple loop over the densified matrix,
 * and against the reference gemm on the same densified matrix (rounded to float32, as stored).
 */
function checkAgainstDense(rows: number, inner: number, dense: Float64Array, args: SpmmDenseArgs, run: (args: SpmmDenseArgs) => void): void {
  const before = args.c.slice();
  const getA = (i: number, p: number) => dense[i * inner + p]!;
  const getB = (p: number, j: number) => args.b[args.bOffset + p * args.ldb + j]!;
  const want = bruteForce(rows, args.n, inner, args.alpha, getA, getB, args.beta, before, args.cOffset, args.ldc);
  run(args);
  expectClose(args.c, want, before, 'vs triple loop:');

  const viaGemm = before.slice();
  gemmReference({
    transA: false,
    transB: false,
    m: rows,
    n: args.n,
    k: inner,
    alpha: args.alpha,
    a: Float32Array.from(dense),
    aOffset: 0,
    lda: Math.max(1, inner),
    b: args.b,
    bOffset: args.bOffset,
    ldb: args.ldb,
    beta: args.beta,
    c: viaGemm,
    cOffset: args.cOffset,
    ldc: args.ldc,
  });
  for (let i = 0; i < viaGemm.length; i++) {
    const tol = 1e-6 * want.scale[i]! + 1e-12;
    if (!(Math.abs(args.c[i]! - viaGemm[i]!) <= tol) && !Object.is(args.c[i], viaGemm[i])) {
      expect.fail(`vs gemm: element ${i}: spmm ${args.c[i]}, gemm ${viaGemm[i]}`);
    }
  }
}

describe('spmmCSR reference', () => {
  it('matches the dense computation', () => {
    fc.assert(
      fc.property(small, small, fc.double({ min: 0, max: 1, noNaN: true }), denseArb, (rows, cols, density, p) => {
        const a = randomCSR(rows, cols, density, rng(p.seed));
        checkAgainstDense(rows, cols, densifyCSR(a), denseOperands(rows, cols, p), (d) => spmmCSRReference({ a, ...d }));
      }),
      { numRuns: 300 },
    );
  });

  it('tolerates indices arrays longer than indptr[rows] (capacity), like scipy', () => {
    const a: CSRLayout<'float32'> = {
      format: 'csr',
      shape: [1, 2],
      dtype: 'float32',
      indptr: Int32Array.from([0, 1]),
      indices: Int32Array.from([1, 99]),
      values: Float32Array.from([2, 7]),
    };
    const c = new Float32Array(1);
    spmmCSRReference({ a, b: Float32Array.from([10, 100]), bOffset: 0, ldb: 1, n: 1, alpha: 1, beta: 0, c, cOffset: 0, ldc: 1 });
    expect(c[0]).toBe(200);
  });
});

describe('spmmNM reference', () => {
  const nm = fc
    .integer({ min: 2, max: 16 })
    .chain((m) => fc.record({ m: fc.constant(m), n: fc.integer({ min: 1, max: m - 1 }) }));

  it('matches the dense computation for any N < M', () => {
    fc.assert(
      fc.property(small, fc.integer({ min: 0, max: 5 }), nm, denseArb, (rows, groups, { n, m }, p) => {
        const a = randomNM(rows, groups, n, m, rng(p.seed));
        checkAgainstDense(rows, groups * m, densifyNM(a), denseOperands(rows, groups * m, p), (d) => spmmNMReference({ a, ...d }));
      }),
      { numRuns: 300 },
    );
  });

  it('computes a known 2:4 row, reading positions packed LSB-first at 2 bits', () => {
    // Row [0, 3, 0, 5 | 7, 0, 0, 11]: positions (1, 3) and (0, 3) -> bit pairs 01, 11, 00, 11 from the low end.
    const a: NMLayout<'float32'> = {
      format: 'nm',
      shape: [1, 8],
      n: 2,
      m: 4,
      dtype: 'float32',
      indexBits: 2,
      values: Float32Array.from([3, 5, 7, 11]),
      indices: Uint8Array.from([0b11_00_11_01]),
    };
    const b = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const c = new Float32Array(1);
    spmmNMReference({ a, b, bOffset: 0, ldb: 1, n: 1, alpha: 1, beta: 0, c, cOffset: 0, ldc: 1 });
    expect(c[0]).toBe(3 * 2 + 5 * 4 + 7 * 5 + 11 * 8);
  });
});

describe('spmmBlock reference', () => {
  it('matches the dense computation for any block shape, with partial edge blocks', () => {
    fc.assert(
      fc.property(
        small,
        small,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        denseArb,
        (rows, cols, br, bc, density, p) => {
          const a = randomBSR(rows, cols, br, bc, density, rng(p.seed));
          checkAgainstDense(rows, cols, densifyBSR(a), denseOperands(rows, cols, p), (d) => spmmBlockReference({ a, ...d }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never multiplies the padding of edge blocks (rows of B past K do not exist)', () => {
    // 3x3 matrix in 2x2 blocks: padding cells set to NaN must not reach C, and B has exactly 3 rows.
    const a = randomBSR(3, 3, 2, 2, 1, rng(7), NaN);
    const args = denseOperands(3, 3, { n: 2, alpha: 1, beta: 0, bOffset: 0, cOffset: 0, ldbPad: 0, ldcPad: 0, seed: 3 });
    args.b = args.b.subarray(0, 6);
    args.c = args.c.subarray(0, 6);
    spmmBlockReference({ a, ...args });
    expect(args.c.every(Number.isFinite)).toBe(true);
  });
});

describe('sparse kernel validation', () => {
  const dense = (): SpmmDenseArgs => ({ b: new Float32Array(6), bOffset: 0, ldb: 2, n: 2, alpha: 1, beta: 0, c: new Float32Array(4), cOffset: 0, ldc: 2 });
  const csr = (): CSRLayout<'float32'> => ({
    format: 'csr',
    shape: [2, 3],
    dtype: 'float32',
    indptr: Int32Array.from([0, 1, 3]),
    indices: Int32Array.from([2, 0, 1]),
    values: Float32Array.from([1, 2, 3]),
  });
  const nmLayout = (): NMLayout<'float32'> => randomNM(2, 1, 2, 3, rng(5));
  const bsr = (): BSRLayout<'float32'> => randomBSR(2, 3, 2, 2, 1, rng(9));

  type Bad = [string, () => void, new (...a: never[]) => SparseError, RegExp];
  const cases: Bad[] = [
    ['csr: indptr of the wrong length', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indptr: Int32Array.from([0, 3]) } }), LayoutError, /spmmCSR: a.indptr has length 2, expected 3/],
    ['csr: indptr not starting at 0', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indptr: Int32Array.from([1, 1, 3]) } }), LayoutError, /a.indptr\[0\] must be 0/],
    ['csr: decreasing indptr', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indptr: Int32Array.from([0, 2, 1]) } }), LayoutError, /a.indptr decreases at 2/],
    ['csr: indptr past indices', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indptr: Int32Array.from([0, 1, 4]) } }), LayoutError, /a.indptr\[2\] = 4 exceeds/],
    ['csr: column out of range', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indices: Int32Array.from([3, 0, 1]) } }), LayoutError, /a.indices\[0\] = 3 is outside \[0, 3\)/],
    ['csr: values and indices differ in length', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), values: new Float32Array(2) } }), LayoutError, /a.values has length 2 but a.indices has 3/],
    ['csr: float64 values', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), values: new Float64Array(3) } as never }), DTypeError, /a.values must be a Float32Array/],
    ['csr: float16 layout', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), dtype: 'float16' } as never }), DTypeError, /a.dtype must be 'float32'/],
    ['csr: wrong format', () => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), format: 'bsr' } as never }), LayoutError, /a.format must be 'csr'/],
    ['csr: b too short for K rows', () => validateSpmmCSRArgs({ ...dense(), b: new Float32Array(5), a: csr() }), ShapeError, /spmmCSR: b has length 5/],
    ['csr: ldb below n', () => validateSpmmCSRArgs({ ...dense(), ldb: 1, a: csr() }), ShapeError, /spmmCSR: ldb must be/],
    ['csr: c too short', () => validateSpmmCSRArgs({ ...dense(), cOffset: 1, a: csr() }), ShapeError, /spmmCSR: c has length 4/],
    ['nm: n >= m', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), n: 3 } }), LayoutError, /a.n must be an integer with 1 <= n < m = 3/],
    ['nm: cols not a multiple of m', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), m: 2, n: 1, indexBits: 1 } }), LayoutError, /a.shape\[1\] = 3 is not a multiple of m = 2/],
    ['nm: wrong indexBits', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), indexBits: 3 } }), LayoutError, /a.indexBits must be 2 for m = 3/],
    ['nm: values of the wrong length', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), values: new Float32Array(3) } }), LayoutError, /expected rows \* cols \/ m \* n = 4/],
    ['nm: metadata too short', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), indices: new Uint8Array(0) } }), LayoutError, /a.indices has 0 bytes, 4 positions at 2 bits need 1/],
    ['nm: position >= m', () => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), indices: Uint8Array.from([0xff]) } }), LayoutError, /group position 0 is 3, outside \[0, 3\)/],
    ['bsr: zero block side', () => validateSpmmBlockArgs({ ...dense(), a: { ...bsr(), blockShape: [0, 2] } }), LayoutError, /a.blockShape must be two positive integers/],
    ['bsr: values not whole blocks', () => validateSpmmBlockArgs({ ...dense(), a: { ...bsr(), values: new Float32Array(7) } }), LayoutError, /a.values has length 7, expected a.indices.length \* 2 \* 2 = 8/],
    ['bsr: block column out of range', () => validateSpmmBlockArgs({ ...dense(), a: { ...bsr(), indices: Int32Array.from([0, 2]) } }), LayoutError, /a.indices\[1\] = 2 is outside \[0, 2\) \(block column\)/],
    ['bsr: indptr over block rows', () => validateSpmmBlockArgs({ ...dense(), a: { ...bsr(), indptr: Int32Array.from([0, 1, 2]) } }), LayoutError, /a.indptr has length 3, expected 2/],
  ];

  it('indexRange: false skips only the per-index scans (a backend that checks indices itself), nothing else', () => {
    const badCsr = { ...dense(), a: { ...csr(), indices: Int32Array.from([3, 0, 1]) } };
    const badBsr = { ...dense(), a: { ...bsr(), indices: Int32Array.from([0, 2]) } };
    const badNm = { ...dense(), a: { ...nmLayout(), indices: Uint8Array.from([0xff]) } };
    expect(() => validateSpmmCSRArgs(badCsr, { indexRange: false })).not.toThrow();
    expect(() => validateSpmmBlockArgs(badBsr, { indexRange: false })).not.toThrow();
    expect(() => validateSpmmNMArgs(badNm, { indexRange: false })).not.toThrow();
    expect(() => validateSpmmCSRArgs(badCsr, { indexRange: true })).toThrow(LayoutError);
    expect(() => validateSpmmBlockArgs(badBsr, {})).toThrow(LayoutError);
    expect(() => validateSpmmNMArgs(badNm)).toThrow(LayoutError);
    // Every other check stays on.
    expect(() => validateSpmmCSRArgs({ ...dense(), a: { ...csr(), indptr: Int32Array.from([0, 2, 1]) } }, { indexRange: false })).toThrow(/a.indptr decreases at 2/);
    expect(() => validateSpmmNMArgs({ ...dense(), a: { ...nmLayout(), indices: new Uint8Array(0) } }, { indexRange: false })).toThrow(/4 positions at 2 bits need 1/);
    expect(() => validateSpmmBlockArgs({ ...dense(), a: { ...bsr(), values: new Float32Array(7) } }, { indexRange: false })).toThrow(/a.values has length 7/);
    expect(() => validateSpmmCSRArgs({ ...dense(), a: csr(), ldb: 1 }, { indexRange: false })).toThrow(ShapeError);
  });

  it('accepts the well-formed fixtures, and the reference kernels multiply them', () => {
    expect(() => validateSpmmCSRArgs({ ...dense(), a: csr() })).not.toThrow();
    expect(() => validateSpmmNMArgs({ ...dense(), b: new Float32Array(6), a: nmLayout() })).not.toThrow();
    expect(() => validateSpmmBlockArgs({ ...dense(), a: bsr() })).not.toThrow();
    // Accepted means computed: A [2, 3] times B = [[1, 2], [3, 4], [5, 6]] against a loop over the densified A.
    const b = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const product = (d: Float64Array) => [0, 1].flatMap((i) => [0, 1].map((j) => d[i * 3]! * b[j]! + d[i * 3 + 1]! * b[2 + j]! + d[i * 3 + 2]! * b[4 + j]!));
    const viaCSR = { ...dense(), b, a: csr() };
    spmmCSRReference(viaCSR);
    expect([...viaCSR.c]).toEqual([5, 6, 11, 16]); // A = [[0, 0, 1], [2, 3, 0]], by hand
    const viaNM = { ...dense(), b, a: nmLayout() };
    spmmNMReference(viaNM);
    product(densifyNM(viaNM.a)).forEach((want, i) => expect(viaNM.c[i]).toBeCloseTo(want, 5));
    const viaBlock = { ...dense(), b, a: bsr() };
    spmmBlockReference(viaBlock);
    product(densifyBSR(viaBlock.a)).forEach((want, i) => expect(viaBlock.c[i]).toBeCloseTo(want, 5));
  });

  it.each(cases)('rejects %s', (_label, call, ErrorType, message) => {
    expect(call).toThrow(ErrorType);
    expect(call).toThrow(message);
  });

  it('the reference kernels validate before writing', () => {
    const args = { ...dense(), c: Float32Array.from([1, 2, 3, 4]) };
    expect(() => spmmCSRReference({ ...args, a: { ...csr(), indices: Int32Array.from([9, 0, 1]) } })).toThrow(LayoutError);
    expect(() => spmmNMReference({ ...args, a: { ...nmLayout(), n: 0 } })).toThrow(LayoutError);
    expect(() => spmmBlockReference({ ...args, ldc: 1, a: bsr() })).toThrow(ShapeError);
    expect([...args.c]).toEqual([1, 2, 3, 4]);
  });
});
