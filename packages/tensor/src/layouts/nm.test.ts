import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesPerElement, DType } from '../dtype.js';
import { ArgumentError, LayoutError, ShapeError } from '../errors.js';
import { encodeFloat16 } from '../float16.js';
import { copy, get, tensor, Tensor, toArray, zeros } from '../tensor.js';
import { fromNM, nmByteLength, nmGroupIndex, toNM, validateNM } from './nm.js';
import type { NMLayout } from './types.js';
import { dtypeArb, filledArb, isZero, refMagnitude, refMagnitudeOrder, sameRaw, sparsityArb, stridedArb, thrown } from './__fixtures__/arbitraries.js';

const NM_PAIRS: Array<[number, number]> = [[1, 2], [2, 4], [1, 4], [3, 4], [2, 8], [4, 8], [3, 5], [1, 3], [5, 16], [7, 9]];

/** [n, m] with a matrix whose columns are a multiple of m. */
const nmMatrixArb = fc
  .tuple(fc.constantFrom(...NM_PAIRS), dtypeArb, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 3 }), sparsityArb)
  .chain(([[n, m], dtype, rows, groups, sp]) => filledArb(dtype, [rows, groups * m], sp).map((t) => ({ t, n, m })));

/** The reference selection: sort each group's positions by |value| descending (NaN first), then position; keep the first n. */
function bruteKeep(t: Tensor, n: number, m: number): { kept: number[][]; dense: number[] } {
  const [rows, cols] = t.shape as [number, number];
  const kept: number[][] = [];
  const dense = new Array<number>(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) {
    for (let c0 = 0; c0 < cols; c0 += m) {
      const pos = [...Array(m).keys()];
      pos.sort((a, b) => refMagnitudeOrder(refMagnitude(t.dtype, get(t, i, c0 + a)), refMagnitude(t.dtype, get(t, i, c0 + b))) || a - b);
      const keep = pos.slice(0, n).sort((a, b) => a - b);
      kept.push(keep);
      for (const q of keep) dense[i * cols + c0 + q] = get(t, i, c0 + q);
    }
  }
  return { kept, dense };
}

function positions(l: NMLayout): number[] {
  return Array.from({ length: l.values.length }, (_, k) => nmGroupIndex(l, k));
}

describe('N:M', () => {
  it('keeps the n largest |values| per group (ties to the lower position), positions ascending, exact round trip of the kept set', () => {
    fc.assert(
      fc.property(nmMatrixArb, ({ t, n, m }) => {
        const l = toNM(t, { n, m });
        const want = bruteKeep(t, n, m);
        expect(l.indexBits).toBe(Math.max(1, Math.ceil(Math.log2(m))));
        expect(positions(l)).toEqual(want.kept.flat());
        const wantValues = want.kept.flatMap((keep, g) => {
          const i = Math.floor(g / (t.shape[1]! / m));
          const c0 = (g % (t.shape[1]! / m)) * m;
          return keep.map((q) => get(t, i, c0 + q));
        });
        expect(sameRaw(l.values, wantValues)).toBe(true);
        validateNM(l);
        const back = fromNM(l);
        expect(back.shape).toEqual(t.shape);
        expect(sameRaw(back.data, want.dense)).toBe(true);
        expect(nmByteLength(l)).toBe(l.values.length * bytesPerElement(t.dtype) + Math.ceil((l.values.length * l.indexBits) / 8));
      }),
    );
  });

  it('ranks NaN above Infinity (the rule of selectNM), in float32 and float16', () => {
    const f32 = toNM(tensor(Float32Array.from([Infinity, NaN, -Infinity, 1, 2, 2, 2, 2]), [1, 8]), { n: 1, m: 4 });
    expect(positions(f32)).toEqual([1, 0]);
    const f16 = toNM(tensor(encodeFloat16([1, -Infinity, NaN, 0]), [1, 4], { dtype: 'float16' }), { n: 2, m: 4 });
    expect(positions(f16)).toEqual([1, 2]);
  });

  it('is lossless when every group has at most n non-zeros', () => {
    fc.assert(
      fc.property(nmMatrixArb, ({ t, n, m }) => {
        // zero out all but the first n non-zeros of each group
        const d = copy(t);
        for (let g = 0; g < d.data.length / m; g++) {
          let seen = 0;
          for (let q = 0; q < m; q++) {
            if (isZero(d.dtype, d.data[g * m + q]!)) continue;
            if (++seen > n) d.data[g * m + q] = 0;
          }
        }
        const back = fromNM(toNM(d, { n, m }));
        // exact, including -0 in kept slots; only dropped (zero) slots may turn -0 into +0
        for (let k = 0; k < d.data.length; k++) {
          const a = back.data[k]!;
          const b = d.data[k]!;
          if (!Object.is(a, b) && !(isZero(d.dtype, a) && isZero(d.dtype, b))) return false;
        }
        return true;
      }),
    );
  });

  it('gives the same layout for strided views as for their contiguous copy', () => {
    const arb = fc
      .tuple(fc.constantFrom(...NM_PAIRS), dtypeArb, fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 }), sparsityArb)
      .chain(([[n, m], dtype, r, g, sp]) => stridedArb(dtype, [r, g * m], sp).map((v) => ({ v, n, m })));
    fc.assert(
      fc.property(arb, ({ v, n, m }) => {
        const a = toNM(v, { n, m });
        const b = toNM(copy(v), { n, m });
        expect([...a.indices]).toEqual([...b.indices]);
        expect(sameRaw(a.values, b.values)).toBe(true);
      }),
    );
  });

  it('follows an explicit keep-mask, filling short groups with zero slots at the lowest free positions', () => {
    fc.assert(
      fc.property(
        nmMatrixArb.chain(({ t, n, m }) =>
          fc
            .array(fc.shuffledSubarray([...Array(m).keys()], { minLength: 0, maxLength: n }), {
              minLength: t.data.length / m,
              maxLength: t.data.length / m,
            })
            .map((keeps) => ({ t, n, m, keeps })),
        ),
        fc.constantFrom<DType>('bool', 'float32', 'float16'),
        ({ t, n, m, keeps }, maskDtype) => {
          const mask = zeros(t.shape, maskDtype);
          keeps.forEach((keep, g) => keep.forEach((q) => (mask.data[g * m + q] = maskDtype === 'float16' ? 0x3c00 : 1)));
          const l = toNM(t, { n, m, mask });
          const wantPos: number[] = [];
          const wantVal: number[] = [];
          keeps.forEach((keep, g) => {
            const chosen = new Set(keep);
            for (let q = 0; q < m && chosen.size < n; q++) chosen.add(q);
            for (const q of [...chosen].sort((a, b) => a - b)) {
              wantPos.push(q);
              wantVal.push(keep.includes(q) ? t.data[g * m + q]! : 0);
            }
          });
          expect(positions(l)).toEqual(wantPos);
          expect(sameRaw(l.values, wantVal)).toBe(true);
        },
      ),
    );
  });

  it('2:4 float16 costs exactly 56.25% of the dense bytes', () => {
    for (const [rows, cols] of [[4, 8], [8, 16], [64, 128], [3, 32]]) {
      const dense = tensor(encodeFloat16(Array.from({ length: rows * cols }, (_, k) => (k % 3) - 1.5)), [rows, cols], { dtype: 'float16' });
      const l = toNM(dense, { n: 2, m: 4 });
      expect(l.indexBits).toBe(2);
      expect(nmByteLength(l) / (rows * cols * 2)).toBe(0.5625);
    }
  });

  it('rejects bad arguments', () => {
    const t = tensor(new Float32Array(8), [2, 4]);
    expect(() => toNM(t, { n: 4, m: 4 })).toThrow(ArgumentError);
    expect(() => toNM(t, { n: 0, m: 4 })).toThrow(ArgumentError);
    expect(() => toNM(t, { n: 1.5, m: 4 })).toThrow(ArgumentError);
    expect(() => toNM(t, { n: 2, m: 3 })).toThrow(ShapeError);
    expect(() => toNM(t, { n: 1, m: 2, mask: zeros([4, 2]) })).toThrow(ShapeError);
    const tooMany = tensor(Float32Array.from([1, 1, 1, 0, 0, 0, 0, 0]), [2, 4]);
    expect(() => toNM(t, { n: 2, m: 4, mask: tooMany })).toThrow(/row 0, group 0/);
    const l = toNM(t, { n: 2, m: 4 });
    expect(() => nmGroupIndex(l, 4)).toThrow(ArgumentError);
    expect(() => nmGroupIndex(l, -1)).toThrow(ArgumentError);
  });
});

describe('validateNM', () => {
  // 1x6, 2:3 (indexBits 2): groups [a, 0, b] -> positions 0, 2 and [0, c, d] -> 1, 2
  const good = (): NMLayout<'int32'> => {
    const indices = new Uint8Array(1);
    [0, 2, 1, 2].forEach((q, k) => (indices[0]! |= q << (2 * k)));
    return { format: 'nm', shape: [1, 6], n: 2, m: 3, dtype: 'int32', indexBits: 2, values: Int32Array.from([1, 2, 3, 4]), indices };
  };
  const setPos = (l: NMLayout, k: number, q: number) => {
    l.indices[0] = (l.indices[0]! & ~(3 << (2 * k))) | (q << (2 * k));
  };
  const corruptions: Array<[string, (l: NMLayout<'int32'>) => void, RegExp]> = [
    ['position >= m', (l) => setPos(l, 1, 3), /indices entry 1 = 3 is not below m = 3 \(row 0, group at column 0\)/],
    ['repeated position', (l) => setPos(l, 3, 1), /indices entry 3 repeats position 1 .*column 3/],
    ['n >= m', (l) => (l.n = 3), /need integers 1 <= n < m/],
    ['n = 0', (l) => (l.n = 0), /need integers 1 <= n < m/],
    ['cols not a multiple of m', (l) => (l.shape = [1, 7]), /shape\[1\] = 7 is not a multiple of m = 3/],
    ['wrong indexBits', (l) => (l.indexBits = 4), /indexBits must be 2/],
    ['values length', (l) => (l.values = l.values.subarray(0, 3)), /values has 3 entries, expected .* = 4/],
    ['indices length', (l) => (l.indices = new Uint8Array(2)), /indices has 2 bytes, expected 1/],
    ['indices type', (l) => ((l as unknown as { indices: Int8Array }).indices = new Int8Array(1)), /indices must be a Uint8Array/],
  ];
  it('accepts the valid layout', () => {
    expect(toArray(fromNM(good()))).toEqual([1, 0, 2, 0, 3, 4]);
  });
  it.each(corruptions)('rejects %s', (_, corrupt, message) => {
    const l = good();
    corrupt(l);
    expect(thrown(() => validateNM(l))).toMatchObject({ code: 'LAYOUT', message: expect.stringMatching(message) });
    expect(() => fromNM(l)).toThrow(LayoutError);
  });
  it('rejects set padding bits', () => {
    // 1x4, 1:4: one position of 2 bits in a byte -> 6 padding bits
    const l: NMLayout<'float32'> = { format: 'nm', shape: [1, 4], n: 1, m: 4, dtype: 'float32', indexBits: 2, values: Float32Array.from([1]), indices: Uint8Array.from([0b100]) };
    expect(thrown(() => validateNM(l))?.message).toMatch(/indices\[0\] has bits set past the last position/);
  });
});
