import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { s2ftPermutation, s2ftVariant } from './variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeVariantContract, perturb, randn, refMatmulT, expectClose } from '../helpers/sparse-testing.js';

function refDelta(state: unknown): Float64Array {
  const s = state as IndexedAdapterState<{ axis: string }>;
  const [out, inp] = s.shape;
  const ch = Array.from(s.indices.channels!);
  const D = s.params.s2ft_block!;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    const t = ch.indexOf(s.config.axis === 'row' ? i : j);
    if (t >= 0) d[i * inp + j] = s.config.axis === 'row' ? D.data[t * inp + j]! : D.data[i * ch.length + t]!;
  }
  return d;
}

const closedForm = ([out, inp]: readonly [number, number], c: Record<string, unknown>) =>
  (c.groups as number) * ((c.groupSize as number) ?? 1) * (c.axis === 'column' ? out : inp);

describeVariantContract({
  name: 's2ft',
  label: 'row',
  config: { axis: 'row', groupSize: 4, groups: 2 },
  closedForm,
  referenceDelta: refDelta,
  densifyChangesMask: true,
  train: { below: 0.85 },
  badConfigs: [[{ axis: 'heads' }, /axis/], [{ groups: 0 }, /groups/], [{ groupSize: 2.5 }, /groupSize/], [{ selection: 'best' }, /selection/]],
});

describeVariantContract({
  name: 's2ft',
  label: 'column',
  config: { axis: 'column', groupSize: 2, groups: 6, selection: 'magnitude' },
  closedForm,
  referenceDelta: refDelta,
  densifyChangesMask: true,
  train: { below: 0.85 },
  badConfigs: [],
});

describe('s2ft selection and co-permutation', () => {
  it('magnitude picks the groups with the largest summed |W|; initWithScores uses the given scores', () => {
    const rng = new Random(1);
    const base = randn(rng, [12, 8]);
    for (let j = 0; j < 8; j++) base.data[4 * 8 + j] = 10; // row 4 → group 2 (rows 4, 5)
    const s = s2ftVariant.init(base, { groupSize: 2, groups: 1, selection: 'magnitude' }, rng);
    expect(Array.from(s.indices.channels!)).toEqual([4, 5]);
    const scores = randn(rng, [12, 8]).data.map(() => 0);
    scores[11 * 8 + 3] = 1; // row 11 → group 5
    const byScore = s2ftVariant.initWithScores(base, { groupSize: 2, groups: 1 }, rng, { data: scores, shape: [12, 8], stride: [8, 1], offset: 0, dtype: 'float32' });
    expect(Array.from(byScore.indices.channels!)).toEqual([10, 11]);
  });

  it('random selection is reproducible and whole groups are selected', () => {
    const base = randn(new Random(2), [16, 8]);
    const a = s2ftVariant.init(base, { groupSize: 4, groups: 2 }, new Random(9)).indices.channels!;
    expect(a).toEqual(s2ftVariant.init(base, { groupSize: 4, groups: 2 }, new Random(9)).indices.channels!);
    expect(a.length).toBe(8);
    for (let t = 0; t < 8; t += 4) {
      expect(a[t]! % 4).toBe(0);
      for (let q = 1; q < 4; q++) expect(a[t + q]).toBe(a[t]! + q);
    }
  });

  it('with the co-permutation, ΔW is a dense leading block: rows P ΔW = [D; 0]', () => {
    const rng = new Random(3);
    const base = randn(rng, [12, 6]);
    const s = perturb(s2ftVariant.init(base, { groupSize: 3, groups: 2 }, rng), rng);
    const perm = s2ftPermutation(s);
    expect(Array.from(perm).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, q) => q));
    const d = s2ftVariant.delta(s, base);
    for (let p = 0; p < 12; p++) for (let j = 0; j < 6; j++) {
      const v = d.data[perm[p]! * 6 + j]!;
      expect(v).toBe(p < 6 ? s.params.s2ft_block!.data[p * 6 + j]! : 0);
    }
    // Only the selected outputs change in the forward.
    const x = randn(rng, [3, 6]);
    const y0 = refMatmulT(x, base);
    const y = s2ftVariant.forward(x, base, s);
    const sel = new Set(s.indices.channels!);
    for (let a = 0; a < 3; a++) for (let i = 0; i < 12; i++) if (!sel.has(i)) expectClose([y.data[a * 12 + i]!], [y0[a * 12 + i]!], 1e-6);
  });

  it('shape errors name groupSize and groups', () => {
    const base = randn(new Random(4), [10, 8]);
    expect(() => s2ftVariant.init(base, { groupSize: 3 }, new Random(0))).toThrow(/groupSize 3 does not divide the rows axis \(10\)/);
    expect(() => s2ftVariant.init(base, { axis: 'column', groupSize: 4, groups: 3 }, new Random(0))).toThrow(/groups 3 exceeds the 2 groups of 4 columns/);
  });
});
