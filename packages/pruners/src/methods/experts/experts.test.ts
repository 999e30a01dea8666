import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expertPruneConfigSchema, expertsToKeep, RoutingAccumulator } from './experts.js';

describe('expert pruning', () => {
  it('accumulates routing frequency and gate mass per token', () => {
    const acc = new RoutingAccumulator(4);
    // 3 tokens, top-2
    acc.add([0, 1, 0, 2, 3, 0], [0.6, 0.4, 0.9, 0.1, 0.5, 0.5], 2);
    expect(acc.tokens).toBe(3);
    expect(Array.from(acc.scores('frequency'))).toEqual([3 / 3, 1 / 3, 1 / 3, 1 / 3]);
    const g = acc.scores('gate');
    [2.0 / 3, 0.4 / 3, 0.1 / 3, 0.5 / 3].forEach((x, i) => expect(g[i]).toBeCloseTo(x, 12));
  });

  it('keeps the highest scores, ties to the lower index (equals a brute-force subset search)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 7 }), fc.nat(), (scores, k0) => {
        const keep = (k0 % scores.length) + 1;
        const got = expertsToKeep(scores, keep);
        // brute force: among all subsets of size keep, the max total score; ties by lexicographically smallest index set
        let best: number[] | undefined;
        let bestSum = -Infinity;
        for (let mask = 0; mask < 1 << scores.length; mask++) {
          const set = scores.map((_, i) => i).filter((i) => (mask >> i) & 1);
          if (set.length !== keep) continue;
          const sum = set.reduce((s, i) => s + scores[i]!, 0);
          if (sum > bestSum || (sum === bestSum && set.join(',') < best!.join(','))) {
            best = set;
            bestSum = sum;
          }
        }
        expect(got.reduce((s, i) => s + scores[i]!, 0)).toBe(bestSum);
        // among equal-sum sets ours keeps lower indices at each score level
        expect(got).toEqual([...got].sort((a, b) => a - b));
      }),
    );
    expect(expertsToKeep([1, 3, 3, 0], 2)).toEqual([1, 2]);
    expect(expertsToKeep([2, 2, 2, 2], 2)).toEqual([0, 1]);
  });

  it('rejects bad input, naming it', () => {
    expect(() => new RoutingAccumulator(2).add([0, 2], [0.5, 0.5], 1)).toThrow(/expert index 2/);
    expect(() => new RoutingAccumulator(2, { name: 'h.0.mlp' }).add([0], [0.5, 0.5], 1)).toThrow(/h\.0\.mlp/);
    expect(() => expertsToKeep([1, 2, 3], 1, 2)).toThrow(/topK/);
    expect(expertPruneConfigSchema.safeParse({ keep: 0 }).success).toBe(false);
  });
});
