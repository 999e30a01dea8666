import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesPerElement } from '../dtype.js';
import { ArgumentError, LayoutError, ShapeError } from '../errors.js';
import { copy, get, tensor, Tensor, toArray } from '../tensor.js';
import { bsrByteLength, fromBSR, toBSR, validateBSR } from './bsr.js';
import type { BSRLayout } from './types.js';
import { isZero, matrixArb, sameRaw, stridedMatrixArb, thrown } from './__fixtures__/arbitraries.js';

const blockArb = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }));

/** BSR by brute force: visit every block of the grid, keep those with a non-zero, pad outside with 0. */
function bruteBSR(t: Tensor, br: number, bc: number) {
  const [rows, cols] = t.shape as [number, number];
  const indptr = [0];
  const indices: number[] = [];
  const values: number[] = [];
  const dense: number[] = new Array(rows * cols).fill(0);
  for (let bi = 0; bi * br < rows; bi++) {
    for (let bj = 0; bj * bc < cols; bj++) {
      const block: number[] = [];
      let any = false;
      for (let a = 0; a < br; a++) {
        for (let b = 0; b < bc; b++) {
          const i = bi * br + a;
          const j = bj * bc + b;
          const v = i < rows && j < cols ? get(t, i, j) : 0;
          if (!isZero(t.dtype, v)) any = true;
          block.push(v);
        }
      }
      if (!any) continue;
      indices.push(bj);
      values.push(...block);
      for (let a = 0; a < br; a++) {
        for (let b = 0; b < bc; b++) {
          const i = bi * br + a;
          const j = bj * bc + b;
          if (i < rows && j < cols) dense[i * cols + j] = block[a * bc + b]!;
        }
      }
    }
    indptr.push(indices.length);
  }
  return { indptr, indices, values, dense };
}

describe('BSR', () => {
  it('matches the brute-force block grid and round-trips (block shapes not dividing the sides)', () => {
    fc.assert(
      fc.property(matrixArb(), blockArb, (t, [br, bc]) => {
        const l = toBSR(t, { blockShape: [br, bc] });
        const want = bruteBSR(t, br, bc);
        expect(l.blockShape).toEqual([br, bc]);
        expect([...l.indptr]).toEqual(want.indptr);
        expect([...l.indices]).toEqual(want.indices);
        expect(sameRaw(l.values, want.values)).toBe(true);
        validateBSR(l);
        const back = fromBSR(l);
        expect(back.shape).toEqual(t.shape);
        // stored blocks keep their raw zeros (-0 included); dropped blocks come back as +0
        expect(sameRaw(back.data, want.dense)).toBe(true);
        expect(bsrByteLength(l)).toBe(want.indptr.length * 4 + want.indices.length * (4 + br * bc * bytesPerElement(t.dtype)));
      }),
    );
  });

  it('gives the same layout for strided views as for their contiguous copy', () => {
    fc.assert(
      fc.property(stridedMatrixArb(), blockArb, (v, blockShape) => {
        const a = toBSR(v, { blockShape });
        const b = toBSR(copy(v), { blockShape });
        expect([...a.indptr]).toEqual([...b.indptr]);
        expect([...a.indices]).toEqual([...b.indices]);
        expect(sameRaw(a.values, b.values)).toBe(true);
      }),
    );
  });

  it('rejects bad arguments', () => {
    const t = tensor(new Float32Array(4), [2, 2]);
    expect(() => toBSR(t, { blockShape: [0, 2] })).toThrow(ArgumentError);
    expect(() => toBSR(t, { blockShape: [2] })).toThrow(ArgumentError);
    expect(() => toBSR(t, {} as never)).toThrow(ArgumentError);
    expect(() => toBSR(tensor(new Float32Array(2), [2]), { blockShape: [1, 1] })).toThrow(ShapeError);
  });
});

describe('validateBSR', () => {
  // 3x5 matrix, 2x2 blocks (grid 2x3): block (0,0) and the edge block (1,2), whose only in-range entry is (2,4).
  const good = (): BSRLayout<'float64'> => ({
    format: 'bsr',
    shape: [3, 5],
    blockShape: [2, 2],
    dtype: 'float64',
    indptr: Int32Array.from([0, 1, 2]),
    indices: Int32Array.from([0, 2]),
    values: Float64Array.from([1, 2, 3, 4, 5, 0, 0, 0]),
  });
  const corruptions: Array<[string, (l: BSRLayout<'float64'>) => void, RegExp]> = [
    ['padding not zero (column)', (l) => (l.values[5] = 9), /values\[5\] \(block 1, entry \[0, 1\]\) lies outside/],
    ['padding not zero (row)', (l) => (l.values[6] = -1), /values\[6\] \(block 1, entry \[1, 0\]\)/],
    ['block column out of range', (l) => (l.indices[1] = 3), /indices\[1\] = 3 is outside \[0, 3\) \(block row 1\)/],
    ['indptr length', (l) => (l.indptr = Int32Array.from([0, 2])), /indptr has 2 entries, expected 2 block rows \+ 1/],
    ['values length', (l) => (l.values = l.values.subarray(0, 7)), /values has 7 entries but 2 blocks of 2x2 need 8/],
    ['zero block side', (l) => (l.blockShape = [2, 0]), /blockShape must be two positive integers/],
    ['fractional block side', (l) => (l.blockShape = [1.5, 2]), /blockShape/],
    ['unsorted blocks', (l) => {
      l.indptr = Int32Array.from([0, 2, 2]);
      l.indices = Int32Array.from([2, 0]);
    }, /indices\[1\] = 0 is not greater/],
  ];
  it('accepts the valid layout', () => {
    expect(toArray(fromBSR(good()))).toEqual([1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5]);
  });
  it.each(corruptions)('rejects %s', (_, corrupt, message) => {
    const l = good();
    corrupt(l);
    expect(thrown(() => validateBSR(l))).toMatchObject({ code: 'LAYOUT', message: expect.stringMatching(message) });
    expect(() => fromBSR(l)).toThrow(LayoutError);
  });
});
