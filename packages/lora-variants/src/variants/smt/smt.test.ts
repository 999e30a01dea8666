import { SquaredGradientAccumulator } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { smtVariant } from './variant.js';
import { describeVariantContract, randn } from '../helpers/sparse-testing.js';

describeVariantContract({
  name: 'smt',
  config: { blockSize: 4, blocks: 12 },
  closedForm: (_s, c) => (c.blocks as number) * (c.blockSize as number) ** 2,
  referenceDelta(state) {
    const s = state as IndexedAdapterState<{ blockSize: number }>;
    const [out, inp] = s.shape;
    const bs = s.config.blockSize;
    const d = new Float64Array(out * inp);
    s.indices.blocks!.forEach((b, q) => {
      const bi = Math.floor(b / (inp / bs));
      const bj = b % (inp / bs);
      for (let p = 0; p < bs; p++) for (let t = 0; t < bs; t++) d[(bi * bs + p) * inp + bj * bs + t] = s.params.smt_blocks!.data[q * bs * bs + p * bs + t]!;
    });
    return d;
  },
  densifyChangesMask: true,
  train: { below: 0.85 },
  badConfigs: [[{ blockSize: 0 }, /blockSize/], [{ blocks: 1.5 }, /blocks/], [{ score: 'grad' }, /score/]],
});

describe('smt block selection', () => {
  it('initWithScores picks the blocks with the largest summed scores (brute force over every block)', () => {
    const rng = new Random(1);
    const base = randn(rng, [12, 16]);
    const acc = new SquaredGradientAccumulator([12, 16]);
    for (let t = 0; t < 3; t++) acc.add(randn(rng, [12, 16]));
    const scores = acc.mean();
    const s = smtVariant.initWithScores(base, { blockSize: 4, blocks: 3 }, rng, scores);
    const sums: [number, number][] = [];
    for (let bi = 0; bi < 3; bi++) for (let bj = 0; bj < 4; bj++) {
      let v = 0;
      for (let p = 0; p < 4; p++) for (let t = 0; t < 4; t++) v += scores.data[(bi * 4 + p) * 16 + bj * 4 + t]!;
      sums.push([v, bi * 4 + bj]);
    }
    const expected = sums.sort((a, b) => b[0] - a[0]).slice(0, 3).map((e) => e[1]).sort((a, b) => a - b);
    expect(Array.from(s.indices.blocks!)).toEqual(expected);
    expect(s.params.smt_blocks!.shape).toEqual([3, 4, 4]);
  });

  it('errors name blockSize and blocks', () => {
    const base = randn(new Random(2), [12, 16]);
    expect(() => smtVariant.init(base, { blockSize: 5 }, new Random(0))).toThrow(/blockSize 5 must divide both dimensions of the weight \[12, 16\]/);
    expect(() => smtVariant.init(base, { blockSize: 4, blocks: 13 }, new Random(0))).toThrow(/blocks 13 exceeds the 12 blocks/);
  });
});
