import { Random, svd } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { svfitVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'svfit',
  config: { r: 5 },
  closedForm: () => 5,
  referenceDelta: (s) => {
    const u = values(s.params.svfit_U!);
    const d = s.params.svfit_delta!.data;
    return refMatmul(u.map((v, k) => v * d[k % 5]!), values(s.params.svfit_V!), 12, 5, 16);
  },
  badConfigs: [[{ r: -2 }, /r:/]],
  perturbStd: 1,
});

describe('svfit specifics', () => {
  it('the frozen vectors are W’s top singular vectors: δ = −σ removes the top-r part', () => {
    const base = randn(new Random(5), [9, 12]);
    const s = svfitVariant.init(base, { r: 4 }, new Random(6));
    const sigma = Array.from(svd(base).s.data as Float32Array);
    s.params.svfit_delta!.data.set(sigma.slice(0, 4).map((v) => -v));
    const w = svfitVariant.merge(base, s, { densify: true });
    const rest = svd(w).s.data as Float32Array;
    // What is left has the remaining singular values only.
    for (let i = 0; i < 5; i++) expect(rest[i]).toBeCloseTo(sigma[i + 4]!, 4);
    for (let i = 5; i < 9; i++) expect(rest[i]).toBeCloseTo(0, 4);
  });
});
