import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesPerElement } from '../dtype.js';
import { LayoutError } from '../errors.js';
import { copy, tensor, toArray } from '../tensor.js';
import { cooByteLength, fromCOO, toCOO, validateCOO } from './coo.js';
import type { COOLayout } from './types.js';
import { expectedDropZeros, isZero, sameRaw, stridedTensorArb, tensorArb, thrown } from './__fixtures__/arbitraries.js';

describe('COO', () => {
  it('stores first index then gaps, values in row-major order, and round-trips (any rank)', () => {
    fc.assert(
      fc.property(tensorArb(), (t) => {
        const l = toCOO(t);
        const flat = toArray(t);
        const where: number[] = [];
        flat.forEach((x, k) => {
          if (!isZero(t.dtype, x)) where.push(k);
        });
        const wantDeltas = where.map((k, i) => (i === 0 ? k : k - where[i - 1]!));
        expect([...l.deltas]).toEqual(wantDeltas);
        expect(sameRaw(l.values, where.map((k) => flat[k]!))).toBe(true);
        validateCOO(l);
        const back = fromCOO(l);
        expect(back.shape).toEqual(t.shape);
        expect(sameRaw(back.data, expectedDropZeros(t))).toBe(true);
        expect(cooByteLength(l)).toBe(where.length * (4 + bytesPerElement(t.dtype)));
      }),
    );
  });

  it('gives the same layout for strided views as for their contiguous copy', () => {
    fc.assert(
      fc.property(stridedTensorArb(), (v) => {
        const a = toCOO(v);
        const b = toCOO(copy(v));
        expect([...a.deltas]).toEqual([...b.deltas]);
        expect(sameRaw(a.values, b.values)).toBe(true);
      }),
    );
  });
});

describe('validateCOO', () => {
  // shape [3, 4]: entries at flat 1, 5, 11
  const good = (): COOLayout<'float16'> => ({
    format: 'coo',
    shape: [3, 4],
    dtype: 'float16',
    deltas: Uint32Array.from([1, 4, 6]),
    values: Uint16Array.from([0x3c00, 0x4000, 0xbc00]),
  });
  const corruptions: Array<[string, (l: COOLayout<'float16'>) => void, RegExp]> = [
    ['duplicate index (zero gap)', (l) => (l.deltas[1] = 0), /deltas\[1\] is 0/],
    ['past the end', (l) => (l.deltas[2] = 7), /deltas\[2\] reaches flat index 12/],
    ['first index past the end', (l) => (l.deltas[0] = 100), /deltas\[0\] reaches flat index 100/],
    ['length mismatch', (l) => (l.values = l.values.subarray(1)), /deltas has 3 entries but values has 2/],
    ['signed deltas', (l) => ((l as unknown as { deltas: Int32Array }).deltas = Int32Array.from([1, 4, 6])), /deltas must be a Uint32Array/],
    ['float values for float16', (l) => ((l as unknown as { values: Float32Array }).values = new Float32Array(3)), /values must be the storage array of dtype float16/],
  ];
  it('accepts the valid layout', () => {
    expect(toArray(fromCOO(good()))).toEqual([0, 0x3c00, 0, 0, 0, 0x4000, 0, 0, 0, 0, 0, 0xbc00]);
    expect(toArray(fromCOO(toCOO(tensor(new Float32Array(0), [0, 3]))))).toEqual([]);
  });
  it.each(corruptions)('rejects %s', (_, corrupt, message) => {
    const l = good();
    corrupt(l);
    expect(thrown(() => validateCOO(l))).toMatchObject({ code: 'LAYOUT', message: expect.stringMatching(message) });
    expect(() => fromCOO(l)).toThrow(LayoutError);
  });
});
