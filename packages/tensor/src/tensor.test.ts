import fc from 'fast-check';
import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DTypeError, ShapeError } from './errors.js';
import { toCSR } from './layouts/csr.js';
import {
  asTensor,
  contiguousStrides,
  copy,
  forEachIndex,
  fromArray,
  get,
  indexOf,
  isContiguous,
  reshape,
  set,
  SliceSpec,
  sizeOf,
  slice,
  tensor,
  Tensor,
  toArray,
  toContiguous,
  transpose,
  zeros,
} from './tensor.js';

/** A float64 tensor whose element at flat row-major index k is k, so positions can be checked by value. */
function arange(shape: number[]): Tensor<'float64'> {
  const n = sizeOf(shape);
  return tensor(Float64Array.from({ length: n }, (_, k) => k), shape);
}

/** Row-major flat index of a multi-index: the brute-force reference for reads through any view. */
function flatIndex(shape: number[], idx: number[]): number {
  let k = 0;
  for (let a = 0; a < shape.length; a++) k = k * shape[a]! + idx[a]!;
  return k;
}

/** Every multi-index of a shape in row-major order, by counting. */
function allIndices(shape: number[]): number[][] {
  const out: number[][] = [];
  const n = sizeOf(shape);
  for (let k = 0; k < n; k++) {
    const idx = new Array<number>(shape.length);
    let r = k;
    for (let a = shape.length - 1; a >= 0; a--) {
      idx[a] = r % shape[a]!;
      r = Math.floor(r / shape[a]!);
    }
    out.push(idx);
  }
  return out;
}

/** Python's slice semantics written as the loop "start, start + step, ... while before end". */
function pySliceIndices(n: number, spec: { start?: number; end?: number; step?: number }): number[] {
  const step = spec.step ?? 1;
  const fix = (v: number, lowest: number, highest: number) => {
    if (v < 0) v += n;
    if (v < lowest) v = lowest;
    if (v > highest) v = highest;
    return v;
  };
  const start = spec.start === undefined ? (step > 0 ? 0 : n - 1) : step > 0 ? fix(spec.start, 0, n) : fix(spec.start, -1, n - 1);
  const end = spec.end === undefined ? (step > 0 ? n : -1) : step > 0 ? fix(spec.end, 0, n) : fix(spec.end, -1, n - 1);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < end : i > end; i += step) out.push(i);
  return out;
}

const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });

describe('scijs ndarray interop', () => {
  it('asTensor returns the very same ndarray object, no copy, and reads/writes are shared both ways', () => {
    const nd = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const t = asTensor(nd);
    expect(t).toBe(nd);
    expect(t.data).toBe(nd.data);
    expect(t.dtype).toBe('float32');
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(get(t, i, j)).toBe(nd.get(i, j));
    set(t, 42, 1, 2);
    expect(nd.get(1, 2)).toBe(42);
    nd.set(0, 1, -7);
    expect(get(t, 0, 1)).toBe(-7);
  });

  it('ndarray views (transpose, lo/hi, negative step) pass asTensor and read like ndarray.get', () => {
    const base = ndarray(new Float64Array(Array.from({ length: 60 }, (_, k) => k * 1.5)), [3, 4, 5]);
    const views = [base.transpose(2, 0, 1), base.lo(1, 1, 2).hi(2, 2, 3), base.step(-1, 2, -2), base.pick(null, 2, null)];
    for (const v of views) {
      const t = asTensor(v);
      expect(t).toBe(v);
      for (const idx of allIndices(v.shape)) expect(get(t, ...idx)).toBe(v.get(...idx));
      expect(toArray(copy(t))).toEqual(allIndices(v.shape).map((idx) => v.get(...idx)));
    }
  });

  it('our transpose and reversed slice agree with ndarray', () => {
    const nd = ndarray(new Int32Array(Array.from({ length: 24 }, (_, k) => k)), [2, 3, 4]);
    const ours = transpose(asTensor(nd), [2, 0, 1]);
    const theirs = nd.transpose(2, 0, 1);
    expect(ours.shape).toEqual(theirs.shape);
    expect(ours.stride).toEqual(theirs.stride);
    const rev = slice(asTensor(nd), null, { step: -1 }, { step: -2 });
    const nrev = nd.step(1, -1, -2);
    expect(rev.shape).toEqual(nrev.shape);
    expect(rev.offset).toBe(nrev.offset);
    expect(rev.stride).toEqual(nrev.stride);
  });

  it('a sparse layout can be built straight from an ndarray', () => {
    const nd = ndarray(new Float32Array([0, 1, 0, 2, 0, 0]), [3, 2]).transpose(1, 0);
    const l = toCSR(asTensor(nd));
    expect([...l.indptr]).toEqual([0, 0, 2]);
    expect([...l.indices]).toEqual([0, 1]);
    expect([...l.values]).toEqual([1, 2]);
  });

  it('an ndarray over a Uint16Array needs an explicit 16-bit dtype, and then gets a new view of the same data', () => {
    const nd = ndarray(new Uint16Array([0x3c00, 0x4000]), [2]);
    expect(() => asTensor(nd)).toThrow(DTypeError);
    const t = asTensor(nd, 'float16');
    expect(t).not.toBe(nd);
    expect(t.data).toBe(nd.data);
    expect(t.dtype).toBe('float16');
    expect(() => asTensor(ndarray([1, 2, 3], [3]))).toThrow(ArgumentError);
    expect(() => asTensor(nd, 'float32')).toThrow(DTypeError);
  });
});

describe('views against brute-force index math', () => {
  it('transpose(perm): element idx of the view is element idx[inverse perm] of the source', () => {
    const arb = shapeArb.chain((shape) =>
      fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length }).map((perm) => ({ shape, perm })),
    );
    fc.assert(
      fc.property(arb, ({ shape, perm }) => {
        const t = arange(shape);
        const v = transpose(t, perm);
        expect(v.shape).toEqual(perm.map((a) => shape[a]));
        for (const idx of allIndices(v.shape)) {
          const src = new Array<number>(shape.length);
          perm.forEach((a, i) => (src[a] = idx[i]!));
          if (get(v, ...idx) !== flatIndex(shape, src)) return false;
        }
        // default: reversed axes
        expect(transpose(t).shape).toEqual([...shape].reverse());
        return true;
      }),
    );
  });

  it('slice (ranges with any step sign, single indices, nulls) matches Python slicing', () => {
    const specArb = (n: number): fc.Arbitrary<SliceSpec> =>
      fc.oneof(
        fc.constant(null),
        n > 0 ? fc.integer({ min: -n, max: n - 1 }) : fc.constant(null),
        fc.record(
          {
            start: fc.integer({ min: -n - 2, max: n + 2 }),
            end: fc.integer({ min: -n - 2, max: n + 2 }),
            step: fc.integer({ min: -3, max: 3 }).filter((s) => s !== 0),
          },
          { requiredKeys: [] },
        ),
      );
    const arb = shapeArb.chain((shape) =>
      fc.tuple(...shape.map((n) => specArb(n))).map((specs) => ({ shape, specs: specs as SliceSpec[] })),
    );
    fc.assert(
      fc.property(arb, fc.boolean(), ({ shape, specs }, throughTranspose) => {
        // optionally slice a transposed view, to exercise non-contiguous sources too
        let t: Tensor = arange(shape);
        let srcShape = shape;
        if (throughTranspose && shape.length > 1) {
          const base = arange([...shape].reverse());
          t = transpose(base);
          srcShape = [...shape].reverse();
        }
        const v = slice(t, ...specs);
        const perAxis: number[][] = [];
        const kept: number[] = [];
        shape.forEach((n, a) => {
          const s = specs[a];
          if (typeof s === 'number') perAxis.push([s < 0 ? s + n : s]);
          else {
            perAxis.push(s == null ? [...Array(n).keys()] : pySliceIndices(n, s));
            kept.push(a);
          }
        });
        expect(v.shape).toEqual(kept.map((a) => perAxis[a]!.length));
        for (const idx of allIndices(v.shape)) {
          const src = perAxis.map((list, a) => (kept.includes(a) ? list[idx[kept.indexOf(a)]!]! : list[0]!));
          // element src of the logical source: for the transposed base that is base[reversed src]
          const want = srcShape === shape ? flatIndex(shape, src) : flatIndex(srcShape, [...src].reverse());
          if (get(v, ...idx) !== want) return false;
        }
        return true;
      }),
    );
  });

  it('slice rejects bad specs', () => {
    const t = arange([3, 4]);
    expect(() => slice(t, 3)).toThrow(ShapeError);
    expect(() => slice(t, -4)).toThrow(ShapeError);
    expect(() => slice(t, null, { step: 0 })).toThrow(ShapeError);
    expect(() => slice(t, null, null, null)).toThrow(ShapeError);
    expect(() => transpose(t, [0, 0])).toThrow(ShapeError);
    expect(() => transpose(t, [0])).toThrow(ShapeError);
  });

  it('forEachIndex visits row-major order with the right data positions', () => {
    fc.assert(
      fc.property(shapeArb, (shape) => {
        const v = slice(arange(shape.map((d) => d + 1)), ...shape.map((d) => ({ end: d, step: 1 })));
        const seen: Array<[number, number[]]> = [];
        forEachIndex(v, (pos, idx) => seen.push([pos, [...idx]]));
        const want = allIndices(v.shape);
        expect(seen.map(([, idx]) => idx)).toEqual(want);
        expect(seen.map(([pos]) => pos)).toEqual(want.map((idx) => indexOf(v, idx)));
      }),
    );
  });
});

describe('copies and reshapes', () => {
  it('toContiguous returns the tensor itself when already packed, otherwise an equal packed copy', () => {
    const t = arange([3, 4]);
    expect(toContiguous(t)).toBe(t);
    const row = slice(t, 1); // contiguous but offset 4 into a longer buffer
    const r = toContiguous(row);
    expect(r).not.toBe(row);
    expect(r.offset).toBe(0);
    expect(r.data.length).toBe(4);
    expect(toArray(r)).toEqual([4, 5, 6, 7]);
    fc.assert(
      fc.property(shapeArb, fc.boolean(), (shape, rev) => {
        const v = slice(transpose(arange(shape)), ...(rev ? shape.map(() => ({ step: -1 })) : []));
        const c = toContiguous(v);
        // strides of size-1 axes are never used, so toContiguous may leave them as they were
        const want = contiguousStrides(v.shape);
        expect(c.stride.filter((_, a) => v.shape[a]! > 1)).toEqual(want.filter((_, a) => v.shape[a]! > 1));
        expect(c.offset).toBe(0);
        expect(c.data.length).toBe(sizeOf(v.shape));
        expect(isContiguous(c)).toBe(true);
        expect(toArray(c)).toEqual(toArray(v));
      }),
    );
  });

  it('copy never aliases', () => {
    const t = arange([2, 2]);
    const c = copy(t);
    c.data[0] = 99;
    expect(t.data[0]).toBe(0);
  });

  it('reshape views contiguous data and refuses size changes and non-contiguous input', () => {
    const t = arange([2, 6]);
    const r = reshape(t, [3, 2, 2]);
    expect(r.data).toBe(t.data);
    expect(get(r, 2, 1, 0)).toBe(10);
    const row = slice(t, 1);
    expect(get(reshape(row, [2, 3]), 0, 0)).toBe(6);
    expect(() => reshape(t, [5, 2])).toThrow(ShapeError);
    expect(() => reshape(t, [-2, -6])).toThrow(ShapeError);
    expect(() => reshape(t, [12.5])).toThrow(ShapeError);
    expect(() => reshape(transpose(t), [12])).toThrow(/not contiguous/);
    expect(reshape(zeros([0, 3]), [3, 0]).shape).toEqual([3, 0]);
  });
});

describe('construction errors', () => {
  it('bad shapes give ShapeError', () => {
    expect(() => tensor(new Float32Array(4), [-1, 4])).toThrow(ShapeError);
    expect(() => tensor(new Float32Array(4), [2.5, 2])).toThrow(ShapeError);
    expect(() => tensor(new Float32Array(4), [NaN])).toThrow(ShapeError);
    expect(() => zeros([3, -1])).toThrow(ShapeError);
    expect(() => fromArray([1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => tensor(new Float32Array(4), [2, 2], { stride: [2] })).toThrow(ShapeError);
    expect(() => tensor(new Float32Array(4), [2, 2], { stride: [2, 1], offset: 1 })).toThrow(/outside data of length 4/);
    expect(() => tensor(new Float32Array(4), [2, 2], { stride: [-2, 1], offset: 1 })).toThrow(ShapeError);
    expect(() => tensor(new Float32Array(4), [2, 2], { stride: [1.5, 1] })).toThrow(ShapeError);
    expect(() => indexOf(arange([2, 2]), [0, 2])).toThrow(ShapeError);
    expect(() => get(arange([2, 2]), 0)).toThrow(ShapeError);
  });

  it('accepts views that stay inside the data, including negative strides and empty shapes', () => {
    const t = tensor(new Float32Array([1, 2, 3, 4]), [2, 2], { stride: [-2, 1], offset: 2 });
    expect(toArray(t)).toEqual([3, 4, 1, 2]);
    expect(tensor(new Float32Array(0), [0, 5]).shape).toEqual([0, 5]);
    expect(tensor(new Float32Array(1), [3, 0], { offset: 7 }).shape).toEqual([3, 0]);
  });

  it('dtype problems give DTypeError', () => {
    expect(() => tensor(new Uint16Array(2), [2])).toThrow(DTypeError);
    expect(() => tensor(new Float32Array(2) as never, [2], { dtype: 'int32' })).toThrow(DTypeError);
    expect(() => zeros([2], 'complex64' as never)).toThrow(DTypeError);
    expect(tensor(new Uint8Array(2), [2], { dtype: 'bool' }).dtype).toBe('bool');
  });
});
