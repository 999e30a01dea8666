import { ArgumentError, cast, Random, ShapeError, slice, tensor, transpose } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnMomentsOf, columnNormsOf, correlatedInputs, hessianOf } from '../__fixtures__/layers.js';
import { BlockInfluenceAccumulator, ColumnNormAccumulator, HessianAccumulator } from './index.js';

/** Splits X [tokens, f] into consecutive batches of the given sizes. */
function batches(x: { data: Float32Array; shape: number[] }, sizes: number[]) {
  const f = x.shape[1]!;
  let t = 0;
  return sizes.map((n) => {
    const b = tensor(x.data.slice(t * f, (t + n) * f), [n, f]);
    t += n;
    return b;
  });
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1e-30;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
}

describe('ColumnNormAccumulator', () => {
  it('streams batches into the norms, means and variances of all tokens at once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 6 }), (seed, sizes) => {
        const total = sizes.reduce((a, b) => a + b, 0);
        fc.pre(total > 0);
        const x = correlatedInputs(new Random(seed), total, 5, { mean: 2 });
        const acc = new ColumnNormAccumulator(5);
        for (const b of batches(x, sizes)) acc.add(b);
        expect(acc.tokens).toBe(total);
        const { means, variances } = columnMomentsOf(x);
        expect(maxRelDiff(acc.norms().data, columnNormsOf(x).data)).toBeLessThan(1e-12);
        expect(maxRelDiff(acc.means().data, means.data)).toBeLessThan(1e-10);
        expect(maxRelDiff(acc.variances().data, variances.data)).toBeLessThan(1e-9);
      }),
      { numRuns: 50 },
    );
  });

  it('accepts [batch, seq, in] activations and survives a JSON round trip of its state', () => {
    const x = correlatedInputs(new Random(1), 12, 4);
    const acc = new ColumnNormAccumulator(4, { name: 'l0.fc1' });
    acc.add(tensor(x.data.slice(0, 24), [2, 3, 4]));
    const copy = ColumnNormAccumulator.fromState(JSON.parse(JSON.stringify({ ...acc.state(), sumSquares: Array.from(acc.state().sumSquares), mean: Array.from(acc.state().mean), m2: Array.from(acc.state().m2) })));
    const rest = tensor(x.data.slice(24), [6, 4]);
    acc.add(rest);
    copy.add(rest);
    expect(Array.from(copy.norms().data)).toEqual(Array.from(acc.norms().data));
    expect(Array.from(copy.variances().data)).toEqual(Array.from(acc.variances().data));
    expect(copy.name).toBe('l0.fc1');
    expect(maxRelDiff(acc.norms().data, columnNormsOf(x).data)).toBeLessThan(1e-12);
  });

  it('reads strided, transposed, float64 and [batch, seq, in] batches as their dense float32 values', () => {
    const rng = new Random(21);
    const x = correlatedInputs(rng, 30, 12);
    const wide = tensor(Float32Array.from({ length: 30 * 15 }, (_, k) => (k % 15 < 12 ? x.data[Math.floor(k / 15) * 12 + (k % 15)]! : NaN)), [30, 15]);
    const dense = new ColumnNormAccumulator(12).add(x);
    for (const batch of [slice(wide, null, { start: 0, end: 12 }), transpose(cast(transpose(x), 'float32')), cast(x, 'float64'), tensor(x.data, [5, 6, 12])]) {
      const acc = new ColumnNormAccumulator(12).add(batch);
      expect(acc.state()).toEqual(dense.state());
    }
    // NaN past the slice's columns is not read; one inside it is named by token and feature.
    const bad = slice(wide, null, { start: 1, end: 13 });
    expect(() => new ColumnNormAccumulator(12, { name: 'fc2' }).add(bad)).toThrow(/fc2.*token 0, feature 11 is NaN/);
    const acc = new ColumnNormAccumulator(12).add(x);
    const y = tensor(Float32Array.from(x.data, (v, k) => (k === 5 * 12 + 3 ? -Infinity : v)), [30, 12]);
    expect(() => acc.add(y)).toThrow(/token 5, feature 3 is -Infinity/);
    // a rejected batch leaves the accumulator as it was
    expect(acc.state()).toEqual(dense.state());
  });

  it('rejects mismatched dimensions and NaN, naming the layer', () => {
    const acc = new ColumnNormAccumulator(4, { name: 'blocks.1.mlp.down' });
    expect(() => acc.add(tensor(new Float32Array(10), [2, 5]))).toThrow(ShapeError);
    expect(() => acc.add(tensor(new Float32Array(10), [2, 5]))).toThrow(/blocks\.1\.mlp\.down.*4 input features/);
    expect(() => acc.add(tensor(new Float32Array([1, 2, NaN, 4]), [1, 4]))).toThrow(/blocks\.1\.mlp\.down.*token 0, feature 2 is NaN/);
    expect(() => acc.norms()).toThrow(/no tokens/);
    expect(() => new ColumnNormAccumulator(0)).toThrow(ArgumentError);
    expect(() => ColumnNormAccumulator.fromState({ ...acc.state(), mean: [1, 2] })).toThrow(ShapeError);
  });
});

describe('HessianAccumulator', () => {
  it('equals 2/n X^T X over all tokens whatever the batching', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }), (seed, sizes) => {
        const total = sizes.reduce((a, b) => a + b, 0);
        const x = correlatedInputs(new Random(seed), total, 6);
        const acc = new HessianAccumulator(6);
        for (const b of batches(x, sizes)) acc.add(b);
        const h = acc.hessian();
        expect(acc.tokens).toBe(total);
        expect(maxRelDiff(h.data, hessianOf(x).data)).toBeLessThan(1e-5);
        for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) expect(h.data[i * 6 + j]).toBe(h.data[j * 6 + i]);
      }),
      { numRuns: 40 },
    );
  });

  it('round-trips its state (typed arrays or JSON) and names the layer in errors', () => {
    const x = correlatedInputs(new Random(2), 10, 3);
    const acc = new HessianAccumulator(3, { name: 'attn.q' }).add(x);
    const viaJSON = HessianAccumulator.fromState(JSON.parse(JSON.stringify({ ...acc.state(), hessian: Array.from(acc.state().hessian) })));
    expect(Array.from(viaJSON.hessian().data)).toEqual(Array.from(acc.hessian().data));
    expect(HessianAccumulator.fromState(acc.state()).tokens).toBe(10);
    expect(acc.stats().tokens).toBe(10);
    expect(() => acc.add(tensor(new Float32Array(4), [2, 2]))).toThrow(/attn\.q/);
    expect(() => acc.add(tensor(new Float32Array([0, Infinity, 0]), [1, 3]))).toThrow(/attn\.q.*Infinity/);
    expect(() => HessianAccumulator.fromState({ kind: 'columns' } as never)).toThrow(ArgumentError);
  });
});

describe('BlockInfluenceAccumulator', () => {
  it('averages the per-token distance between block input and output', () => {
    const rng = new Random(3);
    const a = correlatedInputs(rng, 7, 5);
    const b = correlatedInputs(rng, 7, 5);
    const ref = { angular: 0, cosine: 0, mse: 0, mae: 0 };
    for (let t = 0; t < 7; t++) {
      const u = Array.from(a.data.subarray(t * 5, t * 5 + 5));
      const v = Array.from(b.data.subarray(t * 5, t * 5 + 5));
      const cos = u.reduce((s, x, j) => s + x * v[j]!, 0) / Math.hypot(...u) / Math.hypot(...v);
      ref.angular += Math.acos(cos) / Math.PI / 7;
      ref.cosine += (1 - cos) / 7;
      ref.mse += u.reduce((s, x, j) => s + (x - v[j]!) ** 2, 0) / 5 / 7;
      ref.mae += u.reduce((s, x, j) => s + Math.abs(x - v[j]!), 0) / 5 / 7;
    }
    for (const metric of ['angular', 'cosine', 'mse', 'mae'] as const) {
      const acc = new BlockInfluenceAccumulator(5, { metric });
      acc.add(tensor(a.data.slice(0, 15), [3, 5]), tensor(b.data.slice(0, 15), [3, 5]));
      acc.add(tensor(a.data.slice(15), [4, 5]), tensor(b.data.slice(15), [4, 5]));
      expect(acc.importance()).toBeCloseTo(ref[metric], 6);
      expect(BlockInfluenceAccumulator.fromState(acc.state()).importance()).toBe(acc.importance());
    }
    const same = new BlockInfluenceAccumulator(5).add(a, a);
    expect(same.importance()).toBeLessThan(1e-3);
    expect(() => new BlockInfluenceAccumulator(5, { name: 'h.0' }).add(a, tensor(new Float32Array(30), [6, 5]))).toThrow(/h\.0.*7 tokens/);
  });
});
