import { Random, svd, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { cordaComponents, cordaVariant } from './variant.js';
import { inputCovariance } from '../helpers/family.js';
import { describeFamilyVariant, randn, refMatmul, refTranspose, values } from '../helpers/family-testing.js';

const calib = randn(new Random(7), [40, 16]);
describeFamilyVariant({
  name: 'corda',
  config: { r: 3, inputs: calib },
  closedForm: ([out, inp]) => 3 * (out + inp),
  referenceDelta: (s) => {
    const ba = refMatmul(values(s.params.corda_B!), values(s.params.corda_A!), 12, 3, 16);
    const ba0 = refMatmul(values(s.params.corda_B0!), values(s.params.corda_A0!), 12, 3, 16);
    return ba.map((v, k) => v - ba0[k]!);
  },
  badConfigs: [
    [{ mode: 'ipa' }, /mode/],
    [{ covariance: 3 }, /covariance/],
    [{ damping: 0 }, /damping/],
  ],
});

const sumSq = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v * v, 0);

describe('corda specifics', () => {
  const rng = new Random(3);
  const base = randn(rng, [8, 10]);
  const x = randn(rng, [30, 10]);
  // An uneven covariance, so that the orientation matters.
  for (let k = 0; k < x.data.length; k++) x.data[k] = x.data[k]! * (1 + (k % 10));
  const cov = inputCovariance(x).data;

  it('inputCovariance is xᵀx / n', () => {
    const ref = refMatmul(refTranspose(values(x), 30, 10), values(x), 10, 30, 10);
    for (let k = 0; k < 100; k++) expect(cov[k]).toBeCloseTo(ref[k]! / 30, 6);
  });

  for (const mode of ['instruction-previewed', 'knowledge-preserved'] as const) {
    it(`${mode}: B₀A₀·C is the ${mode === 'instruction-previewed' ? 'largest' : 'smallest'} r components of W C`, () => {
      const { b, a, damped } = cordaComponents(base, cov, { r: 3, mode, damping: 1e-4 });
      const m0c = refMatmul(refMatmul(values(b), values(a), 8, 3, 10), damped, 8, 10, 10);
      const wc = refMatmul(values(base), damped, 8, 10, 10);
      const sigma = Array.from(svd(tensor(wc, [8, 10])).s.data as Float64Array);
      const scale = sumSq(sigma);
      if (mode === 'instruction-previewed') {
        expect(sumSq(wc.map((v, k) => v - m0c[k]!)) / scale).toBeCloseTo(sumSq(sigma.slice(3)) / scale, 5);
      } else {
        expect(sumSq(m0c) / scale).toBeCloseTo(sumSq(sigma.slice(5)) / scale, 5);
      }
      // All min(out, in) components together give W back.
      const all = cordaComponents(base, cov, { r: 8, mode, damping: 1e-4 });
      const w = refMatmul(values(all.b), values(all.a), 8, 8, 10);
      for (let k = 0; k < 80; k++) expect(w[k]).toBeCloseTo(base.data[k]!, 4);
    });
  }

  it('inputs and the matching covariance build the same adapter; calibration is not kept in the state', () => {
    const a = cordaVariant.init(base, { r: 2, inputs: x }, new Random(1));
    const c = cordaVariant.init(base, { r: 2, covariance: tensor(Float32Array.from(cov), [10, 10]) }, new Random(1));
    for (let k = 0; k < a.params.corda_B0!.data.length; k++) expect(a.params.corda_B0!.data[k]).toBeCloseTo(c.params.corda_B0!.data[k]!, 3);
    expect(a.config).toEqual({ r: 2, mode: 'instruction-previewed', damping: 1e-4 });
  });

  it('init errors name the calibration fields', () => {
    expect(() => cordaVariant.init(base, { r: 2 }, new Random(1))).toThrow(/corda.init: config.covariance .* or config.inputs .* is required/);
    expect(() => cordaVariant.init(base, { r: 2, inputs: x, covariance: x }, new Random(1))).toThrow(/not both/);
    expect(() => cordaVariant.init(base, { r: 2, covariance: randn(rng, [9, 9]) }, new Random(1))).toThrow(/config.covariance is \[9, 9\]/);
    expect(() => cordaVariant.init(base, { r: 2, inputs: tensor(new Float32Array(20), [2, 10]) }, new Random(1))).toThrow(/zero .*trace/);
    expect(() => cordaVariant.init(base, { r: 9, inputs: x }, new Random(1))).toThrow(/r = 9 exceeds/);
  });
});
