import { ArgumentError, LayoutError, ShapeError, fromArray, toNM, type NMLayout } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compressDense24,
  decompressTensorCore24,
  getNibble,
  nmToTensorCore24,
  tensorCore24ToNM,
  validateTensorCore24,
  type TensorCore24,
} from './tensor-core-24.js';

/** A random dense [rows, cols] matrix with at most two non-zeros per group of 4 columns (cols % 4 may be non-zero). */
const sparse24 = fc
  .record({ rows: fc.integer({ min: 0, max: 40 }), cols: fc.integer({ min: 0, max: 80 }), seed: fc.integer({ min: 1, max: 2 ** 30 }) })
  .map(({ rows, cols, seed }) => {
    let s = seed;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const dense = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c0 = 0; c0 < cols; c0 += 4) {
        const positions = [0, 1, 2, 3].filter((p) => c0 + p < cols).sort(() => rnd() - 0.5);
        const count = Math.floor(rnd() * 3); // 0, 1 or 2 non-zeros
        for (const p of positions.slice(0, count)) dense[r * cols + c0 + p] = Math.round((rnd() - 0.5) * 64) || 1;
      }
    }
    return { rows, cols, dense };
  });

describe('tensor-core 2:4 metadata: a hand-worked example', () => {
  // Written from the PTX ISA's description, not from the code: for m16n8k32 .f16/.bf16 with sparsity
  // selector 0, lane 4g + t supplies a word whose bits 15..0 hold chunks 4t..4t+3 of tile row g and
  // bits 31..16 the same chunks of row g + 8; a chunk's nibble is (first position) | (second << 2).
  // We store the 16 words of a (16-row, 32-column) tile contiguously, word g*2+t, tiles row-major.
  const rows = 16;
  const cols = 64;
  const dense = new Float32Array(rows * cols);
  const put = (r: number, c: number, a: number, b: number) => {
    dense[r * cols + c * 4 + a] = 10 * r + c + 1;
    dense[r * cols + c * 4 + b] = -(10 * r + c + 1);
  };
  // Row 0, chunks 0..7: {0,1} {1,3} {0,2} {2,3} {0,3} {1,2} {0,1} {2,3}
  //   nibbles 0x4 0xD 0x8 0xE 0xC 0x9 0x4 0xE.
  const row0: Array<[number, number]> = [[0, 1], [1, 3], [0, 2], [2, 3], [0, 3], [1, 2], [0, 1], [2, 3]];
  row0.forEach(([a, b], c) => put(0, c, a, b));
  // Row 8, chunks 0..3: {2,3} {0,2} {1,3} {0,1} -> 0xE 0x8 0xD 0x4; chunks 4..7 all zero -> {0,1}.
  const row8: Array<[number, number]> = [[2, 3], [0, 2], [1, 3], [0, 1]];
  row8.forEach(([a, b], c) => put(8, c, a, b));
  // Row 3, chunk 0: a single non-zero at position 2 -> kept {0, 2} (lowest zero position fills) -> 0x8.
  dense[3 * cols + 2] = 7;
  // Row 15 (g = 7, upper half), chunk 9 (second column tile, lane t = 0, nibble 1): {0,3} -> 0xC.
  put(15, 9, 0, 3);

  const expected = new Map<number, number>([
    // word 0 (lane 0): row 0 chunks 0..3 = 0xE8D4 low, row 8 chunks 0..3 = 0x4D8E high.
    [0, 0x4d8ee8d4],
    // word 1 (lane 1): row 0 chunks 4..7 = 0xE49C low, row 8 chunks 4..7 = 0x4444 high.
    [1, 0x4444e49c],
    // word 6 (lane 12, g = 3, t = 0): row 3 chunks 0..3 = 0x4448 low, row 11 = 0x4444 high.
    [6, 0x44444448],
    // word 16 + 14 (tile kt = 1, lane 28, g = 7, t = 0): row 7 chunks 8..11 = 0x4444 low,
    // row 15 chunks 8..11 = 0x44C4 high.
    [30, 0x44c44444],
  ]);

  it('compressDense24 writes the words worked out by hand', () => {
    const tc = compressDense24(dense, rows, cols);
    expect(tc.meta.length).toBe(32);
    for (let w = 0; w < 32; w++) expect(tc.meta[w]!.toString(16), `word ${w}`).toBe((expected.get(w) ?? 0x44444444).toString(16));
    // Values: row 0 stores (1, -1) for chunk 0, (2, -2) for chunk 1, ...; row 3 stores (0, 7) for chunk 0.
    expect(Array.from(tc.values.subarray(0, 4))).toEqual([1, -1, 2, -2]);
    expect(Array.from(tc.values.subarray(3 * 32, 3 * 32 + 2))).toEqual([0, 7]);
  });

  it('nmToTensorCore24 of the same matrix gives the same words', () => {
    const tc = nmToTensorCore24(toNM(fromArray(dense, [rows, cols]), { n: 2, m: 4 }));
    for (let w = 0; w < 32; w++) expect(tc.meta[w]!.toString(16), `word ${w}`).toBe((expected.get(w) ?? 0x44444444).toString(16));
  });
});

describe('tensor-core 2:4 layout: properties', () => {
  it('compressDense24 then decompressTensorCore24 gives the matrix back, for any shape (tails included)', () => {
    fc.assert(
      fc.property(sparse24, ({ rows, cols, dense }) => {
        const tc = compressDense24(dense, rows, cols);
        validateTensorCore24(tc);
        expect(tc.paddedCols % 32).toBe(0);
        expect(tc.meta.length).toBe(Math.ceil(rows / 16) * (tc.paddedCols / 32) * 16);
        expect(Array.from(decompressTensorCore24(tc))).toEqual(Array.from(dense));
      }),
      { numRuns: 150 },
    );
  });

  it('NM (2:4) -> tensor-core -> NM is the identity, and matches compressDense24', () => {
    fc.assert(
      fc.property(sparse24, ({ rows, cols: c, dense: d }) => {
        const cols = c - (c % 4);
        const dense = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) dense.set(d.subarray(r * c, r * c + cols), r * cols);
        const nm = toNM(fromArray(dense, [rows, cols]), { n: 2, m: 4 }) as NMLayout<'float32'>;
        const tc = nmToTensorCore24(nm);
        const direct = compressDense24(dense, rows, cols);
        expect(Array.from(tc.meta)).toEqual(Array.from(direct.meta));
        expect(Array.from(tc.values)).toEqual(Array.from(direct.values));
        const back = tensorCore24ToNM(tc);
        expect(back.shape).toEqual([rows, cols]);
        expect(Array.from(back.values as Float32Array)).toEqual(Array.from(nm.values));
        expect(Array.from(back.indices)).toEqual(Array.from(nm.indices));
      }),
      { numRuns: 150 },
    );
  });

  it('every (row, chunk) nibble sits in the word of lane 4*(row%8) + (chunk%8 >= 4) of its tile, in the half of row%16 >= 8', () => {
    fc.assert(
      fc.property(sparse24, ({ rows, cols, dense }) => {
        const tc = compressDense24(dense, rows, cols);
        const tilesK = tc.paddedCols / 32;
        for (let r = 0; r < rows; r++) {
          for (let ch = 0; ch < tc.paddedCols / 4; ch++) {
            const lane = 4 * (r % 8) + ((ch % 8) >> 2);
            const word = tc.meta[(Math.floor(r / 16) * tilesK + Math.floor(ch / 8)) * 16 + (lane >> 2) * 2 + (lane & 3)]!;
            const nib = (word >>> ((r % 16 >= 8 ? 16 : 0) + (ch % 4) * 4)) & 0xf;
            expect(nib).toBe(getNibble(tc, r, ch));
            // The nibble's positions are where the row's kept values sit.
            const a = nib & 3;
            const b = nib >> 2;
            expect(a).toBeLessThan(b);
            for (let p = 0; p < 4; p++) {
              const j = ch * 4 + p;
              if (j < cols && dense[r * cols + j] !== 0) expect([a, b]).toContain(p);
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('fp16/bf16 bit values travel unchanged', () => {
    const nm: NMLayout = {
      format: 'nm',
      shape: [1, 8],
      n: 2,
      m: 4,
      dtype: 'bfloat16',
      indexBits: 2,
      values: Uint16Array.from([0x3f80, 0x4000, 0xbf80, 0x4040]),
      // positions (1,3) and (0,2): 0b11_01, 0b10_00 -> byte 0b1000_1101
      indices: Uint8Array.from([0b10001101]),
    } as NMLayout;
    const tc = nmToTensorCore24(nm);
    expect(tc.values).toBeInstanceOf(Uint16Array);
    expect(Array.from(tc.values.subarray(0, 4))).toEqual([0x3f80, 0x4000, 0xbf80, 0x4040]);
    expect(getNibble(tc, 0, 0)).toBe(0b1101);
    expect(getNibble(tc, 0, 1)).toBe(0b1000);
    const back = tensorCore24ToNM(tc);
    expect(Array.from(back.indices)).toEqual([0b10001101]);
  });
});

describe('tensor-core 2:4 layout: bad input', () => {
  it('names the field or the group', () => {
    const three = new Float32Array([1, 2, 3, 0]);
    expect(() => compressDense24(three, 1, 4)).toThrow(ArgumentError);
    expect(() => compressDense24(three, 1, 4)).toThrow(/row 0, columns 0..3 hold 3 non-zeros/);
    expect(() => compressDense24(new Float32Array(3), 1, 4)).toThrow(ShapeError);
    const nm = toNM(fromArray(new Float32Array(8), [1, 8]), { n: 1, m: 4 });
    expect(() => nmToTensorCore24(nm)).toThrow(/only 2:4 layouts/);
    const tc = compressDense24(new Float32Array(4), 1, 4);
    const bad: TensorCore24 = { ...tc, meta: Uint32Array.from(tc.meta) };
    bad.meta[0] = 0x44444440; // chunk 0 positions (0, 0)
    expect(() => validateTensorCore24(bad)).toThrow(LayoutError);
    expect(() => validateTensorCore24(bad)).toThrow(/row 0, chunk 0/);
    expect(() => tensorCore24ToNM({ ...tc, meta: new Uint32Array(3) })).toThrow(/meta has 3 words, expected 16/);
  });
});
