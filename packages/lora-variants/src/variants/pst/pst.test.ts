import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { count, equals, isKept, maskFromPredicate, maskFromTensor, type Mask } from '@sparse/masks';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import { pstKeepMask, pstMask, pstScores, pstSparsityAt, pstVariant } from './variant.js';
import type { PSTConfig } from './config.js';
import { pstForm } from './tfjs.js';
import { expectClose, perturb, prune24, pruneRandom50, randn, refMatmulT } from '../helpers/sparse-testing.js';

/** Random trainable values and the given level (perturb would also scramble the level). */
function trained<S extends AdapterState>(s: S, rng: Random, level: number): S {
  perturb(s, rng, 0.5);
  s.params.pst_sparsity!.data[0] = level;
  return s;
}

/** S by plain loops in float64. */
function refScores(s: AdapterState, base: Float32Tensor): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as PSTConfig;
  const p = (n: string) => s.params[n]!.data;
  const S = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let uv = 0;
    for (let t = 0; t < c.r; t++) uv += p('pst_U')[i * c.r + t]! * p('pst_V')[t * inp + j]!;
    let ab = 0;
    for (let t = 0; t < c.scoreRank; t++) ab += p('pst_A')[i * c.scoreRank + t]! * p('pst_B')[t * inp + j]!;
    S[i * inp + j] = Math.abs(base.data[i * inp + j]! + c.beta * uv) + c.alpha1 * ab + c.alpha2 * (p('pst_R')[i]! + p('pst_C')[j]!);
  }
  return S;
}

/** Brute-force top-k: candidates sorted by score (desc), ties by index, first k. */
function bruteTopK(scores: ArrayLike<number>, candidates: Mask, k: number): number[] {
  const idx = Array.from({ length: scores.length }, (_, q) => q).filter((q) => isKept(candidates, q));
  return idx.sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, k).sort((a, b) => a - b);
}

const keptList = (m: Mask) => Array.from({ length: m.shape.reduce((a, b) => a * b, 1) }, (_, q) => q).filter((q) => isKept(m, q));

describe('pst', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('pstKeepMask is the brute-force top-k inside the candidates, k = min(kept, round((1 − level) · n))', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 12 }), fc.double({ min: 0, max: 0.99, noNaN: true }), fc.integer({ min: 0, max: 1e6 }), (rows, cols, level, seed) => {
        const rng = new Random(seed);
        const n = rows * cols;
        // few distinct values, so ties are common
        const scores = tensor(Float32Array.from({ length: n }, () => rng.int(0, 5) - 2), [rows, cols]);
        const cand = maskFromPredicate([rows, cols], () => rng.uniform() < 0.7);
        const k = Math.min(count(cand), Math.min(n, Math.round((1 - level) * n)));
        expect(keptList(pstKeepMask(scores, cand, level))).toEqual(bruteTopK(scores.data, cand, k));
      }),
      { numRuns: 300 },
    );
    expect(() => pstKeepMask(tensor(new Float32Array(4), [2, 2]), maskFromPredicate([2, 2], () => true), 1)).toThrow(/pst_sparsity must be in \[0, 1\), got 1/);
    expect(() => pstKeepMask(tensor(new Float32Array(4), [2, 2]), maskFromPredicate([4, 1], () => true), 0.5)).toThrow(/base mask \[4, 1\] differs from scores \[2, 2\]/);
  });

  it('scores are |W + beta U V| + alpha1 A B + alpha2 (r 1ᵀ + 1 cᵀ) and M their top-k within the base (brute force)', () => {
    const rng = new Random(1);
    const base = randn(rng, [6, 8]);
    const s = trained(pstVariant.init(base, { r: 2, scoreRank: 3, beta: 0.7, alpha1: 1.5, alpha2: 0.3 }, rng), rng, 0.6);
    const S = refScores(s, base);
    expectClose(pstScores(s, base).data, S, 1e-5);
    expect(keptList(pstMask(s, base))).toEqual(bruteTopK(S, maskFromTensor(base), Math.round(0.4 * 48)));
  });

  it('the cubic schedule matches the closed form s_f + (s_i − s_f)(1 − (t − b)/(e − b))³', () => {
    const c = { sparsity: 0.8, initialSparsity: 0.1, scheduleStart: 0.1, scheduleEnd: 0.6 };
    const T = 100;
    const [b, e] = [10, 60];
    for (let t = 0; t <= T; t++) {
      const want = t < b ? 0.1 : t >= e ? 0.8 : 0.8 + (0.1 - 0.8) * (1 - (t - b) / (e - b)) ** 3;
      expect(pstSparsityAt(c, t, T)).toBeCloseTo(want, 12);
    }
    expect(pstSparsityAt({ sparsity: 0.8, scheduleStart: 0.1, scheduleEnd: 0.6 }, 35, 100)).toBeCloseTo(0.7, 12); // halfway: 0.8 · (1 − 1/8)
    expect(pstSparsityAt({}, 0, 10)).toBe(0);
    expect(pstSparsityAt({}, 7, 10)).toBe(0.5);
    // a ramp shorter than a step still ends at the target, at the last step T at the latest
    expect(pstSparsityAt({ scheduleStart: 0.5, scheduleEnd: 0.55 }, 1, 2)).toBe(0);
    expect(pstSparsityAt({ scheduleStart: 0.5, scheduleEnd: 0.55 }, 2, 2)).toBe(0.5);
    expect(pstSparsityAt({ scheduleStart: 0.99, scheduleEnd: 1 }, 3, 3)).toBe(0.5);
    expect(() => pstSparsityAt({}, 3, 0)).toThrow(/totalSteps must be a positive integer/);
    expect(() => pstSparsityAt({ scheduleStart: 0.5, scheduleEnd: 0.5 }, 3, 10)).toThrow(/pst: invalid config: scheduleEnd: scheduleEnd must be after scheduleStart/);
  });

  it('M ⊆ base mask at every level; a base at or above the level keeps its mask exactly, through merge too (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 0.95, noNaN: true }), fc.constantFrom('2:4', '50%', 'dense'), (seed, level, kind) => {
        const rng = new Random(seed);
        const base = randn(rng, [4, 8]);
        const baseMask = kind === '2:4' ? prune24(base) : kind === '50%' ? pruneRandom50(base, rng) : maskFromTensor(base);
        const s = trained(pstVariant.init(base, { r: 2, scoreRank: 2 }, rng), rng, level);
        const m = pstMask(s, base, { mask: baseMask });
        for (const q of keptList(m)) expect(isKept(baseMask, q)).toBe(true);
        expect(count(m)).toBe(Math.min(count(baseMask), Math.round((1 - level) * 32)));
        const merged = pstVariant.merge(base, s, { mask: baseMask });
        for (let q = 0; q < 32; q++) if (!isKept(m, q)) expect(Object.is(merged.data[q], 0)).toBe(true);
        if (count(baseMask) <= Math.round((1 - level) * 32)) {
          expect(equals(m, baseMask)).toBe(true);
          // nonzeros of the merged weight: the base mask, unless U V cancels an entry exactly
          for (const q of keptList(maskFromTensor(merged))) expect(isKept(baseMask, q)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('maskAfterMerge is the brute-force top-k of S inside the mask the merge goes through, and the merged weight is zero outside it (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0, max: 0.95, noNaN: true }), fc.boolean(), (seed, level, sparse) => {
        const rng = new Random(seed);
        const base = randn(rng, [4, 8]);
        const baseMask = sparse ? prune24(base) : undefined;
        const s = trained(pstVariant.init(base, { r: 2, scoreRank: 2 }, rng), rng, level);
        const opts = baseMask ? { mask: baseMask } : {};
        const m = pstVariant.maskAfterMerge!(base, s, opts);
        const cand = baseMask ?? maskFromTensor(base);
        expect(keptList(m)).toEqual(bruteTopK(refScores(s, base), cand, Math.min(count(cand), Math.round((1 - level) * 32))));
        const merged = pstVariant.merge(base, s, opts);
        for (let q = 0; q < 32; q++) if (!isKept(m, q)) expect(Object.is(merged.data[q], 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
    const base = randn(new Random(1), [4, 8]);
    expect(() => pstVariant.maskAfterMerge!(base, pstVariant.init(base, {}, new Random(2)), { densify: true })).toThrow(/pst\.maskAfterMerge: densify has no meaning/);
  });

  it('a fresh adapter leaves forward and merge unchanged (dense and 2:4 bases)', () => {
    for (const sparse of [false, true]) {
      const rng = new Random(2);
      const base = randn(rng, [8, 16]);
      if (sparse) prune24(base);
      const x = randn(rng, [4, 16]);
      const s = pstVariant.init(base, {}, rng);
      expect(pstVariant.delta(s, base).data.every((v) => v === 0)).toBe(true);
      expectClose(pstVariant.forward(x, base, s).data, refMatmulT(x, base), 1e-6);
      expect(pstVariant.merge(base, s).data).toEqual(base.data);
    }
  });

  it('merged forward equals unmerged forward (1e-5); the tfjs form equals the core merge; delta is merged − W', () => {
    const rng = new Random(3);
    const base = randn(rng, [8, 16]);
    const baseMask = prune24(base);
    const s = trained(pstVariant.init(base, { r: 3, scoreRank: 2, alpha2: 0.5 }, rng), rng, 0.7);
    const x = randn(rng, [5, 16]);
    const merged = pstVariant.merge(base, s, { mask: baseMask });
    expectClose(pstVariant.forward(x, base, s).data, refMatmulT(x, merged), 1e-5);
    expectClose(pstVariant.delta(s, base).data, merged.data.map((v, q) => v - base.data[q]!), 1e-6);
    expect(count(maskFromTensor(merged))).toBe(Math.round(0.3 * 128));
    const got = tf.tidy(() => {
      const vars = Object.fromEntries(Object.entries(s.params).map(([n, p]) => [n, tf.variable(tf.tensor(p.data, p.shape))]));
      const m = tf.tensor(Float32Array.from(base.data, (v) => (v === 0 ? 0 : 1)), [8, 16]);
      const w = pstForm.effectiveWeight({ base: tf.tensor(base.data, [8, 16]), vars, state: s, mask: m, training: true }).dataSync().slice();
      for (const v of Object.values(vars)) v.dispose();
      return w;
    });
    expectClose(got, merged.data, 1e-5);
  });

  it('the straight-through gradient matches the hand-computed one: ∂S = G ⊙ W_a into A, B, r, c; G ⊙ M into U, V', () => {
    const [out, inp] = [5, 7];
    const rng = new Random(4);
    const base = randn(rng, [out, inp]);
    const c = { r: 2, scoreRank: 3, beta: 0.8, alpha1: 1.3, alpha2: 0.6 };
    const s = trained(pstVariant.init(base, c, rng), rng, 0.5);
    const G = randn(rng, [out, inp]);
    const m = pstMask(s, base);
    const P = (n: string) => s.params[n]!.data;
    // W_a = W + beta U V; L = Σ G ⊙ W', so ∂L/∂W' = G
    const wa = new Float64Array(out * inp);
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
      let uv = 0;
      for (let t = 0; t < c.r; t++) uv += P('pst_U')[i * c.r + t]! * P('pst_V')[t * inp + j]!;
      wa[i * inp + j] = base.data[i * inp + j]! + c.beta * uv;
    }
    const gm = Float64Array.from(G.data, (g, q) => (isKept(m, q) ? g : 0)); // ∂L/∂W_a
    const gs = Float64Array.from(G.data, (g, q) => g * wa[q]!); // ∂L/∂S through the STE
    const want: Record<string, Float64Array> = {
      pst_U: new Float64Array(out * c.r),
      pst_V: new Float64Array(c.r * inp),
      pst_A: new Float64Array(out * c.scoreRank),
      pst_B: new Float64Array(c.scoreRank * inp),
      pst_R: new Float64Array(out),
      pst_C: new Float64Array(inp),
    };
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
      const q = i * inp + j;
      for (let t = 0; t < c.r; t++) {
        want.pst_U![i * c.r + t]! += c.beta * gm[q]! * P('pst_V')[t * inp + j]!;
        want.pst_V![t * inp + j]! += c.beta * gm[q]! * P('pst_U')[i * c.r + t]!;
      }
      for (let t = 0; t < c.scoreRank; t++) {
        want.pst_A![i * c.scoreRank + t]! += c.alpha1 * gs[q]! * P('pst_B')[t * inp + j]!;
        want.pst_B![t * inp + j]! += c.alpha1 * gs[q]! * P('pst_A')[i * c.scoreRank + t]!;
      }
      want.pst_R![i]! += c.alpha2 * gs[q]!;
      want.pst_C![j]! += c.alpha2 * gs[q]!;
    }
    const names = Object.keys(want);
    const vars = Object.fromEntries(Object.entries(s.params).map(([n, p]) => [n, tf.variable(tf.tensor(p.data, p.shape), n !== 'pst_sparsity')]));
    const mt = tf.tensor(Float32Array.from(base.data, (v) => (v === 0 ? 0 : 1)), [out, inp]);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(pstForm.effectiveWeight({ base: tf.tensor(base.data, [out, inp]), vars, state: s, mask: mt, training: true }), tf.tensor(G.data, [out, inp]))) as tf.Scalar,
      names.map((n) => vars[n]!),
    );
    for (const n of names) expectClose(grads[vars[n]!.name]!.dataSync(), want[n]!, 1e-4);
    expect(want.pst_B!.some((v) => v !== 0) && want.pst_R!.some((v) => v !== 0)).toBe(true);
    for (const v of Object.values(vars)) v.dispose();
  });

  it('trainable count: (r + scoreRank)(out + in) + out + in in closed form, in init (plus the frozen level) and in AdapterModel', () => {
    const shape: [number, number] = [12, 20];
    const c = { r: 3, scoreRank: 2 };
    const closed = (3 + 2) * (12 + 20) + 12 + 20;
    expect(pstVariant.trainableCount(shape, c)).toBe(closed);
    const s = pstVariant.init(randn(new Random(0), shape), c, new Random(1));
    expect(Object.values(s.params).reduce((a, p) => a + p.data.length, 0)).toBe(closed + 1);
    const model = attachAdapters({ fc: tf.variable(tf.tensor(randn(new Random(2), shape).data, shape), false) }, { targets: ['fc'], variant: 'pst', config: c });
    expect(model.trainableReport().trainable).toBe(closed);
    expect(model.trainableVariables().length).toBe(6);
  });

  it('trained on the cubic schedule through AdapterModel, the merged weight is the trained one at the target sparsity and beats magnitude pruning', () => {
    const rng = new Random(5);
    const shape: [number, number] = [16, 32];
    const w0 = randn(rng, shape);
    const n = 128;
    const x = tf.tensor(randn(rng, [n, 32]).data, [n, 32]);
    // target: the base plus a low-rank change, so |W| alone is not the best mask
    const u = randn(rng, [16, 2]);
    const v = randn(rng, [2, 32]);
    const wt = w0.data.map((w, q) => w + 0.5 * (u.data[Math.floor(q / 32) * 2]! * v.data[q % 32]! + u.data[Math.floor(q / 32) * 2 + 1]! * v.data[32 + (q % 32)]!));
    const y = tf.matMul(x, tf.tensor(wt, shape), false, true);
    const mse = (w: tf.Tensor) => tf.tidy(() => tf.losses.meanSquaredError(y, tf.matMul(x, w, false, true)).dataSync()[0]!);
    const config = { r: 4, scoreRank: 2, sparsity: 0.5, scheduleEnd: 0.6 };
    const weights = { 'layers.0.fc': tf.variable(tf.tensor(w0.data, shape), false) };
    const model = attachAdapters(weights, { targets: ['fc'], variant: 'pst', config, seed: 3 });
    const steps = 120;
    const opt = tf.train.adam(0.02);
    for (let t = 1; t <= steps; t++) {
      const level = pstSparsityAt(config, t, steps);
      const states = model.adapterStates();
      for (const [name, st] of Object.entries(states)) {
        model.setAdapterParams('default', name, { ...Object.fromEntries(Object.entries(st.params).map(([p, tt]) => [p, tt.data])), pst_sparsity: Float32Array.of(level) });
      }
      opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(x, model.effectiveWeight('layers.0.fc'), false, true)) as tf.Scalar, false, model.trainableVariables());
    }
    const trainedLoss = mse(model.effectiveWeight('layers.0.fc'));
    const st = model.adapterStates()['layers.0.fc']!;
    expect(st.params.pst_sparsity!.data[0]).toBe(0.5);
    const m = pstMask(st, w0);
    model.merge();
    const merged = tensor(Float32Array.from(weights['layers.0.fc'].dataSync()), shape);
    expect(count(maskFromTensor(merged))).toBe(256);
    expect(equals(maskFromTensor(merged), m)).toBe(true);
    expect(Math.abs(mse(weights['layers.0.fc']) - trainedLoss)).toBeLessThan(1e-5 * Math.max(1, trainedLoss));
    // one-shot magnitude pruning of W to the same sparsity, no training
    const order = Array.from(w0.data, (w, q) => [Math.abs(w), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const keep = new Set(order.slice(0, 256).map((e) => e[1]));
    const magnitude = mse(tf.tensor(w0.data.map((w, q) => (keep.has(q) ? w : 0)), shape));
    expect(trainedLoss).toBeLessThan(0.5 * magnitude);
    expect(() => model.unmerge()).toThrow(/PST's merge removes the weights outside M/);
  });

  it('refuses densify, unmerge and bad levels or configs, naming them', () => {
    const rng = new Random(6);
    const base = randn(rng, [4, 8]);
    const s = pstVariant.init(base, {}, rng);
    expect(() => pstVariant.merge(base, s, { densify: true })).toThrow(/pst\.merge: densify has no meaning for PST/);
    expect(() => pstVariant.unmerge(base, s)).toThrow(/pst\.unmerge: PST's merge removes the weights outside M/);
    const bad = { ...s, params: { ...s.params, pst_sparsity: tensor(Float32Array.of(-0.1), [1]) as Float32Tensor } };
    expect(() => pstVariant.forward(randn(rng, [2, 8]), base, bad)).toThrow(/pst\.forward: params\.pst_sparsity must be in \[0, 1\), got -0\.1/);
    const { pst_R: _r, ...noR } = s.params;
    expect(() => pstVariant.delta({ ...s, params: noR }, base)).toThrow(/pst\.delta: params\.pst_R must be float32 \[4\], got nothing/);
    expect(() => pstVariant.merge(randn(rng, [4, 9]), s)).toThrow(/base is \[4, 9\]/);
    for (const [cfg, field] of [[{ sparsity: 1 }, /sparsity/], [{ r: 0 }, /r:/], [{ alpha1: -1 }, /alpha1/], [{ scheduleEnd: 0 }, /scheduleEnd/], [{ rank: 2 }, /rank/]] as const) {
      expect(() => pstVariant.parseConfig(cfg)).toThrow(new RegExp(`pst: invalid config: .*${field.source}`));
    }
  });
});
