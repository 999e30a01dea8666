import { applyMask, isKept } from '@sparse/masks';
import { ArgumentError, parseSafetensors, Random, randomTensor, serializeSafetensors, spmm, tensor, toArray, transpose, type NMLayout } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compressNM, decompressNM, nmCompressionReport } from './compress.js';
import { nmMask } from './mask.js';

const shapes = fc.constantFrom([1, 4], [2, 4], [3, 4], [2, 8], [4, 8], [1, 2]);

describe('compressNM / decompressNM', () => {
  it('round-trips the masked weight exactly, with or without an explicit mask (fast-check)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), shapes, fc.integer({ min: 1, max: 5 }), fc.boolean(), (seed, [n, m], rows, transposed) => {
        const rng = new Random(seed);
        const cols = m! * 3;
        const base = randomTensor(transposed ? [cols, rows] : [rows, cols], rng, { dist: 'normal' });
        const w = transposed ? transpose(base) : base;
        const mask = nmMask(w, { n: n!, m: m! });
        const masked = toArray(applyMask(mask, w));
        expect(toArray(decompressNM(compressNM(w, { n: n!, m: m!, mask })))).toEqual(masked);
        expect(toArray(decompressNM(compressNM(w, { n: n!, m: m! })))).toEqual(masked);
        // A weight that is already N:M survives compression unchanged.
        const already = tensor(Float32Array.from(masked), [rows, cols]);
        expect(toArray(decompressNM(compressNM(already, { n: n!, m: m! })))).toEqual(masked);
      }),
      { numRuns: 80 },
    );
  });

  it('rejects a mask that keeps more than n in a group', () => {
    const w = randomTensor([2, 8], new Random(2), { dist: 'normal' });
    expect(() => compressNM(w, { n: 1, m: 4, mask: nmMask(w, { n: 2, m: 4 }) })).toThrow(/row 0, group at column 0/);
    expect(() => compressNM(w, { n: 4, m: 4 })).toThrow(ArgumentError);
  });
});

describe('spmm on the compressed layout', () => {
  it('equals the dense masked matmul computed by plain loops', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), shapes, (seed, [n, m]) => {
        const rng = new Random(seed);
        const [rows, inner, out] = [5, m! * 4, 3];
        const w = randomTensor([rows, inner], rng, { dist: 'normal' });
        const x = randomTensor([inner, out], rng, { dist: 'normal' });
        const mask = nmMask(w, { n: n!, m: m! });
        const y = spmm(compressNM(w, { n: n!, m: m!, mask }), x);
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < out; j++) {
            let s = 0;
            for (let k = 0; k < inner; k++) if (isKept(mask, i * inner + k)) s += w.data[i * inner + k]! * x.data[k * out + j]!;
            expect(y.data[i * out + j]).toBeCloseTo(s, 4);
          }
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe('safetensors', () => {
  it('stores the compressed layout, reads it back equal, and is smaller than dense', () => {
    const w = randomTensor([64, 128], new Random(5), { dist: 'normal' });
    const layout = compressNM(w, { n: 2, m: 4 });
    const file = parseSafetensors(serializeSafetensors({ w: layout }));
    const back = file.readLayout('w') as NMLayout<'float32'>;
    expect(back).toEqual(layout);
    expect(toArray(decompressNM(back))).toEqual(toArray(decompressNM(layout)));
    expect(serializeSafetensors({ w: layout }).length).toBeLessThan(serializeSafetensors({ w }).length * 0.6);
  });
});

describe('nmCompressionReport', () => {
  it('2:4 float16 is 56.25% of dense, from parameters and from a real layout', () => {
    const spec = nmCompressionReport({ shape: [64, 128], n: 2, m: 4, dtype: 'float16' });
    expect(spec.ratio).toBe(0.5625);
    expect(spec.denseBytes).toBe(64 * 128 * 2);
    const w = randomTensor([64, 128], new Random(1), { dtype: 'float16' });
    const layout = compressNM(w, { n: 2, m: 4 });
    expect(nmCompressionReport(layout)).toEqual(spec);
    // Independent arithmetic: 4:8 float32 = 50% values + 4 kept * 3 bits / (8 entries * 32 bits).
    expect(nmCompressionReport({ shape: [8, 64], n: 4, m: 8, dtype: 'float32' }).ratio).toBeCloseTo(0.5 + (4 * 3) / (8 * 32), 12);
  });
});
