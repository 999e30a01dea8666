import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { ssfVariant } from './ssf.js';
import { describeFamilyVariant, randn, values } from './testing.js';

describeFamilyVariant({
  name: 'ssf',
  config: {},
  closedForm: ([out]) => out,
  referenceDelta: (s, base) => values(base).map((w, k) => (s.params.ssf_scale!.data[Math.floor(k / 16)]! - 1) * w),
  badConfigs: [
    [{ shift: true }, /shift/],
    [5, /\(config\)/],
  ],
  deltaFollowsBase: true,
  perturbMean: { ssf_scale: 1 },
});

describe('ssf specifics', () => {
  it('a negative scale keeps pruned zeros as +0; a zero scale cannot be unmerged', () => {
    const base = randn(new Random(1), [3, 4]);
    base.data[1] = 0;
    const s = ssfVariant.init(base, {}, new Random(1));
    s.params.ssf_scale!.data.set([-1, 2, 0.5]);
    const m = ssfVariant.merge(base, s);
    expect(Object.is(m.data[1], 0)).toBe(true);
    expect(m.data[0]).toBe(-base.data[0]!);
    expect(m.data[4]).toBeCloseTo(2 * base.data[4]!, 6);
    s.params.ssf_scale!.data[2] = 0;
    expect(() => ssfVariant.unmerge(m, s)).toThrow(/ssf.unmerge: scale γ is 0 at row 2/);
  });
});
