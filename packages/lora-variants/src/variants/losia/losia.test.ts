import { equals, maskFromTensor } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { losiaRelocalize, losiaVariant } from './variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeVariantContract, expectClose, perturb, prune24, randn, refMatmulT } from '../helpers/sparse-testing.js';

const closedForm = ([out, inp]: readonly [number, number], c: Record<string, unknown>) =>
  Math.max(1, Math.round((c.rows as number) * out)) * Math.max(1, Math.round((c.cols as number) * inp));

describeVariantContract({
  name: 'losia',
  config: { rows: 0.5, cols: 0.5 },
  closedForm,
  referenceDelta(state) {
    const s = state as IndexedAdapterState;
    const [out, inp] = s.shape;
    const R = Array.from(s.indices.rows!);
    const C = Array.from(s.indices.cols!);
    const d = new Float64Array(out * inp);
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
      const [p, q] = [R.indexOf(i), C.indexOf(j)];
      if (p >= 0 && q >= 0) d[i * inp + j] = s.params.losia_core!.data[p * C.length + q]!;
    }
    return d;
  },
  densifyChangesMask: true,
  train: { below: 0.85 },
  badConfigs: [[{ rows: 0 }, /rows/], [{ cols: 2 }, /cols/], [{ score: 'fisher' }, /score/]],
});

describe('losia localization', () => {
  it('picks rows by summed score, then columns by summed score within those rows (brute force)', () => {
    const rng = new Random(1);
    const base = randn(rng, [10, 12]);
    const S = randn(rng, [10, 12]);
    S.data.forEach((v, k) => (S.data[k] = Math.abs(v)));
    const s = losiaVariant.initWithScores(base, { rows: 0.3, cols: 0.25 }, rng, S);
    const rowSums = Array.from({ length: 10 }, (_, i) => [S.data.slice(i * 12, i * 12 + 12).reduce((a, b) => a + b, 0), i] as const);
    const R = rowSums.sort((a, b) => b[0] - a[0]).slice(0, 3).map((e) => e[1]).sort((a, b) => a - b);
    const colSums = Array.from({ length: 12 }, (_, j) => [R.reduce((a, i) => a + S.data[i * 12 + j]!, 0), j] as const);
    const C = colSums.sort((a, b) => b[0] - a[0]).slice(0, 3).map((e) => e[1]).sort((a, b) => a - b);
    expect(Array.from(s.indices.rows!)).toEqual(R);
    expect(Array.from(s.indices.cols!)).toEqual(C);
    expect(s.params.losia_core!.shape).toEqual([3, 3]);
  });

  it('relocalize keeps the adapted function, keeps a 2:4 mask, and moves the subnet to the new scores', () => {
    const rng = new Random(2);
    const base = randn(rng, [8, 16]);
    const mask = prune24(base);
    const s = perturb(losiaVariant.init(base, { rows: 0.25, cols: 0.25 }, rng), rng);
    const x = randn(rng, [4, 16]);
    const before = refMatmulT(x, losiaVariant.merge(base, s));
    const newScores = randn(rng, [8, 16]);
    newScores.data.forEach((v, k) => (newScores.data[k] = Math.abs(v)));
    const next = losiaRelocalize(base, s, newScores, rng);
    expect(equals(maskFromTensor(next.base), mask)).toBe(true);
    expect(next.state.params.losia_core!.data.every((v) => v === 0)).toBe(true);
    expectClose(losiaVariant.forward(x, next.base, next.state).data, before, 1e-5);
    expect(Array.from(next.state.indices.rows!)).toEqual(Array.from(losiaVariant.initWithScores(next.base, s.config, rng, newScores).indices.rows!));
    expect(() => losiaRelocalize(base, { ...s, variant: 'lora' }, newScores, rng)).toThrow(/not 'losia'/);
  });
});
