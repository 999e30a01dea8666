// The native sparse x dense kernels against a float64 brute force over the dense form of A, and
// against the TypeScript reference kernels. Layouts are built here, independently of the layout
// constructors, so the tests control what the constructors never produce: unsorted CSR rows,
// NaN in the padding of edge blocks (which must never be multiplied), non-power-of-two M.
// Tolerance as for gemm: 1e-6 * (terms + 8) * (|alpha| * sum |a b| + |beta c|).
import fc from 'fast-check';
import {
  DTypeError,
  getKernel,
  ArgumentError,
  LayoutError,
  REFERENCE_BACKEND,
  ShapeError,
  type BSRLayout,
  type CSRLayout,
  type NMLayout,
  type SpmmDenseArgs,
} from '@sparse/tensor';
import { expect, it } from 'vitest';
import { randomArray, rng, tolerance } from './__fixtures__/gemm-cases.js';
import { nativeStatus } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { spmmBlockKernelFrom, spmmCSRKernelFrom, spmmNMKernelFrom } from './spmm.js';

const status = nativeStatus();
const suite = nativeSuite();

interface DenseParams {
  n: number;
  alpha: number;
  beta: number;
  offsets: [number, number];
  pads: [number, number];
  poisonC: boolean;
  seed: number;
}

const nArb = fc.oneof(fc.constantFrom(0, 1, 7, 8, 9, 16, 63, 64, 65, 130), fc.integer({ min: 0, max: 40 }));
const scalar = fc.oneof(fc.constantFrom(0, 1, -1, 0.5), fc.double({ min: -3, max: 3, noNaN: true }));
const denseArb: fc.Arbitrary<DenseParams> = fc.record({
  n: nArb,
  alpha: scalar,
  beta: scalar,
  offsets: fc.tuple(fc.nat(5), fc.nat(5)),
  pads: fc.tuple(fc.nat(4), fc.nat(4)),
  poisonC: fc.boolean(),
  seed: fc.integer(),
});

/** B [inner, n] and C [rows, n] with offsets, padded leading dimensions and slack after the end. */
function denseArgs(p: DenseParams, rows: number, inner: number): SpmmDenseArgs {
  const next = rng(p.seed ^ 0x5bd1e995);
  const ldb = Math.max(1, p.n) + p.pads[0];
  const ldc = Math.max(1, p.n) + p.pads[1];
  const b = randomArray(p.offsets[0] + inner * ldb + 3, next);
  const c = randomArray(p.offsets[1] + rows * ldc + 3, next);
  if (p.poisonC && p.beta === 0) for (let i = 0; i < rows; i++) c.fill(NaN, p.offsets[1] + i * ldc, p.offsets[1] + i * ldc + p.n);
  return { b, bOffset: p.offsets[0], ldb, n: p.n, alpha: p.alpha, beta: p.beta, c, cOffset: p.offsets[1], ldc };
}

/** Checks C against alpha * dense(A) * B + beta * C in float64; everything outside C unchanged. */
function expectProduct(got: Float32Array, before: Float32Array, dense: Float64Array, rows: number, inner: number, d: SpmmDenseArgs, label: string): void {
  const inC = new Uint8Array(got.length);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < d.n; j++) {
      let s = 0;
      let abs = 0;
      let terms = 0;
      for (let p = 0; p < inner; p++) {
        const a = dense[i * inner + p]!;
        if (a === 0) continue;
        const t = a * d.b[d.bOffset + p * d.ldb + j]!;
        s += t;
        abs += Math.abs(t);
        terms++;
      }
      const at = d.cOffset + i * d.ldc + j;
      inC[at] = 1;
      const old = before[at]!;
      const want = d.alpha === 0 ? (d.beta === 0 ? 0 : d.beta * old) : d.alpha * s + (d.beta === 0 ? 0 : d.beta * old);
      const scale = Math.abs(d.alpha) * abs + (d.beta === 0 ? 0 : Math.abs(d.beta * old));
      const err = Math.abs(got[at]! - want);
      if (!(err <= tolerance(terms, scale))) expect.fail(`${label}: C(${i}, ${j}) = ${got[at]}, expected ${want} (error ${err})`);
    }
  }
  for (let x = 0; x < got.length; x++) {
    if (!inC[x] && !Object.is(got[x], before[x])) expect.fail(`${label}: element ${x} outside C changed`);
  }
}

// ---- layouts ----

interface CSRParams {
  rows: number;
  cols: number;
  density: number;
  shuffle: boolean;
  seed: number;
}

function makeCSR(p: CSRParams): { a: CSRLayout<'float32'>; dense: Float64Array } {
  const next = rng(p.seed);
  const indptr = new Int32Array(p.rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const dense = new Float64Array(p.rows * p.cols);
  for (let i = 0; i < p.rows; i++) {
    const row: number[] = [];
    for (let j = 0; j < p.cols; j++) if (next() < p.density) row.push(j);
    if (p.shuffle) row.sort(() => next() - 0.5);
    for (const j of row) {
      const v = Math.fround(next() * 2 - 1);
      indices.push(j);
      values.push(v);
      dense[i * p.cols + j] = v;
    }
    indptr[i + 1] = indices.length;
  }
  return { a: { format: 'csr', shape: [p.rows, p.cols], dtype: 'float32', indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) }, dense };
}

interface NMParams {
  rows: number;
  groups: number;
  nm: [number, number];
  seed: number;
}

function makeNM(p: NMParams): { a: NMLayout<'float32'>; dense: Float64Array } {
  const next = rng(p.seed);
  const [keep, m] = p.nm;
  const cols = p.groups * m;
  const bits = Math.max(1, Math.ceil(Math.log2(m)));
  const count = p.rows * p.groups * keep;
  const values = new Float32Array(count);
  const indices = new Uint8Array(Math.ceil((count * bits) / 8));
  const dense = new Float64Array(p.rows * cols);
  let q = 0;
  for (let i = 0; i < p.rows; i++) {
    for (let g = 0; g < p.groups; g++) {
      const positions = Array.from({ length: m }, (_, t) => t)
        .sort(() => next() - 0.5)
        .slice(0, keep)
        .sort((x, y) => x - y);
      for (const pos of positions) {
        const v = Math.fround(next() * 2 - 1);
        values[q] = v;
        for (let t = 0; t < bits; t++) if ((pos >> t) & 1) indices[(q * bits + t) >> 3]! |= 1 << ((q * bits + t) & 7);
        dense[i * cols + g * m + pos] = v;
        q++;
      }
    }
  }
  return { a: { format: 'nm', shape: [p.rows, cols], n: keep, m, dtype: 'float32', indexBits: bits, values, indices }, dense };
}

interface BSRParams {
  rows: number;
  cols: number;
  block: [number, number];
  density: number;
  seed: number;
}

function makeBSR(p: BSRParams): { a: BSRLayout<'float32'>; dense: Float64Array } {
  const next = rng(p.seed);
  const [br, bc] = p.block;
  const blockRows = Math.ceil(p.rows / br);
  const blockCols = Math.ceil(p.cols / bc);
  const indptr = new Int32Array(blockRows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const dense = new Float64Array(p.rows * p.cols);
  for (let I = 0; I < blockRows; I++) {
    for (let J = 0; J < blockCols; J++) {
      if (next() >= p.density) continue;
      indices.push(J);
      for (let r = 0; r < br; r++) {
        for (let c = 0; c < bc; c++) {
          const i = I * br + r;
          const j = J * bc + c;
          // Padding past the matrix is NaN here: a kernel that multiplies it poisons C.
          const v = i < p.rows && j < p.cols ? Math.fround(next() * 2 - 1) : NaN;
          values.push(v);
          if (i < p.rows && j < p.cols) dense[i * p.cols + j] = v;
        }
      }
    }
    indptr[I + 1] = indices.length;
  }
  return {
    a: { format: 'bsr', shape: [p.rows, p.cols], blockShape: [br, bc], dtype: 'float32', indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) },
    dense,
  };
}

const csrArb: fc.Arbitrary<CSRParams> = fc.record({
  rows: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 40 })),
  cols: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 80 }), fc.integer({ min: 200, max: 900 })),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.1, noNaN: true })),
  shuffle: fc.boolean(),
  seed: fc.integer(),
});

const nmArb: fc.Arbitrary<NMParams> = fc.record({
  rows: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 30 })),
  groups: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 60, max: 200 })),
  nm: fc.constantFrom<[number, number]>([2, 4], [1, 4], [3, 4], [4, 8], [2, 8], [1, 2], [2, 3], [3, 5], [5, 16], [12, 16], [6, 7]),
  seed: fc.integer(),
});

const bsrArb: fc.Arbitrary<BSRParams> = fc.record({
  rows: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 60, max: 140 })),
  cols: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 250, max: 600 })),
  block: fc.oneof(fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 })), fc.constantFrom<[number, number]>([32, 32], [16, 8], [6, 16])),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  seed: fc.integer(),
});

suite('native spmm kernels', () => {
  const addon = status.available ? status.addon : undefined;
  const csr = addon ? spmmCSRKernelFrom(addon) : () => {};
  const nm = addon ? spmmNMKernelFrom(addon) : () => {};
  const bsr = addon ? spmmBlockKernelFrom(addon) : () => {};

  it('spmmCSR matches the brute force and the reference (sorted and unsorted rows, K blocking)', () => {
    fc.assert(
      fc.property(csrArb, denseArb, (lp, dp) => {
        const { a, dense } = makeCSR(lp);
        const d = denseArgs(dp, lp.rows, lp.cols);
        const before = d.c.slice();
        csr({ ...d, a });
        expectProduct(d.c, before, dense, lp.rows, lp.cols, { ...d }, `native ${JSON.stringify(lp)} ${JSON.stringify(dp)}`);
        const r = denseArgs(dp, lp.rows, lp.cols);
        getKernel('spmmCSR', REFERENCE_BACKEND)({ ...r, a });
        expectProduct(r.c, before, dense, lp.rows, lp.cols, r, 'reference');
      }),
      { numRuns: 150 },
    );
  });

  it('spmmNM matches the brute force and the reference for 2:4, 4:8 and general N:M', () => {
    fc.assert(
      fc.property(nmArb, denseArb, (lp, dp) => {
        const { a, dense } = makeNM(lp);
        const cols = lp.groups * lp.nm[1];
        const d = denseArgs(dp, lp.rows, cols);
        const before = d.c.slice();
        nm({ ...d, a });
        expectProduct(d.c, before, dense, lp.rows, cols, d, `native ${JSON.stringify(lp)} ${JSON.stringify(dp)}`);
        const r = denseArgs(dp, lp.rows, cols);
        getKernel('spmmNM', REFERENCE_BACKEND)({ ...r, a });
        expectProduct(r.c, before, dense, lp.rows, cols, r, 'reference');
      }),
      { numRuns: 150 },
    );
  });

  it('spmmNM 2:4 and 2:8 on whole-vector strips (the unrolled kernels, two groups per step) with odd group counts and offsets', () => {
    const arb = fc.record({
      rows: fc.integer({ min: 1, max: 9 }),
      // Odd counts and counts past one K block (24-32 groups of 4, by strip width), so the two-group step leaves a tail.
      groups: fc.oneof(fc.constantFrom(1, 2, 3, 31, 33, 63, 65), fc.integer({ min: 1, max: 90 })),
      nm: fc.constantFrom<[number, number]>([2, 4], [2, 8]),
      seed: fc.integer(),
    });
    const dense = fc.record({ n: fc.constantFrom(8, 16, 24, 40, 48, 56, 96, 104), alpha: scalar, beta: scalar, offsets: fc.tuple(fc.nat(5), fc.nat(5)), pads: fc.tuple(fc.nat(4), fc.nat(4)), poisonC: fc.boolean(), seed: fc.integer() });
    fc.assert(
      fc.property(arb, dense, (lp, dp) => {
        const { a, dense: w } = makeNM(lp);
        const cols = lp.groups * lp.nm[1];
        const d = denseArgs(dp, lp.rows, cols);
        const before = d.c.slice();
        nm({ ...d, a });
        expectProduct(d.c, before, w, lp.rows, cols, d, `native ${JSON.stringify(lp)} ${JSON.stringify(dp)}`);
      }),
      { numRuns: 120 },
    );
  });

  it('spmmNM over several row tiles and K blocks per thread, with rows whose index bits start mid-byte', () => {
    // Rows past one tile (128 per thread) and groups past one K block, so the tile copies of values
    // and positions are reused across strips; odd group counts put row starts at odd bit offsets.
    const cases: Array<[number, number, [number, number], number]> = [
      [600, 33, [2, 4], 64],
      [260, 65, [2, 4], 48],
      [257, 17, [2, 8], 40],
      [300, 21, [3, 8], 37],
      [140, 9, [5, 16], 24],
      [290, 47, [1, 4], 8],
    ];
    for (const [rows, groups, nmPair, n] of cases) {
      const { a, dense } = makeNM({ rows, groups, nm: nmPair, seed: rows * 31 + groups });
      const cols = groups * nmPair[1];
      for (const beta of [0, 0.5]) {
        const d = denseArgs({ n, alpha: 1.5, beta, offsets: [3, 1], pads: [2, 0], poisonC: true, seed: rows + groups }, rows, cols);
        const before = d.c.slice();
        nm({ ...d, a });
        expectProduct(d.c, before, dense, rows, cols, d, `native ${rows}x${cols} ${nmPair.join(':')} n ${n} beta ${beta}`);
      }
    }
  });

  it('spmmBlock matches the brute force and the reference, never touching edge-block padding', () => {
    fc.assert(
      fc.property(bsrArb, denseArb, (lp, dp) => {
        const { a, dense } = makeBSR(lp);
        const d = denseArgs(dp, lp.rows, lp.cols);
        const before = d.c.slice();
        bsr({ ...d, a });
        expectProduct(d.c, before, dense, lp.rows, lp.cols, d, `native ${JSON.stringify(lp)} ${JSON.stringify(dp)}`);
        const r = denseArgs(dp, lp.rows, lp.cols);
        getKernel('spmmBlock', REFERENCE_BACKEND)({ ...r, a });
        expectProduct(r.c, before, dense, lp.rows, lp.cols, r, 'reference');
      }),
      { numRuns: 120 },
    );
  });

  it('turns the binding\'s refusal of out-of-range indices into the reference validators\' typed errors', () => {
    // The per-index scan is left to the binding (index-check.ts); what the caller sees is the same.
    const { a } = makeCSR({ rows: 3, cols: 4, density: 0.5, shuffle: false, seed: 1 });
    const d = denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: true, seed: 1 }, 3, 4);
    const before = d.c.slice();
    const last = a.indices.length - 1;
    const badCsr = { ...a, indices: a.indices.map((j, p) => (p === last ? -1 : j)) };
    expect(() => csr({ ...d, a: badCsr })).toThrow(new RegExp(`spmmCSR: a\\.indices\\[${last}\\] = -1 is outside \\[0, 4\\) \\(column\\)`));
    const b22 = makeBSR({ rows: 4, cols: 4, block: [2, 2], density: 1, seed: 1 }).a;
    const d4 = denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: false, seed: 1 }, 4, 4);
    expect(() => bsr({ ...d4, a: { ...b22, indices: b22.indices.map((j, p) => (p === 1 ? 7 : j)) } })).toThrow(/spmmBlock: a\.indices\[1\] = 7 is outside \[0, 2\) \(block column\)/);
    // m = 5 packs positions in 3 bits, so one can reach past its group: 2:5, 1 row, 2 groups.
    const n25 = makeNM({ rows: 1, groups: 2, nm: [2, 5], seed: 3 }).a;
    const bits = Uint8Array.from(n25.indices);
    bits[0] = (bits[0]! & ~0b111) | 6; // the first position becomes 6
    const d5 = denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: false, seed: 1 }, 1, 10);
    expect(() => nm({ ...d5, a: { ...n25, indices: bits } })).toThrow(/spmmNM: group position 0 is 6, outside \[0, 5\)/);
    expect(d.c).toEqual(before);
  });

  it('throws typed errors before native code runs on bad layouts and operands', () => {
    const { a } = makeCSR({ rows: 3, cols: 4, density: 0.5, shuffle: false, seed: 1 });
    const d = denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: false, seed: 1 }, 3, 4);
    const before = d.c.slice();
    const badIndex = { ...a, indices: a.indices.map(() => 4) };
    expect(() => csr({ ...d, a: badIndex })).toThrow(LayoutError);
    for (const k of [csr, nm, bsr]) expect(() => k(null as never)).toThrow(ArgumentError);
    expect(() => csr({ ...d, a, b: new Float32Array(7) })).toThrow(ShapeError);
    expect(() => csr({ ...d, a, c: new Float64Array(6) as unknown as Float32Array })).toThrow(DTypeError);
    const n24 = makeNM({ rows: 2, groups: 2, nm: [2, 4], seed: 1 }).a;
    expect(() => nm({ ...denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: false, seed: 1 }, 2, 8), a: { ...n24, n: 4 } })).toThrow(LayoutError);
    const b22 = makeBSR({ rows: 4, cols: 4, block: [2, 2], density: 1, seed: 1 }).a;
    expect(() => bsr({ ...denseArgs({ n: 2, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poisonC: false, seed: 1 }, 4, 4), a: { ...b22, indices: b22.indices.map(() => 2) } })).toThrow(LayoutError);
    expect(d.c).toEqual(before);
  });

  it('refuses out-of-range structure in the binding itself', () => {
    const b = new Float32Array(8);
    const c = new Float32Array(4);
    const ptr = Int32Array.from([0, 1, 2]);
    expect(() => addon!.spmmCSR!(2, 4, ptr, Int32Array.from([0, 4]), new Float32Array(2), 2, 1, b, 0, 2, 0, c, 0, 2)).toThrow(RangeError);
    expect(() => addon!.spmmCSR!(2, 4, Int32Array.from([0, 3, 2]), Int32Array.from([0, 1]), new Float32Array(2), 2, 1, b, 0, 2, 0, c, 0, 2)).toThrow(RangeError);
    expect(() => addon!.spmmNM!(1, 3, 1, 3, 2, new Float32Array(1), Uint8Array.from([3]), 2, 1, new Float32Array(6), 0, 2, 0, new Float32Array(2), 0, 2)).toThrow(RangeError);
    expect(() => addon!.spmmNM!(1, 4, 2, 4, 2, new Float32Array(1), Uint8Array.from([0]), 2, 1, b, 0, 2, 0, new Float32Array(2), 0, 2)).toThrow(RangeError);
    expect(() => addon!.spmmBlock!(2, 2, 1, 1, Int32Array.from([0, 1, 2]), Int32Array.from([0, 2]), new Float32Array(2), 2, 1, new Float32Array(4), 0, 2, 0, c, 0, 2)).toThrow(RangeError);
    expect(() => addon!.spmmBlock!(2, 2, 2, 2, Int32Array.from([0, 1]), Int32Array.from([0]), new Float32Array(3), 2, 1, new Float32Array(4), 0, 2, 0, c, 0, 2)).toThrow(RangeError);
  });
});
