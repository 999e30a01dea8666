import { ArgumentError, Random, randomTensor, ShapeError, svd, tensor, toArray, transpose, type Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  changeMagnitudeScores,
  fisherScores,
  GradientAccumulator,
  gradientScores,
  graspScores,
  magnitudeScores,
  MovementAccumulator,
  principalWeightScores,
  randomScores,
  snipScores,
  SquaredGradientAccumulator,
  synflowScores,
  taylorScores,
} from './index.js';

const shapeArb = fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }));
const f32 = (v: number[], shape: number[]) => tensor(Float32Array.from(v), shape);

/** Random float32 tensors of one shape from a seed. */
function inputs(shape: [number, number], seed: number, count: number): Tensor<'float32'>[] {
  const rng = new Random(seed);
  return Array.from({ length: count }, () => randomTensor(shape, rng, { dist: 'normal' }) as Tensor<'float32'>);
}

/** Each output equals fround(formula(inputs at i)), computed here element by element. */
function expectElementwise(out: Tensor, ins: Tensor[], formula: (...x: number[]) => number): void {
  const flat = ins.map((t) => toArray(t));
  expect(out.dtype).toBe('float32');
  expect(out.shape).toEqual(ins[0]!.shape);
  toArray(out).forEach((y, i) => expect(y).toBe(Math.fround(formula(...flat.map((f) => f[i]!)))));
}

describe('elementwise scores vs their formulas', () => {
  it('magnitude |W|, gradient |G|, SNIP |W G|, Taylor-1 |W G|, GraSP -W (Hg), SynFlow |W dR|, change |W - W0|', () => {
    fc.assert(
      fc.property(shapeArb, fc.integer(), (shape, seed) => {
        const [w, g, h] = inputs(shape, seed, 3) as [Tensor, Tensor, Tensor];
        expectElementwise(magnitudeScores(w), [w], (x) => Math.abs(x));
        expectElementwise(gradientScores(g), [g], (x) => Math.abs(x));
        expectElementwise(snipScores(w, g), [w, g], (x, y) => Math.abs(x * y));
        expectElementwise(taylorScores(w, g), [w, g], (x, y) => Math.abs(x * y));
        expectElementwise(graspScores(w, h), [w, h], (x, y) => -x * y);
        expectElementwise(synflowScores(w, h), [w, h], (x, y) => Math.abs(x * y));
        expectElementwise(changeMagnitudeScores(w, h), [w, h], (x, y) => Math.abs(x - y));
      }),
    );
  });

  it('Taylor order 2 is |-g w + ½ F w²| with the Fisher diagonal', () => {
    fc.assert(
      fc.property(shapeArb, fc.integer(), (shape, seed) => {
        const [w, g, f0] = inputs(shape, seed, 3) as [Tensor, Tensor, Tensor];
        const fisher = magnitudeScores(f0);
        expectElementwise(taylorScores(w, g, { order: 2, fisher }), [w, g, fisher], (x, y, f) => Math.abs(-y * x + 0.5 * f * x * x));
      }),
    );
    const w = f32([1], [1]);
    expect(() => taylorScores(w, w, { order: 2 })).toThrow(/needs opts.fisher/);
    expect(() => taylorScores(w, w, { order: 3 as 2 })).toThrow(ArgumentError);
  });

  it('reads strided views and float64 inputs, and rejects mismatched shapes and NaN naming the argument', () => {
    const w = f32([1, -2, 3, -4, 5, -6], [2, 3]);
    const gT = tensor(Float64Array.from([0.5, 1, 1.5, 2, 2.5, 3]), [3, 2]);
    const g = transpose(gT); // [2, 3] = [[0.5, 1.5, 2.5], [1, 2, 3]]
    expect(toArray(snipScores(w, g))).toEqual([0.5, 3, 7.5, 4, 10, 18]);
    expect(() => snipScores(w, gT)).toThrow(ShapeError);
    expect(() => snipScores(w, gT)).toThrow(/gradient has shape \[3, 2\] but weight has shape \[2, 3\]/);
    expect(() => snipScores(w, f32([1, 2, NaN, 4, 5, 6], [2, 3]))).toThrow(/gradient\[0, 2\] \(flat index 2\) is NaN/);
    expect(() => magnitudeScores({} as Tensor)).toThrow(/weight is not a tensor/);
  });
});

describe('accumulated scores', () => {
  it('Fisher = mean g², sensitivity = Σ g², |Σ g| and movement -Σ scale·G⊙W, against direct sums', () => {
    fc.assert(
      fc.property(shapeArb, fc.integer(), fc.integer({ min: 1, max: 5 }), (shape, seed, steps) => {
        const gs = inputs(shape, seed, steps);
        const ws = inputs(shape, seed + 1, steps);
        const scales = Array.from({ length: steps }, (_, t) => 0.1 * (t + 1));
        const sq = new SquaredGradientAccumulator(shape);
        const ga = new GradientAccumulator(shape);
        const mv = new MovementAccumulator(shape);
        gs.forEach((g, t) => {
          sq.add(g);
          ga.add(g);
          mv.add(ws[t]!, g, scales[t]);
        });
        expect(sq.count).toBe(steps);
        const G = gs.map(toArray);
        const W = ws.map(toArray);
        const n = G[0]!.length;
        const ref = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => Math.fround(f(i)));
        const sumOver = (f: (t: number, i: number) => number) => (i: number) => G.reduce((s, _, t) => s + f(t, i), 0);
        expect(toArray(sq.sum())).toEqual(ref(sumOver((t, i) => G[t]![i]! ** 2)));
        expect(toArray(sq.mean())).toEqual(ref((i) => sumOver((t, j) => G[t]![j]! ** 2)(i) / steps));
        expect(toArray(fisherScores(gs))).toEqual(toArray(sq.mean()));
        expect(toArray(ga.scores())).toEqual(ref((i) => Math.abs(sumOver((t, j) => G[t]![j]!)(i))));
        expect(toArray(mv.scores())).toEqual(ref(sumOver((t, i) => -scales[t]! * G[t]![i]! * W[t]![i]!)));
      }),
    );
  });

  it('checkpoint through JSON and resume exactly', () => {
    const [g1, g2] = inputs([3, 4], 9, 2) as [Tensor, Tensor];
    const a = new SquaredGradientAccumulator([3, 4]).add(g1);
    const b = SquaredGradientAccumulator.fromState(JSON.parse(JSON.stringify(a.state())));
    a.add(g2);
    b.add(g2);
    expect(toArray(b.mean())).toEqual(toArray(a.mean()));
    const m = MovementAccumulator.fromState(new MovementAccumulator([3, 4]).add(g1, g2).state());
    expect(m.count).toBe(1);
    expect(() => GradientAccumulator.fromState(a.state())).toThrow(/kind 'gradient'/);
    expect(() => new GradientAccumulator([2]).mean()).toThrow(/nothing accumulated/);
    expect(() => new GradientAccumulator([2]).add(f32([1, 2, 3], [3]))).toThrow(ShapeError);
    expect(() => fisherScores([g1, f32([1], [1])])).toThrow(/gradients\[1\] has shape \[1\]/);
    const ga = new GradientAccumulator([3, 4]).add(g1);
    expect(ga.reset().count).toBe(0);
    expect(toArray(ga.scores()).every((x) => x === 0)).toBe(true);
  });
});

describe('randomScores', () => {
  it('are the seeded generator’s uniform draws, in [0, 1)', () => {
    const s = randomScores([4, 5], new Random(3));
    expect(s.shape).toEqual([4, 5]);
    expect(Array.from(s.data)).toEqual(Array.from(new Random(3).fillUniform(new Float32Array(20))));
    expect(Array.from(s.data).every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Array.from(randomScores([4, 5], new Random(4)).data)).not.toEqual(Array.from(s.data));
    expect(() => randomScores([2], undefined as unknown as Random)).toThrow(/rng/);
  });
});

describe('principalWeightScores (LIFT)', () => {
  /** |U_r diag(s_r) V_r^T| from the full one-sided Jacobi SVD: the reference. */
  function reference(w: Tensor, r: number): number[] {
    const { u, s, v } = svd(w);
    const [m, n] = w.shape as [number, number];
    const k = Math.min(m, n);
    const out: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let x = 0;
        for (let t = 0; t < r; t++) x += u.data[i * k + t]! * s.data[t]! * v.data[j * k + t]!;
        out.push(Math.abs(x));
      }
    }
    return out;
  }

  it('equals |rank-r approximation| from the Jacobi SVD on matrices with a spectral gap', () => {
    const rng = new Random(17);
    for (const [m, n, r] of [
      [20, 12, 3],
      [12, 30, 5],
      [16, 16, 1],
    ] as const) {
      // A low-rank matrix plus small noise: the top-r subspace is well separated, so it is well defined.
      const a = randomTensor([m, r], rng, { dist: 'normal' });
      const b = randomTensor([r, n], rng, { dist: 'normal' });
      const w = new Float32Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let x = 0.01 * rng.normal();
        for (let t = 0; t < r; t++) x += a.data[i * r + t]! * b.data[t * n + j]!;
        w[i * n + j] = x;
      }
      const W = tensor(w, [m, n]);
      const got = toArray(principalWeightScores(W, r, { rng: new Random(1) }));
      const ref = reference(W, r);
      const scale = Math.max(...ref);
      got.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-4 * scale));
    }
  });

  it('equals |W| when W has exactly rank r, and validates its arguments', () => {
    const W = f32([1, 2, 3, 2, 4, 6, -1, -2, -3], [3, 3]); // rank 1
    toArray(principalWeightScores(W, 1)).forEach((x, i) => expect(x).toBeCloseTo(Math.abs(W.data[i]!), 5));
    expect(() => principalWeightScores(W, 0)).toThrow(/rank must be an integer in \[1, 3\]/);
    expect(() => principalWeightScores(f32([1, 2], [2]), 1)).toThrow(/must be a matrix/);
  });
});
