import { svd, Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { loraXSVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'lora-xs',
  config: { r: 4 },
  closedForm: () => 16,
  referenceDelta: (s) => refMatmul(refMatmul(values(s.params.xs_B!), values(s.params.xs_R!), 12, 4, 4), values(s.params.xs_A!), 12, 4, 16),
  badConfigs: [
    [{ r: 1.5 }, /r:/],
    [{ rank: 4 }, /rank/],
  ],
});

describe('lora-xs specifics', () => {
  it('B A is the best rank-r approximation of W (Eckart–Young residual), A has orthonormal rows', () => {
    const base = randn(new Random(3), [10, 14]);
    const s = loraXSVariant.init(base, { r: 3 }, new Random(4));
    const ba = refMatmul(values(s.params.xs_B!), values(s.params.xs_A!), 10, 3, 14);
    const sigma = Array.from(svd(base).s.data as Float32Array);
    const resid = values(base).reduce((acc, w, k) => acc + (w - ba[k]!) ** 2, 0);
    expect(resid).toBeCloseTo(sigma.slice(3).reduce((a, v) => a + v * v, 0), 3);
    const a = values(s.params.xs_A!);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let d = 0;
      for (let k = 0; k < 14; k++) d += a[i * 14 + k]! * a[j * 14 + k]!;
      expect(d).toBeCloseTo(i === j ? 1 : 0, 5);
    }
    // R = I doubles the rank-r part: ΔW = B A
    s.params.xs_R!.data.set([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const d = loraXSVariant.delta(s, base);
    for (let k = 0; k < d.data.length; k++) expect(d.data[k]).toBeCloseTo(ba[k]!, 5);
  });

  it('refuses a rank above min(out, in), naming r', () => {
    expect(() => loraXSVariant.init(randn(new Random(1), [5, 8]), { r: 6 }, new Random(1))).toThrow(/lora-xs.init: r = 6 exceeds min\(out, in\) = 5/);
  });
});
