import { count, equals, isKept, keepCount, maskBySparsity } from '@sparse/masks';
import { ArgumentError, cast, Random, ShapeError, slice, tensor, transpose, type Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnNormsOf, correlatedInputs, hessianOf, isNM, normalMatrix } from '../../__fixtures__/layers.js';
import { magnitudePrune } from '../magnitude/magnitude.js';
import { wandaPrune, wandaScores } from './wanda.js';

/** Sort-based reference: in each row keep the k highest |W_ij| * norm_j (ties: lower column first). */
function bruteForceRows(w: Float32Array, rows: number, cols: number, norms: ArrayLike<number>, k: number): boolean[] {
  const keep = new Array<boolean>(rows * cols).fill(false);
  for (let r = 0; r < rows; r++) {
    const idx = [...Array(cols).keys()].map((j) => ({ j, s: Math.abs(w[r * cols + j]!) * norms[j]! }));
    idx.sort((a, b) => b.s - a.s || a.j - b.j);
    for (const { j } of idx.slice(0, k)) keep[r * cols + j] = true;
  }
  return keep;
}

describe('wanda', () => {
  it('keeps the k highest |W| * ||X_j|| of every row (sort-based brute force)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 0.95, noNaN: true }), (seed, s) => {
        const rng = new Random(seed);
        const x = correlatedInputs(rng, 40, 12);
        const w = normalMatrix(rng, 5, 12);
        const norms = columnNormsOf(x);
        const r = wandaPrune({ name: 'l', weight: w, stats: { columnNorms: norms }, config: { sparsity: s } });
        const ref = bruteForceRows(w.data, 5, 12, norms.data, keepCount(12, s));
        ref.forEach((kept, k) => expect(isKept(r.mask, k)).toBe(kept));
        expect(count(r.mask)).toBe(5 * keepCount(12, s));
        r.weight.data.forEach((v, k) => expect(v).toBe(ref[k] ? w.data[k] : 0));
      }),
      { numRuns: 50 },
    );
  });

  it('per-row unstructured selection (rowTopKScaledAbs) keeps what maskBySparsity of the score matrix keeps, for any weight layout', () => {
    const rng = new Random(11);
    const rows = 9;
    const cols = 45;
    // Weights on a coarse grid and norms with repeats: many tied scores, including zeros.
    const grid = tensor(Float32Array.from({ length: rows * (cols + 5) }, () => Math.round(rng.next() * 8 - 4) / 2), [rows, cols + 5]);
    const normValues = Float64Array.from({ length: cols }, (_, j) => (j % 6 === 0 ? 0 : 1 + (j % 3)));
    const norms = tensor(normValues, [cols]);
    const layouts: Array<[string, Tensor]> = [
      ['contiguous float32', cast(slice(grid, null, { start: 0, end: cols }), 'float32')],
      ['rows at a stride of cols + 5', slice(grid, null, { start: 0, end: cols })],
      ['an offset view', slice(grid, null, { start: 5, end: cols + 5 })],
      ['transposed storage', transpose(cast(transpose(slice(grid, null, { start: 0, end: cols })), 'float32'))],
      ['float64', cast(slice(grid, null, { start: 0, end: cols }), 'float64')],
    ];
    for (const [label, weight] of layouts) {
      const dense = cast(weight, 'float32').data;
      const before = Float32Array.from(weight.data as ArrayLike<number>);
      for (const sparsity of [0, 0.25, 0.5, 0.9]) {
        const r = wandaPrune({ name: 'l', weight, stats: { columnNorms: norms }, config: { sparsity } });
        const expected = maskBySparsity(tensor(wandaScores(dense, rows, cols, normValues), [rows, cols]), sparsity, 'row');
        expect(equals(r.mask, expected), `${label}, sparsity ${sparsity}`).toBe(true);
        r.weight.data.forEach((v, k) => expect(v).toBe(isKept(expected, k) ? dense[k] : 0));
        expect(r.weight.shape).toEqual([rows, cols]);
      }
      // The caller's weight is read, never written.
      expect(Float32Array.from(weight.data as ArrayLike<number>)).toEqual(before);
    }
  });

  it('prunes empty layers to empty results', () => {
    for (const [rows, cols] of [[0, 6], [3, 0]] as const) {
      const r = wandaPrune({ name: 'l', weight: tensor(new Float32Array(0), [rows, cols]), stats: { columnNorms: tensor(new Float64Array(cols).fill(1), [cols]) }, config: { sparsity: 0.5 } });
      expect(r.mask.shape).toEqual([rows, cols]);
      expect(r.mask.bits.length).toBe(0);
      expect(r.weight.shape).toEqual([rows, cols]);
    }
  });

  it('names the first non-finite weight of a strided or copied layer', () => {
    const rng = new Random(12);
    const wide = normalMatrix(rng, 4, 10);
    wide.data[2 * 10 + 3] = Infinity;
    wide.data[3 * 10 + 1] = NaN;
    const norms = tensor(new Float64Array(6).fill(1), [6]);
    const call = (weight: Tensor) => () => wandaPrune({ name: 'blk.0', weight, stats: { columnNorms: norms }, config: { sparsity: 0.5 } });
    expect(call(slice(wide, null, { start: 2, end: 8 }))).toThrow(/blk\.0.*weight\[2, 1\] is Infinity; weights must be finite/);
    expect(call(cast(slice(wide, null, { start: 2, end: 8 }), 'float64'))).toThrow(/weight\[2, 1\] is Infinity/);
  });

  it('equals magnitude pruning when every input column has the same norm', () => {
    const rng = new Random(3);
    const x = correlatedInputs(rng, 64, 16);
    // Rescale every column of X to norm 3.
    const norms = columnNormsOf(x).data;
    const xe = tensor(x.data.map((v, k) => (3 * v) / norms[k % 16]!), [64, 16]);
    const w = normalMatrix(rng, 8, 16);
    const stats = { columnNorms: columnNormsOf(xe) };
    for (const config of [{ sparsity: 0.5 }, { sparsity: 0.3 }, { n: 2, m: 4 }, { n: 1, m: 4 }]) {
      const a = wandaPrune({ name: 'l', weight: w, stats, config });
      const b = magnitudePrune({ name: 'l', weight: w, config: { ...config, granularity: 'row' } });
      expect(equals(a.mask, b.mask)).toBe(true);
    }
    // Compared across the whole layer, it equals magnitude's per-layer ranking too.
    const t = wandaPrune({ name: 'l', weight: w, stats, config: { sparsity: 0.5, granularity: 'tensor' } });
    expect(equals(t.mask, magnitudePrune({ name: 'l', weight: w, config: { sparsity: 0.5 } }).mask)).toBe(true);
  });

  it('gives exact N:M masks and ranks by the Hessian diagonal as by the norms', () => {
    const rng = new Random(4);
    const x = correlatedInputs(rng, 50, 16);
    const w = normalMatrix(rng, 6, 16);
    for (const [n, m] of [[2, 4], [4, 8], [1, 4], [2, 8]] as const) {
      const byNorm = wandaPrune({ name: 'l', weight: w, stats: { columnNorms: columnNormsOf(x) }, config: { n, m } });
      const byHessian = wandaPrune({ name: 'l', weight: w, stats: { hessian: hessianOf(x) }, config: { n, m } });
      expect(isNM(byNorm.mask, n, m)).toBe(true);
      expect(equals(byNorm.mask, byHessian.mask)).toBe(true);
    }
  });

  it('rejects bad input with typed errors naming the layer', () => {
    const rng = new Random(5);
    const w = normalMatrix(rng, 4, 8);
    const norms = columnNormsOf(correlatedInputs(rng, 20, 8));
    const call = (config: unknown, stats: object = { columnNorms: norms }, weight: Tensor = w) => () =>
      wandaPrune({ name: 'model.layers.3.mlp', weight, stats, config: config as never });
    expect(call({ sparsity: 1 })).toThrow(ArgumentError);
    expect(call({ sparsity: 1 })).toThrow(/model\.layers\.3\.mlp.*sparsity/);
    expect(call({ sparsity: -0.1 })).toThrow(/sparsity/);
    expect(call({ n: 4, m: 4 })).toThrow(/model\.layers\.3\.mlp.*N < M/);
    expect(call({ n: 3, m: 2 })).toThrow(ArgumentError);
    expect(call({ n: 2 })).toThrow(/needs both n and m/);
    expect(call({ n: 2, m: 4, sparsity: 0.5 })).toThrow(/either sparsity or n and m/);
    expect(call({ sparsity: 0.5, blocksize: 3 })).toThrow(/Unrecognized key/);
    expect(call({ n: 2, m: 3 })).toThrow(ShapeError);
    expect(call({}, {})).toThrow(/model\.layers\.3\.mlp.*columnNorms/);
    expect(call({}, { columnNorms: tensor(new Float64Array(7), [7]) })).toThrow(ShapeError);
    expect(call({}, { columnNorms: tensor(new Float64Array(7), [7]) })).toThrow(/model\.layers\.3\.mlp/);
    const nanNorms = tensor(Float64Array.from(norms.data, (v, j) => (j === 2 ? NaN : v)), [8]);
    expect(call({}, { columnNorms: nanNorms })).toThrow(/model\.layers\.3\.mlp.*columnNorms\[2\] is NaN/);
    const nanW = tensor(w.data.map((v, k) => (k === 9 ? NaN : v)), [4, 8]);
    expect(call({}, { columnNorms: norms }, nanW)).toThrow(/model\.layers\.3\.mlp.*weight\[1, 1\] is NaN/);
    expect(call({}, { columnNorms: norms }, tensor(new Float32Array(8), [8]))).toThrow(ShapeError);
  });
});
