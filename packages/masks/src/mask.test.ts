import { ArgumentError, fromBitmask, LayoutError, ShapeError, slice, tensor, toArray, toBitmask, toFloat16, transpose } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  and,
  andNot,
  applyMask,
  composeMasks,
  count,
  countPerBlock,
  countPerColumn,
  countPerRow,
  density,
  equals,
  iou,
  isKept,
  maskAll,
  maskFromBitmask,
  maskFromBooleans,
  maskFromIndices,
  maskFromPredicate,
  maskFromTensor,
  maskIndices,
  maskNone,
  maskToBitmask,
  maskToBooleans,
  maskToTensor,
  not,
  or,
  overlap,
  reshapeMask,
  sparseArchitectureDivergence,
  sparsity,
  validateMask,
  xor,
  type Mask,
} from './mask.js';

// A matrix shape that crosses 32-bit word boundaries, and boolean contents for it.
const matrixArb = fc
  .record({ rows: fc.integer({ min: 0, max: 7 }), cols: fc.integer({ min: 0, max: 41 }) })
  .chain(({ rows, cols }) =>
    fc.record({
      shape: fc.constant([rows, cols]),
      a: fc.array(fc.boolean(), { minLength: rows * cols, maxLength: rows * cols }),
      b: fc.array(fc.boolean(), { minLength: rows * cols, maxLength: rows * cols }),
    }),
  );

const anyShapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 3 }).chain((shape) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return fc.record({ shape: fc.constant(shape), a: fc.array(fc.boolean(), { minLength: n, maxLength: n }) });
});

const bools = (m: Mask): boolean[] => Array.from(maskToBooleans(m), (x) => x === 1);

describe('Mask construction', () => {
  it('maskFromBooleans round-trips and counts exactly (any rank, word boundaries)', () => {
    fc.assert(
      fc.property(anyShapeArb, ({ shape, a }) => {
        const m = maskFromBooleans(a, shape);
        validateMask(m);
        expect(bools(m)).toEqual(a);
        const n = a.length;
        const kept = a.filter(Boolean).length;
        expect(count(m)).toBe(kept);
        expect(density(m)).toBe(n === 0 ? 1 : kept / n);
        expect(sparsity(m)).toBe(n === 0 ? 0 : (n - kept) / n);
        expect(Array.from(maskIndices(m))).toEqual(a.flatMap((x, i) => (x ? [i] : [])));
        a.forEach((x, i) => expect(isKept(m, i)).toBe(x));
      }),
    );
  });

  it('maskAll / maskNone keep everything / nothing and leave padding bits zero', () => {
    for (const shape of [[0], [1], [31], [32], [33], [3, 11]]) {
      const all = maskAll(shape);
      validateMask(all);
      expect(count(all)).toBe(shape.reduce((a, b) => a * b, 1));
      expect(count(maskNone(shape))).toBe(0);
    }
  });

  it('maskFromTensor keeps non-zeros of any dtype and view: ±0 pruned, NaN kept', () => {
    const t = tensor(new Float32Array([0, -0, 1, NaN, -2, 0]), [2, 3]);
    expect(bools(maskFromTensor(t))).toEqual([false, false, true, true, true, false]);
    const h = tensor(new Uint16Array([0x8000, toFloat16(1), 0, toFloat16(-0.5)]), [4], { dtype: 'float16' });
    expect(bools(maskFromTensor(h))).toEqual([false, true, false, true]);
    const view = transpose(t); // [3, 2]: rows of t become columns
    expect(bools(maskFromTensor(view))).toEqual([false, true, false, true, true, false]);
    const stepped = slice(tensor(new Int32Array([1, 0, 2, 0, 3, 0]), [6]), { step: 2 });
    expect(bools(maskFromTensor(stepped))).toEqual([true, true, true]);
  });

  it('maskFromPredicate passes flat and multi-indices in row-major order; maskFromIndices sets the listed ones', () => {
    const seen: string[] = [];
    const m = maskFromPredicate([2, 3], (i, idx) => {
      seen.push(`${i}:${idx.join(',')}`);
      return idx[0] === idx[1];
    });
    expect(seen).toEqual(['0:0,0', '1:0,1', '2:0,2', '3:1,0', '4:1,1', '5:1,2']);
    expect(Array.from(maskIndices(m))).toEqual([0, 4]);
    expect(equals(maskFromIndices([2, 3], [4, 0, 4]), m)).toBe(true);
    expect(() => maskFromIndices([2, 3], [6])).toThrow(/indices\[0\] = 6 is outside \[0, 6\)/);
  });

  it('validateMask rejects malformed masks and maskFromBooleans a wrong length', () => {
    expect(() => validateMask({ shape: [40], bits: new Uint32Array(1) })).toThrow(ArgumentError);
    expect(() => validateMask({ shape: [3], bits: new Uint32Array([8]) })).toThrow(/padding must be zero/);
    expect(() => validateMask({ shape: [-1], bits: new Uint32Array(0) })).toThrow(ShapeError);
    expect(() => maskFromBooleans([true], [2])).toThrow(ShapeError);
  });
});

describe('Mask algebra (vs boolean arrays)', () => {
  it('and / or / xor / andNot / not match elementwise logic', () => {
    fc.assert(
      fc.property(matrixArb, ({ shape, a, b }) => {
        const A = maskFromBooleans(a, shape);
        const B = maskFromBooleans(b, shape);
        expect(bools(and(A, B))).toEqual(a.map((x, i) => x && b[i]!));
        expect(bools(or(A, B))).toEqual(a.map((x, i) => x || b[i]!));
        expect(bools(xor(A, B))).toEqual(a.map((x, i) => x !== b[i]!));
        expect(bools(andNot(A, B))).toEqual(a.map((x, i) => x && !b[i]!));
        const notA = not(A);
        validateMask(notA); // padding stays zero
        expect(bools(notA)).toEqual(a.map((x) => !x));
      }),
    );
  });

  it('satisfies De Morgan, double negation and xor = (a ∨ b) ∧ ¬(a ∧ b) = (a \\ b) ∨ (b \\ a)', () => {
    fc.assert(
      fc.property(matrixArb, ({ shape, a, b }) => {
        const A = maskFromBooleans(a, shape);
        const B = maskFromBooleans(b, shape);
        expect(equals(not(and(A, B)), or(not(A), not(B)))).toBe(true);
        expect(equals(not(or(A, B)), and(not(A), not(B)))).toBe(true);
        expect(equals(not(not(A)), A)).toBe(true);
        expect(equals(xor(A, B), and(or(A, B), not(and(A, B))))).toBe(true);
        expect(equals(xor(A, B), or(andNot(A, B), andNot(B, A)))).toBe(true);
        expect(count(A) + count(not(A))).toBe(a.length);
      }),
    );
  });

  it('refuses masks of different shapes, naming them', () => {
    expect(() => and(maskAll([2, 3]), maskAll([3, 2]))).toThrow(ShapeError);
    expect(() => or(maskAll([2, 3]), maskAll([6]))).toThrow(/b has shape \[6\] but a has shape \[2, 3\]/);
    expect(equals(maskAll([2, 3]), maskAll([3, 2]))).toBe(false);
  });
});

describe('counts per row / column / block', () => {
  it('match brute force', () => {
    fc.assert(
      fc.property(matrixArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }), ({ shape, a }, br, bc) => {
        const [rows, cols] = shape as [number, number];
        const m = maskFromBooleans(a, shape);
        const at = (r: number, c: number): number => (a[r * cols + c] ? 1 : 0);
        const rowRef = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => at(r, c)).reduce((x, y) => x + y, 0));
        const colRef = Array.from({ length: cols }, (_, c) => Array.from({ length: rows }, (_, r) => at(r, c)).reduce((x, y) => x + y, 0));
        expect(Array.from(countPerRow(m))).toEqual(rowRef);
        expect(Array.from(countPerColumn(m))).toEqual(colRef);
        const blocks = countPerBlock(m, [br, bc]);
        const nbr = Math.ceil(rows / br);
        const nbc = Math.ceil(cols / bc);
        expect(blocks.shape).toEqual([nbr, nbc]);
        for (let i = 0; i < nbr; i++) {
          for (let j = 0; j < nbc; j++) {
            let s = 0;
            for (let r = i * br; r < Math.min(rows, (i + 1) * br); r++) for (let c = j * bc; c < Math.min(cols, (j + 1) * bc); c++) s += at(r, c);
            expect(blocks.data[i * nbc + j]).toBe(s);
          }
        }
      }),
    );
  });

  it('need a matrix and a positive block shape', () => {
    expect(() => countPerRow(maskAll([8]))).toThrow(/must be a matrix/);
    expect(() => countPerBlock(maskAll([2, 2]), [0, 2])).toThrow(/blockShape/);
  });
});

describe('composition and distances', () => {
  it('composeMasks: union, intersection and at-least-k votes match brute force', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }).chain((n) =>
          fc.record({ n: fc.constant(n), masks: fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: 1, maxLength: 5 }) }),
        ),
        fc.nat(),
        ({ n, masks }, kSeed) => {
          const ms = masks.map((x) => maskFromBooleans(x, [n]));
          const votes = Array.from({ length: n }, (_, i) => masks.filter((x) => x[i]).length);
          expect(bools(composeMasks(ms))).toEqual(votes.map((v) => v >= 1));
          expect(bools(composeMasks(ms, 'intersection'))).toEqual(votes.map((v) => v === masks.length));
          const k = 1 + (kSeed % masks.length);
          expect(bools(composeMasks(ms, { atLeast: k }))).toEqual(votes.map((v) => v >= k));
          validateMask(composeMasks(ms, 'intersection'));
        },
      ),
    );
    expect(() => composeMasks([])).toThrow(ArgumentError);
    expect(() => composeMasks([maskAll([2])], { atLeast: 2 })).toThrow(/atLeast/);
    expect(() => composeMasks([maskAll([2]), maskAll([3])])).toThrow(ShapeError);
  });

  it('SAD counts differing positions; IoU and overlap match set arithmetic', () => {
    fc.assert(
      fc.property(matrixArb, ({ shape, a, b }) => {
        const A = maskFromBooleans(a, shape);
        const B = maskFromBooleans(b, shape);
        const diff = a.filter((x, i) => x !== b[i]).length;
        const inter = a.filter((x, i) => x && b[i]).length;
        const uni = a.filter((x, i) => x || b[i]).length;
        const ca = a.filter(Boolean).length;
        expect(sparseArchitectureDivergence(A, B)).toBe(diff);
        expect(sparseArchitectureDivergence(A, B, { normalize: true })).toBe(a.length === 0 ? 0 : diff / a.length);
        expect(sparseArchitectureDivergence(A, A)).toBe(0);
        expect(iou(A, B)).toBe(uni === 0 ? 1 : inter / uni);
        expect(overlap(A, B)).toBe(ca === 0 ? 1 : inter / ca);
        expect(iou(A, A)).toBe(1);
      }),
    );
  });
});

describe('applyMask and conversions', () => {
  it('zeros pruned entries out of place (input untouched) and in place through a strided view', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = tensor(data, [2, 3]);
    const m = maskFromBooleans([1, 0, 1, 0, 1, 1], [2, 3]);
    const out = applyMask(m, t);
    expect(Array.from(out.data)).toEqual([1, 0, 3, 0, 5, 6]);
    expect(Array.from(data)).toEqual([1, 2, 3, 4, 5, 6]);
    const view = transpose(t); // [3, 2], element (i, j) = t(j, i)
    const mt = maskFromBooleans([1, 0, 0, 1, 1, 1], [3, 2]); // prunes view (0,1)=t(1,0)=4 and (1,0)=t(0,1)=2
    expect(applyMask(mt, view, { inPlace: true })).toBe(view);
    expect(Array.from(data)).toEqual([1, 0, 3, 0, 5, 6]);
    expect(() => applyMask(m, view)).toThrow(/tensor has shape \[3, 2\] but mask has shape \[2, 3\]/);
  });

  it('contiguous tensors (word-at-a-time path) match a per-element brute force: offsets, any length, every dtype, in place', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom('float32', 'float64', 'int32', 'uint8', 'bool'),
        fc.integer(),
        fc.boolean(),
        (n, offset, dtype, seed, inPlace) => {
          let s = seed >>> 0;
          const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
          const keep = Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
          const values = Array.from({ length: offset + n }, () => (dtype === 'bool' ? 1 : 1 + Math.floor(next() * 100)));
          const storage = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array, bool: Uint8Array }[dtype];
          const base = tensor(storage.from(values) as Float32Array, [offset + n], { dtype: dtype as 'float32' });
          const view = slice(base, { start: offset, end: offset + n });
          const m = maskFromBooleans(keep, [n]);
          const out = applyMask(m, view, { inPlace });
          expect(Array.from(out.data.subarray(out.offset, out.offset + n))).toEqual(values.slice(offset).map((v, i) => (keep[i] ? v : 0)));
          // Out of place leaves the input alone; in place leaves the entries before the view alone.
          expect(Array.from(base.data.subarray(0, offset))).toEqual(values.slice(0, offset));
          if (!inPlace) expect(Array.from(base.data)).toEqual(values);
        },
      ),
    );
  });

  it('maskToTensor writes 1/0 in the requested dtype', () => {
    const m = maskFromBooleans([1, 0, 1], [3]);
    expect(Array.from(maskToTensor(m).data)).toEqual([1, 0, 1]);
    expect(maskToTensor(m, 'bool').dtype).toBe('bool');
    expect(Array.from(maskToTensor(m, 'float16').data)).toEqual([0x3c00, 0, 0x3c00]);
  });

  it('converts to and from the BitmaskLayout of @sparse/tensor', () => {
    fc.assert(
      fc.property(matrixArb, ({ shape, a }) => {
        const n = a.length;
        const values = tensor(Float32Array.from({ length: n }, (_, i) => i - 3), shape);
        const m = maskFromBooleans(a, shape);
        const layout = maskToBitmask(m, values);
        // Same bits as the mask (kept zeros stay stored), and the dense tensor it encodes is applyMask's.
        expect(equals(maskFromBitmask(layout), m)).toBe(true);
        expect(toArray(fromBitmask(layout))).toEqual(toArray(applyMask(m, values)));
        expect(equals(maskFromBitmask(toBitmask(values)), maskFromTensor(values))).toBe(true);
      }),
    );
    const bad = { format: 'bitmask' as const, shape: [3], dtype: 'float32' as const, bits: new Uint8Array([1]), values: new Float32Array(2) };
    expect(() => maskFromBitmask(bad)).toThrow(LayoutError);
  });

  it('reshapeMask shares the bits under another shape of the same size', () => {
    const m = maskFromBooleans([1, 0, 1, 1, 0, 0], [2, 3]);
    const r = reshapeMask(m, [3, 2]);
    expect(r.bits).toBe(m.bits);
    expect(Array.from(countPerRow(r))).toEqual([1, 2, 0]);
    expect(() => reshapeMask(m, [4])).toThrow(ShapeError);
  });
});
