import { ArgumentError, DTypeError, Random, ShapeError, tensor, transpose, type Float32Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SparseAdam } from './adam.js';
import {
  composeSparseDeltas,
  gatherAtSupport,
  mergeSparseDelta,
  sparseDelta,
  sparseDeltaByteLength,
  sparseDeltaFromDense,
  sparseDeltaToDense,
  sparseDeltaTrainableCount,
  unmergeSparseDelta,
  validateSparseDelta,
  type SparseDelta,
} from './delta.js';

/** A random delta on a random subset of a [o, i] weight. */
function randomDelta(rng: Random, o: number, i: number, count: number): SparseDelta {
  const idx = rng.sample(count, o * i);
  return sparseDelta([o, i], idx, Array.from(idx, () => rng.normal()));
}

function randomWeight(rng: Random, o: number, i: number): Float32Tensor {
  return tensor(rng.fillNormal(new Float32Array(o * i)), [o, i]);
}

describe('sparseDelta', () => {
  it('sorts indices with their values and keeps typed arrays', () => {
    const d = sparseDelta([2, 3], [5, 0, 3], [1, 2, 3]);
    expect([...d.indices]).toEqual([0, 3, 5]);
    expect([...d.values]).toEqual([2, 3, 1]);
    expect(d.indices).toBeInstanceOf(Int32Array);
    expect(d.values).toBeInstanceOf(Float32Array);
    expect([...sparseDelta([2, 3], [4]).values]).toEqual([0]);
  });

  it('refuses duplicates, out-of-range indices, bad shapes and mismatched lengths with typed errors', () => {
    expect(() => sparseDelta([2, 3], [1, 1])).toThrow(/strictly increasing/);
    expect(() => sparseDelta([2, 3], [6])).toThrow(ArgumentError);
    expect(() => sparseDelta([2, 3], [-1])).toThrow(/outside \[0, 6\)/);
    expect(() => sparseDelta([2, 3], [1.5])).toThrow(/not an integer/);
    expect(() => sparseDelta([2, 3], [1, 2], [1])).toThrow(ShapeError);
    expect(() => sparseDelta([2, 3, 1], [1])).toThrow(/\[out, in\]/);
    expect(() => validateSparseDelta({ shape: [2, 3], indices: new Uint32Array(1) as unknown as Int32Array, values: new Float32Array(1) })).toThrow(DTypeError);
  });

  it('round-trips through a dense matrix', () => {
    const d = randomDelta(new Random(1), 7, 5, 9);
    const back = sparseDeltaFromDense(sparseDeltaToDense(d));
    expect(back.indices).toEqual(d.indices);
    expect(back.values).toEqual(d.values);
    expect(sparseDeltaTrainableCount(d)).toBe(9);
    expect(sparseDeltaByteLength(d)).toBe(9 * 8);
  });

  it('gathers a dense gradient at the support', () => {
    expect([...gatherAtSupport([10, 11, 12, 13], Int32Array.of(1, 3))]).toEqual([11, 13]);
  });
});

describe('merge / unmerge', () => {
  it('merge equals W + dense(Δ) exactly, and unmerge restores W (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer(), (o, i, frac, seed) => {
        const rng = new Random(seed);
        const w = randomWeight(rng, o, i);
        const d = randomDelta(rng, o, i, Math.floor(frac * o * i));
        const dense = sparseDeltaToDense(d).data;
        const merged = mergeSparseDelta(w, d);
        const expected = w.data.map((x, k) => x + dense[k]!);
        expect(merged.data).toEqual(expected);
        expect(merged.data).not.toBe(w.data); // a new tensor by default
        const back = unmergeSparseDelta(merged, d);
        for (let k = 0; k < w.data.length; k++) expect(back.data[k]).toBeCloseTo(w.data[k]!, 5);
        // entries off the support are untouched bit for bit
        for (let k = 0; k < w.data.length; k++) if (dense[k] === 0) expect(Object.is(merged.data[k], w.data[k])).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('merges in place into a strided (transposed) view', () => {
    const rng = new Random(2);
    const base = randomWeight(rng, 4, 6); // viewed as its transpose [6, 4]
    const view = transpose(base);
    const d = randomDelta(rng, 6, 4, 10);
    const before = Float32Array.from(base.data);
    const out = mergeSparseDelta(view, d, { inPlace: true });
    expect(out).toBe(view);
    const dense = sparseDeltaToDense(d).data;
    for (let r = 0; r < 6; r++) for (let c = 0; c < 4; c++) expect(base.data[c * 6 + r]).toBe(Math.fround(before[c * 6 + r]! + dense[r * 4 + c]!));
  });

  it('refuses a delta for another shape', () => {
    const w = randomWeight(new Random(3), 3, 4);
    expect(() => mergeSparseDelta(w, sparseDelta([4, 3], [0]))).toThrow(/\[3, 4\] but the delta is for \[4, 3\]/);
  });
});

describe('composeSparseDeltas (Composable SFT)', () => {
  it('equals the sum of the dense deltas, conflicts summed, support the union (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (o, i, tasks, seed) => {
        const rng = new Random(seed);
        const deltas = Array.from({ length: tasks }, () => randomDelta(rng, o, i, rng.int(0, o * i + 1)));
        const scales = deltas.map(() => rng.uniform(-2, 2));
        const c = composeSparseDeltas(deltas, scales);
        validateSparseDelta(c);
        const sum = new Float64Array(o * i);
        const union = new Set<number>();
        deltas.forEach((d, t) => {
          const dense = sparseDeltaToDense(d).data;
          dense.forEach((x, k) => (sum[k] = sum[k]! + scales[t]! * x));
          d.indices.forEach((k) => union.add(k));
        });
        expect([...c.indices]).toEqual([...union].sort((a, b) => a - b));
        const cd = sparseDeltaToDense(c).data;
        for (let k = 0; k < o * i; k++) expect(cd[k]).toBeCloseTo(sum[k]!, 5);
      }),
      { numRuns: 60 },
    );
  });

  it('merging the composition equals merging each task in turn', () => {
    const rng = new Random(4);
    const w = randomWeight(rng, 8, 8);
    const a = randomDelta(rng, 8, 8, 20);
    const b = randomDelta(rng, 8, 8, 20);
    const seq = mergeSparseDelta(mergeSparseDelta(w, a), b);
    const once = mergeSparseDelta(w, composeSparseDeltas([a, b]));
    for (let k = 0; k < 64; k++) expect(once.data[k]).toBeCloseTo(seq.data[k]!, 6);
  });

  it('refuses mixed shapes and empty lists', () => {
    expect(() => composeSparseDeltas([])).toThrow(ArgumentError);
    expect(() => composeSparseDeltas([sparseDelta([2, 2], [0]), sparseDelta([4, 1], [0])])).toThrow(/deltas\[1\] is for \[4, 1\]/);
    expect(() => composeSparseDeltas([sparseDelta([2, 2], [0])], [1, 2])).toThrow(/2 scales for 1 deltas/);
  });
});

describe('memory', () => {
  it('a 1% delta on 4096 x 4096 with Adam takes ~1% of the dense delta + moments, plus its indices', () => {
    const [o, i] = [4096, 4096];
    const size = o * i;
    const nnz = Math.round(0.01 * size);
    const delta = sparseDelta([o, i], new Random(5).sample(nnz, size));
    const adam = new SparseAdam(nnz);
    // The dense alternative: a float32 delta and its two Adam moments.
    const dense = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
    const denseBytes = dense.reduce((s, a) => s + a.byteLength, 0);
    const valueBytes = delta.values.byteLength + adam.byteLength;
    const sparseBytes = valueBytes + delta.indices.byteLength;
    expect(valueBytes / denseBytes).toBeCloseTo(0.01, 4);
    expect(sparseBytes).toBe(valueBytes + 4 * nnz);
    // values + 2 moments + int32 indices = 16 bytes per entry vs 12 per dense entry: 1.33% in all.
    expect(sparseBytes / denseBytes).toBeCloseTo((0.01 * 16) / 12, 4);
  });
});
