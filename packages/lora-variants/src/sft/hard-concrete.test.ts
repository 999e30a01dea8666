import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import {
  expectedL0,
  extractDiffPruningDelta,
  hardConcreteFromUniform,
  hardConcreteGate,
  hardConcreteParams,
  hardConcreteProbNonzero,
  sampleHardConcrete,
} from './hard-concrete.js';

const P = hardConcreteParams();
const logit = (p: number) => Math.log(p / (1 - p));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** P(z <= t) for 0 <= t < 1, derived by inverting the sampler: z <= t iff u <= u*(t). */
function cdf(logAlpha: number, t: number): number {
  const s = (t - P.gamma) / (P.zeta - P.gamma);
  return sigmoid(P.beta * logit(s) - logAlpha);
}

describe('hard-concrete gate', () => {
  it('closed-form P(z > 0) equals 1 − the CDF at 0 from the inverted sampler, and expectedL0 sums it', () => {
    const las = [-4, -1, 0, 0.5, 2, 6];
    for (const la of las) expect(hardConcreteProbNonzero(la)).toBeCloseTo(1 - cdf(la, 0), 12);
    expect(expectedL0(las)).toBeCloseTo(las.reduce((s, la) => s + 1 - cdf(la, 0), 0), 10);
    // with the defaults the shift is β log(−γ/ζ) = (2/3) log(0.1/1.1)
    expect(hardConcreteProbNonzero(0)).toBeCloseTo(sigmoid(-(2 / 3) * Math.log(0.1 / 1.1)), 12);
  });

  it('sampled gates follow the analytic distribution (P(z > 0), P(z = 1), CDF at interior points)', () => {
    const n = 100_000;
    for (const la of [-1.5, 0, 1.2]) {
      const z = sampleHardConcrete(new Float32Array(n).fill(la), new Random(11));
      const tol = (p: number) => 5 * Math.sqrt((p * (1 - p)) / n);
      const pNonzero = hardConcreteProbNonzero(la);
      const fracNonzero = z.filter((x) => x > 0).length / n;
      expect(Math.abs(fracNonzero - pNonzero)).toBeLessThan(tol(pNonzero));
      const pOne = 1 - cdf(la, 1 - 1e-12);
      expect(Math.abs(z.filter((x) => x === 1).length / n - pOne)).toBeLessThan(tol(pOne));
      for (const t of [0.25, 0.5, 0.75]) {
        const p = cdf(la, t);
        expect(Math.abs(z.filter((x) => x <= t).length / n - p)).toBeLessThan(tol(p));
      }
      expect(z.every((x) => x >= 0 && x <= 1)).toBe(true);
    }
  });

  it('sampling is the formula applied to seeded uniforms, and the test-time gate is clamp(σ(log α)(ζ − γ) + γ)', () => {
    expect(hardConcreteFromUniform(0, 0.5, P)).toBeCloseTo(0.5, 12);
    expect(hardConcreteFromUniform(3, 0.5, P)).toBe(1);
    expect([...hardConcreteGate([0, -10, 10, 1])].map((x) => Math.round(x * 1e6) / 1e6)).toEqual([0.5, 0, 1, Math.round((sigmoid(1) * 1.2 - 0.1) * 1e6) / 1e6]);
    const a = sampleHardConcrete([0, 1, 2], new Random(3));
    const b = sampleHardConcrete([0, 1, 2], new Random(3));
    expect(a).toEqual(b);
  });

  it('refuses parameters that make the gate unable to reach 0 or 1', () => {
    expect(() => hardConcreteParams({ gamma: 0.1 })).toThrow(ArgumentError);
    expect(() => hardConcreteParams({ zeta: 1 })).toThrow(/zeta/);
    expect(() => hardConcreteParams({ beta: 0 })).toThrow(/beta/);
  });
});

describe('extractDiffPruningDelta', () => {
  it('keeps exactly the entries with a nonzero deterministic gate and value (brute force)', () => {
    const rng = new Random(5);
    const [o, i] = [5, 7];
    const la = Float32Array.from({ length: o * i }, () => rng.uniform(-6, 4));
    const w = Float32Array.from({ length: o * i }, (_, k) => (k % 9 === 0 ? 0 : rng.normal()));
    const d = extractDiffPruningDelta([o, i], w, la);
    const gate = hardConcreteGate(la);
    const expected = [...Array(o * i).keys()].filter((k) => gate[k]! > 0 && w[k] !== 0);
    expect([...d.indices]).toEqual(expected);
    expected.forEach((k, j) => expect(d.values[j]).toBe(Math.fround(gate[k]! * w[k]!)));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(o * i);
    // maxCount keeps the largest |ẑ w|
    const top = extractDiffPruningDelta([o, i], w, la, { maxCount: 3 });
    const best = expected.sort((a, b) => Math.abs(gate[b]! * w[b]!) - Math.abs(gate[a]! * w[a]!)).slice(0, 3).sort((a, b) => a - b);
    expect([...top.indices]).toEqual(best);
    expect(() => extractDiffPruningDelta([o, i], w.subarray(1), la)).toThrow(ShapeError);
  });
});
