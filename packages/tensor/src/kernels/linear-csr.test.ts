// The reference kernels of a sparse linear layer's training step (linearCSR, linearCSRGradInput,
// sddmmCSR) against a float64 brute force over the dense weight with the mask applied (for SDDMM,
// the dense dY^T X read at the mask positions). Layouts are built here from the CSR definition.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, LayoutError, ShapeError } from '../errors.js';
import type { CSRLayout } from '../layouts/types.js';
import { randomArray, rng } from './__fixtures__/dense.js';
import { linearCSRGradInputReference, linearCSRReference, sddmmCSRReference } from './reference/linear-csr.js';
import { getKernel } from './registry.js';
import type { LinearCSRArgs, LinearCSRGradInputArgs, SddmmCSRArgs } from './types.js';

interface Case {
  out: number;
  inp: number;
  tokens: number;
  density: number;
  /** Rows listed in a shuffled order (and, with `dup`, a repeated column), which CSR allows. */
  shuffle: boolean;
  dup: boolean;
  alpha: number;
  beta: number;
  offsets: [number, number];
  pads: [number, number];
  poison: boolean;
  seed: number;
}

/** A random CSR weight and its dense form (float64, duplicates summed): the mask applied to W. */
function makeWeight(c: Case, next: () => number): { w: CSRLayout<'float32'>; dense: Float64Array } {
  const indptr = new Int32Array(c.out + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const dense = new Float64Array(c.out * c.inp);
  for (let i = 0; i < c.out; i++) {
    const row: number[] = [];
    for (let j = 0; j < c.inp; j++) if (next() < c.density) row.push(j);
    if (c.dup && row.length > 0) row.push(row[0]!);
    if (c.shuffle) row.sort(() => next() - 0.5);
    for (const j of row) {
      const v = Math.fround(next() * 2 - 1);
      indices.push(j);
      values.push(v);
      dense[i * c.inp + j]! += v;
    }
    indptr[i + 1] = indices.length;
  }
  return { w: { format: 'csr', shape: [c.out, c.inp], dtype: 'float32', indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) }, dense };
}

/** A [rows, cols] operand at an offset with a padded leading dimension and slack after it. */
function operand(rows: number, cols: number, offset: number, pad: number, next: () => number): { a: Float32Array; ld: number } {
  const ld = Math.max(1, cols) + pad;
  return { a: randomArray(offset + rows * ld + 2, next), ld };
}

/** got[at(r, c)] = alpha * prod(r, c) + beta * before within 1e-6 of the magnitude; elsewhere untouched. */
function expectOutput(
  got: Float32Array,
  before: Float32Array,
  cells: Array<[at: number, sum: number, abs: number]>,
  alpha: number,
  beta: number,
  label: string,
): void {
  const touched = new Uint8Array(got.length);
  for (const [at, sum, abs] of cells) {
    touched[at] = 1;
    const old = before[at]!;
    const want = (alpha === 0 ? 0 : alpha * sum) + (beta === 0 ? 0 : beta * old);
    const tol = 1e-6 * (Math.abs(alpha) * abs + (beta === 0 ? 0 : Math.abs(beta * old))) + 1e-12;
    if (!(Math.abs(got[at]! - want) <= tol)) expect.fail(`${label}: element ${at} = ${got[at]}, expected ${want}`);
  }
  for (let x = 0; x < got.length; x++) if (!touched[x] && !Object.is(got[x], before[x])) expect.fail(`${label}: element ${x} outside the output changed`);
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  out: fc.oneof(fc.constantFrom(0, 1, 8, 9, 17), fc.integer({ min: 0, max: 24 })),
  inp: fc.oneof(fc.constantFrom(0, 1, 7, 16, 33), fc.integer({ min: 0, max: 40 })),
  tokens: fc.oneof(fc.constantFrom(0, 1, 8, 13), fc.integer({ min: 0, max: 20 })),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.15, noNaN: true })),
  shuffle: fc.boolean(),
  dup: fc.boolean(),
  alpha: fc.oneof(fc.constantFrom(0, 1, -1, 0.5), fc.double({ min: -3, max: 3, noNaN: true })),
  beta: fc.oneof(fc.constantFrom(0, 1, -0.5), fc.double({ min: -3, max: 3, noNaN: true })),
  offsets: fc.tuple(fc.nat(4), fc.nat(4)),
  pads: fc.tuple(fc.nat(3), fc.nat(3)),
  poison: fc.boolean(),
  seed: fc.integer(),
});

function poisonRows(a: Float32Array, offset: number, ld: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) a.fill(NaN, offset + r * ld, offset + r * ld + cols);
}

describe('linearCSR reference', () => {
  it('is registered', () => {
    expect(getKernel('linearCSR', 'reference')).toBe(linearCSRReference);
    expect(getKernel('linearCSRGradInput', 'reference')).toBe(linearCSRGradInputReference);
    expect(getKernel('sddmmCSR', 'reference')).toBe(sddmmCSRReference);
  });

  it('Y = alpha X W^T + beta Y matches the dense brute force', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const next = rng(c.seed);
        const { w, dense } = makeWeight(c, next);
        const x = operand(c.tokens, c.inp, c.offsets[0], c.pads[0], next);
        const y = operand(c.tokens, c.out, c.offsets[1], c.pads[1], next);
        if (c.poison && c.beta === 0) poisonRows(y.a, c.offsets[1], y.ld, c.tokens, c.out);
        const before = y.a.slice();
        const args: LinearCSRArgs = { w, tokens: c.tokens, alpha: c.alpha, x: x.a, xOffset: c.offsets[0], ldx: x.ld, beta: c.beta, y: y.a, yOffset: c.offsets[1], ldy: y.ld };
        linearCSRReference(args);
        const cells: Array<[number, number, number]> = [];
        for (let t = 0; t < c.tokens; t++) {
          for (let i = 0; i < c.out; i++) {
            let s = 0;
            let abs = 0;
            for (let j = 0; j < c.inp; j++) {
              const v = dense[i * c.inp + j]! * x.a[c.offsets[0] + t * x.ld + j]!;
              s += v;
              abs += Math.abs(v);
            }
            cells.push([c.offsets[1] + t * y.ld + i, s, abs]);
          }
        }
        expectOutput(y.a, before, cells, c.alpha, c.beta, JSON.stringify(c));
      }),
      { numRuns: 200 },
    );
  });

  it('dX = alpha dY W + beta dX matches the dense brute force', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const next = rng(c.seed);
        const { w, dense } = makeWeight(c, next);
        const dy = operand(c.tokens, c.out, c.offsets[0], c.pads[0], next);
        const dx = operand(c.tokens, c.inp, c.offsets[1], c.pads[1], next);
        if (c.poison && c.beta === 0) poisonRows(dx.a, c.offsets[1], dx.ld, c.tokens, c.inp);
        const before = dx.a.slice();
        const args: LinearCSRGradInputArgs = { w, tokens: c.tokens, alpha: c.alpha, dy: dy.a, dyOffset: c.offsets[0], lddy: dy.ld, beta: c.beta, dx: dx.a, dxOffset: c.offsets[1], lddx: dx.ld };
        linearCSRGradInputReference(args);
        const cells: Array<[number, number, number]> = [];
        for (let t = 0; t < c.tokens; t++) {
          for (let j = 0; j < c.inp; j++) {
            let s = 0;
            let abs = 0;
            for (let i = 0; i < c.out; i++) {
              const v = dy.a[c.offsets[0] + t * dy.ld + i]! * dense[i * c.inp + j]!;
              s += v;
              abs += Math.abs(v);
            }
            cells.push([c.offsets[1] + t * dx.ld + j, s, abs]);
          }
        }
        expectOutput(dx.a, before, cells, c.alpha, c.beta, JSON.stringify(c));
      }),
      { numRuns: 200 },
    );
  });

  it('SDDMM equals the dense dY^T X read at the mask positions', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const next = rng(c.seed);
        const { w } = makeWeight(c, next);
        const dy = operand(c.tokens, c.out, c.offsets[0], c.pads[0], next);
        const x = operand(c.tokens, c.inp, c.offsets[1], c.pads[1], next);
        const nnz = w.indptr[c.out]!;
        const outOffset = c.offsets[0] + c.offsets[1];
        const out = randomArray(outOffset + nnz + 3, next);
        if (c.poison && c.beta === 0) out.fill(NaN, outOffset, outOffset + nnz);
        const before = out.slice();
        // The pattern alone (no values): the kernel must not need them.
        const pattern = { shape: w.shape, indptr: w.indptr, indices: w.indices };
        const args: SddmmCSRArgs = { pattern, tokens: c.tokens, alpha: c.alpha, dy: dy.a, dyOffset: c.offsets[0], lddy: dy.ld, x: x.a, xOffset: c.offsets[1], ldx: x.ld, beta: c.beta, out, outOffset };
        sddmmCSRReference(args);
        // The full dense product G = dY^T X [out, in], then read at each stored entry.
        const g = new Float64Array(c.out * c.inp);
        const gAbs = new Float64Array(c.out * c.inp);
        for (let t = 0; t < c.tokens; t++) {
          for (let i = 0; i < c.out; i++) {
            for (let j = 0; j < c.inp; j++) {
              const v = dy.a[c.offsets[0] + t * dy.ld + i]! * x.a[c.offsets[1] + t * x.ld + j]!;
              g[i * c.inp + j]! += v;
              gAbs[i * c.inp + j]! += Math.abs(v);
            }
          }
        }
        const cells: Array<[number, number, number]> = [];
        for (let i = 0; i < c.out; i++) {
          for (let p = w.indptr[i]!; p < w.indptr[i + 1]!; p++) cells.push([outOffset + p, g[i * c.inp + w.indices[p]!]!, gAbs[i * c.inp + w.indices[p]!]!]);
        }
        expectOutput(out, before, cells, c.alpha, c.beta, JSON.stringify(c));
      }),
      { numRuns: 200 },
    );
  });

  it('closed forms: an all-zero mask gives beta * Y; an identity weight copies X; alpha = 0 reads no operand', () => {
    const empty: CSRLayout<'float32'> = { format: 'csr', shape: [3, 4], dtype: 'float32', indptr: new Int32Array(4), indices: new Int32Array(0), values: new Float32Array(0) };
    const y = Float32Array.from([1, 2, 3, 4, 5, 6]);
    linearCSRReference({ w: empty, tokens: 2, alpha: 1, x: new Float32Array(8), xOffset: 0, ldx: 4, beta: 0.5, y, yOffset: 0, ldy: 3 });
    expect(Array.from(y)).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    const dx = new Float32Array(8).fill(NaN);
    linearCSRGradInputReference({ w: empty, tokens: 2, alpha: 1, dy: new Float32Array(6), dyOffset: 0, lddy: 3, beta: 0, dx, dxOffset: 0, lddx: 4 });
    expect(Array.from(dx)).toEqual(new Array(8).fill(0));

    const eye: CSRLayout<'float32'> = { format: 'csr', shape: [3, 3], dtype: 'float32', indptr: Int32Array.from([0, 1, 2, 3]), indices: Int32Array.from([0, 1, 2]), values: Float32Array.from([1, 1, 1]) };
    const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const y2 = new Float32Array(6);
    linearCSRReference({ w: eye, tokens: 2, alpha: 1, x, xOffset: 0, ldx: 3, beta: 0, y: y2, yOffset: 0, ldy: 3 });
    expect(Array.from(y2)).toEqual([1, 2, 3, 4, 5, 6]);

    // SDDMM with dY = X gives the squared column norms on the diagonal.
    const g = new Float32Array(3);
    sddmmCSRReference({ pattern: eye, tokens: 2, alpha: 1, dy: x, dyOffset: 0, lddy: 3, x, xOffset: 0, ldx: 3, beta: 0, out: g, outOffset: 0 });
    expect(Array.from(g)).toEqual([1 + 16, 4 + 25, 9 + 36]);

    const nanX = new Float32Array(6).fill(NaN);
    const y3 = Float32Array.from([1, 2, 3, 4, 5, 6]);
    linearCSRReference({ w: eye, tokens: 2, alpha: 0, x: nanX, xOffset: 0, ldx: 3, beta: 2, y: y3, yOffset: 0, ldy: 3 });
    expect(Array.from(y3)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it('throws typed errors naming the argument', () => {
    const next = rng(1);
    const w: CSRLayout<'float32'> = { format: 'csr', shape: [2, 3], dtype: 'float32', indptr: Int32Array.from([0, 2, 3]), indices: Int32Array.from([0, 2, 1]), values: randomArray(3, next) };
    const base: LinearCSRArgs = { w, tokens: 2, alpha: 1, x: new Float32Array(6), xOffset: 0, ldx: 3, beta: 0, y: new Float32Array(4), yOffset: 0, ldy: 2 };
    expect(() => linearCSRReference({ ...base, w: { ...w, indices: Int32Array.from([0, 3, 1]) } })).toThrow(/w\.indices\[1\] = 3/);
    expect(() => linearCSRReference({ ...base, w: { ...w, indices: Int32Array.from([0, 3, 1]) } })).toThrow(LayoutError);
    expect(() => linearCSRReference({ ...base, x: new Float32Array(5) })).toThrow(ShapeError);
    expect(() => linearCSRReference({ ...base, ldy: 1 })).toThrow(ShapeError);
    expect(() => linearCSRReference({ ...base, tokens: 1.5 })).toThrow(ShapeError);
    expect(() => linearCSRReference({ ...base, y: new Float64Array(4) as unknown as Float32Array })).toThrow(DTypeError);
    const shared = new Float32Array(10);
    expect(() => linearCSRReference({ ...base, x: shared, y: shared, yOffset: 4 })).toThrow(ArgumentError);
    expect(() => linearCSRReference({ ...base, y: w.values, ldy: 2, tokens: 1 })).toThrow(/overlaps w\.values/);
    // An output viewing the bytes of the weight's indices (read while the output is written).
    const ints = new Int32Array(16);
    const wShared = { ...w, indices: ints.subarray(0, 3) };
    wShared.indices.set(w.indices);
    expect(() => linearCSRReference({ ...base, w: wShared, y: new Float32Array(ints.buffer, 8, 4) })).toThrow(/overlaps w\.indices/);
    expect(() => linearCSRReference({ ...base, w: wShared, y: new Float32Array(ints.buffer, 12 * 4, 4) })).not.toThrow();

    const g: LinearCSRGradInputArgs = { w, tokens: 2, alpha: 1, dy: new Float32Array(4), dyOffset: 0, lddy: 2, beta: 0, dx: new Float32Array(6), dxOffset: 0, lddx: 3 };
    expect(() => linearCSRGradInputReference({ ...g, lddx: 2 })).toThrow(ShapeError);
    expect(() => linearCSRGradInputReference({ ...g, w: { ...w, indptr: Int32Array.from([0, 3, 2]) } })).toThrow(LayoutError);
    expect(() => linearCSRGradInputReference({ ...g, dx: shared, dy: shared, dyOffset: 5 })).toThrow(ArgumentError);

    const s: SddmmCSRArgs = { pattern: w, tokens: 2, alpha: 1, dy: new Float32Array(4), dyOffset: 0, lddy: 2, x: new Float32Array(6), xOffset: 0, ldx: 3, beta: 0, out: new Float32Array(3), outOffset: 0 };
    expect(() => sddmmCSRReference({ ...s, out: new Float32Array(3), outOffset: 1 })).toThrow(ShapeError);
    expect(() => sddmmCSRReference({ ...s, pattern: { shape: [2, 3], indptr: Int32Array.from([0, 2]), indices: w.indices } })).toThrow(/pattern\.indptr has length 2/);
    expect(() => sddmmCSRReference({ ...s, out: s.x, outOffset: 0 })).toThrow(ArgumentError);
    const ptrBytes = new Int32Array(8);
    ptrBytes.set(w.indptr);
    expect(() => sddmmCSRReference({ ...s, pattern: { ...w, indptr: ptrBytes.subarray(0, 3) }, out: new Float32Array(ptrBytes.buffer, 4, 3) })).toThrow(/overlaps pattern\.indptr/);
    expect(() => sddmmCSRReference({ ...s, alpha: '1' as unknown as number })).toThrow(ArgumentError);
  });
});
