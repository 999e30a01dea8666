import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesPerElement } from '../dtype.js';
import { LayoutError } from '../errors.js';
import { copy, sizeOf, tensor, toArray } from '../tensor.js';
import { bitmaskByteLength, fromBitmask, toBitmask, validateBitmask } from './bitmask.js';
import type { BitmaskLayout } from './types.js';
import { expectedDropZeros, isZero, sameRaw, stridedTensorArb, tensorArb, thrown } from './__fixtures__/arbitraries.js';

describe('bitmask', () => {
  it('sets bit k (LSB-first) for each non-zero flat index, keeps values in order, and round-trips (any rank)', () => {
    fc.assert(
      fc.property(tensorArb(), (t) => {
        const l = toBitmask(t);
        const flat = toArray(t);
        const kept = flat.filter((x) => !isZero(t.dtype, x));
        for (let k = 0; k < flat.length; k++) {
          const bit = (l.bits[Math.floor(k / 8)]! >> k % 8) & 1;
          expect(bit).toBe(isZero(t.dtype, flat[k]!) ? 0 : 1);
        }
        expect(l.bits.length).toBe(Math.ceil(flat.length / 8));
        expect(sameRaw(l.values, kept)).toBe(true);
        expect(l.shape).toEqual(t.shape);
        validateBitmask(l);
        const back = fromBitmask(l);
        expect(back.shape).toEqual(t.shape);
        expect(sameRaw(back.data, expectedDropZeros(t))).toBe(true);
        expect(bitmaskByteLength(l)).toBe(Math.ceil(sizeOf(t.shape) / 8) + kept.length * bytesPerElement(t.dtype));
      }),
    );
  });

  it('gives the same layout for strided views as for their contiguous copy', () => {
    fc.assert(
      fc.property(stridedTensorArb(), (v) => {
        const a = toBitmask(v);
        const b = toBitmask(copy(v));
        expect([...a.bits]).toEqual([...b.bits]);
        expect(sameRaw(a.values, b.values)).toBe(true);
      }),
    );
  });

  it('handles a 0-d tensor', () => {
    const l = toBitmask(tensor(new Float64Array([5]), []));
    expect([...l.bits]).toEqual([1]);
    expect(toArray(fromBitmask(l))).toEqual([5]);
  });
});

describe('validateBitmask', () => {
  // shape [2, 5]: 10 elements -> 2 bytes, 6 padding bits
  const good = (): BitmaskLayout<'int8'> => ({
    format: 'bitmask',
    shape: [2, 5],
    dtype: 'int8',
    bits: Uint8Array.from([0b10000001, 0b10]),
    values: Int8Array.from([1, 2, 3]),
  });
  const corruptions: Array<[string, (l: BitmaskLayout<'int8'>) => void, RegExp]> = [
    ['too few bytes', (l) => (l.bits = Uint8Array.from([0b111])), /bits has 1 bytes/],
    ['too many bytes', (l) => (l.bits = Uint8Array.from([1, 2, 0])), /bits has 3 bytes/],
    ['padding bit set', (l) => (l.bits[1] = 0b100), /bits\[1\] has bits set past element 9/],
    ['popcount != values', (l) => (l.values = Int8Array.from([1, 2])), /bits mark 3 elements but values has 2/],
    ['bits not bytes', (l) => ((l as unknown as { bits: Uint16Array }).bits = new Uint16Array(2)), /bits must be a Uint8Array/],
    ['values of another dtype', (l) => ((l as unknown as { values: Uint8Array }).values = new Uint8Array(3)), /values must be the storage array of dtype int8/],
    ['non-integer shape', (l) => (l.shape = [2, 2.5]), /shape\[1\]/],
  ];
  it('accepts the valid layout', () => {
    expect(toArray(fromBitmask(good()))).toEqual([1, 0, 0, 0, 0, 0, 0, 2, 0, 3]);
  });
  it.each(corruptions)('rejects %s', (_, corrupt, message) => {
    const l = good();
    corrupt(l);
    expect(thrown(() => validateBitmask(l))).toMatchObject({ code: 'LAYOUT', message: expect.stringMatching(message) });
    expect(() => fromBitmask(l)).toThrow(LayoutError);
  });
});
