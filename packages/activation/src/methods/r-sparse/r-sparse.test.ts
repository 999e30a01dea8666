import { ArgumentError, ConfigError, parseConfig, Random, svd, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import type { SiteWeight } from '../../types.js';
import { denseProduct, linearSite, normalActs, relativeError, sampleOf, weightOf, zeroFraction } from '../testing.js';
import { rSparseConfigSchema } from './config.js';
import { rSparseMethod } from './r-sparse.js';

const parse = (c: unknown) => parseConfig(rSparseConfigSchema, c, 'r-sparse');
const site = (f: number, out: number) => linearSite('h.0.attn.c_proj.weight', 'attn.out', f, out);

/** A weight with singular values decaying as 0.7^k (random orthogonal-ish factors). */
function decayingWeight(rng: Random, out: number, inF: number): SiteWeight {
  const { u, v } = svd(tensor(Float64Array.from({ length: out * inF }, () => rng.normal()), [out, inF]));
  const k = Math.min(out, inF);
  const data = new Float32Array(out * inF);
  for (let r = 0; r < k; r++) {
    for (let o = 0; o < out; o++) for (let j = 0; j < inF; j++) data[o * inF + j]! += Number(u.data[o * k + r]!) * 0.7 ** r * Number(v.data[j * k + r]!);
  }
  return { data, out, in: inF };
}

/** W_r = sum over the r largest singular triplets of s u vᵀ, from the full Jacobi SVD (the slow way). */
function rankR(w: SiteWeight, r: number): SiteWeight {
  const { u, s, v } = svd(tensor(Float64Array.from(w.data), [w.out, w.in]));
  const k = Math.min(w.out, w.in);
  const data = new Float32Array(w.out * w.in);
  for (let q = 0; q < r; q++) {
    for (let o = 0; o < w.out; o++) for (let j = 0; j < w.in; j++) data[o * w.in + j]! += Number(u.data[o * k + q]!) * Number(s.data[q]!) * Number(v.data[j * k + q]!);
  }
  return { data, out: w.out, in: w.in };
}

describe('r-sparse', () => {
  it('correction equals (x - x_s) W_rᵀ computed densely from the full SVD', () => {
    const rng = new Random(1);
    for (const [out, inF, rank, tol] of [[12, 10, 3, 1e-5], [40, 30, 6, 1e-4], [16, 24, 16, 1e-5]] as const) {
      const w = decayingWeight(rng, out, inF);
      const x = normalActs(rng, 20, inF);
      const [sp] = rSparseMethod.calibrate(parse({ sparsity: 0.5, rank }), [sampleOf(site(inF, out), x, w)]);
      const xs = x.slice();
      sp!.apply(xs, 20);
      const corr = sp!.correction!(x, xs, 20);
      const diff = x.map((v, i) => v - xs[i]!);
      const ref = denseProduct(diff, 20, rankR(w, rank));
      expect(corr).toHaveLength(20 * out);
      expect(relativeError(ref, corr)).toBeLessThan(tol * tol);
      // The factors the /tfjs subpath multiplies by give the same product.
      const f = sp!.correctionFactors!;
      expect([f.in, f.out, f.rank]).toEqual([inF, out, rank]);
    }
  });

  it('the correction lowers the output error versus sparse-only at equal sparsity; full rank restores the dense output', () => {
    const rng = new Random(2);
    const w = decayingWeight(rng, 32, 48);
    const x = normalActs(rng, 64, 48);
    const y = denseProduct(x, 64, w);
    for (const sparsity of [0.3, 0.5, 0.8]) {
      for (const rank of [2, 8]) {
        const [sp] = rSparseMethod.calibrate(parse({ sparsity, rank }), [sampleOf(site(48, 32), x, w)]);
        const xs = x.slice();
        sp!.apply(xs, 64);
        expect(zeroFraction(xs)).toBeCloseTo(Math.round(sparsity * 48) / 48, 12);
        const sparseOnly = denseProduct(xs, 64, w);
        const corr = sp!.correction!(x, xs, 64);
        const corrected = sparseOnly.map((v, i) => v + corr[i]!);
        expect(relativeError(y, corrected)).toBeLessThan(0.5 * relativeError(y, sparseOnly));
      }
    }
    const [full] = rSparseMethod.calibrate(parse({ sparsity: 0.7, rank: 32 }), [sampleOf(site(48, 32), x, w)]);
    const xs = x.slice();
    full!.apply(xs, 64);
    const corr = full!.correction!(x, xs, 64);
    expect(relativeError(y, denseProduct(xs, 64, w).map((v, i) => v + corr[i]!))).toBeLessThan(1e-10);
  });

  it('rank from lowRankFraction, rank 0 adds nothing', () => {
    const rng = new Random(3);
    const w = weightOf(rng, 20, 40);
    const s = sampleOf(site(40, 20), normalActs(rng, 4, 40), w);
    expect((rSparseMethod.calibrate(parse({}), [s])[0]!.state() as { rank: number }).rank).toBe(2);
    expect((rSparseMethod.calibrate(parse({ lowRankFraction: 0.5 }), [s])[0]!.state() as { rank: number }).rank).toBe(10);
    expect((rSparseMethod.calibrate(parse({ rank: 99 }), [s])[0]!.state() as { rank: number }).rank).toBe(20);
    const [zero] = rSparseMethod.calibrate(parse({ rank: 0 }), [s]);
    const xs = s.x.slice();
    zero!.apply(xs, 4);
    expect(Array.from(zero!.correction!(s.x, xs, 4)).every((v) => v === 0)).toBe(true);
  });

  it('restores from state and the weight to identical outputs and corrections; refuses bad input', () => {
    const rng = new Random(4);
    const w = decayingWeight(rng, 16, 24);
    const config = parse({ sparsity: 0.6, rank: 4 });
    const [sp] = rSparseMethod.calibrate(config, [sampleOf(site(24, 16), normalActs(rng, 8, 24), w)]);
    const back = rSparseMethod.restore(config, site(24, 16), JSON.parse(JSON.stringify(sp!.state())), w);
    const x = normalActs(rng, 5, 24);
    const a = x.slice();
    const b = x.slice();
    expect(back.apply(b, 5)).toBe(sp!.apply(a, 5));
    expect(b).toEqual(a);
    expect(back.correction!(x, b, 5)).toEqual(sp!.correction!(x, a, 5));
    expect(() => rSparseMethod.restore(config, site(24, 16), sp!.state())).toThrow(/needs the consuming weight/);
    expect(() => rSparseMethod.restore(config, site(24, 16), { keep: 3, rank: 17 }, w)).toThrow(ArgumentError);
    expect(() => sp!.correction!(x, a.subarray(1), 5)).toThrow(/sparse has 119 values/);
    expect(() => parse({ rank: 2, lowRankFraction: 0.2 })).toThrow(/either rank or lowRankFraction/);
    expect(() => parse({ rank: -1 })).toThrow(ConfigError);
  });
});
