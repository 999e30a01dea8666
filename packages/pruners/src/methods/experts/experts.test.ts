import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expertDropsAt, expertPruneConfigSchema, expertsToDrop, expertsToKeep, renormalizedRouting, RoutingAccumulator } from './experts.js';

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
    expect(() => expertsToKeep([1, 2, 3], 4)).toThrow(/keep must be in 1\.\.3/);
    expect(() => expertsToDrop([1, 2, 3], [0, 1], 3)).toThrow(/count/);
    expect(() => renormalizedRouting([0, 1], 1, 2, [2], 1)).toThrow(/kept expert 2/);
    expect(expertPruneConfigSchema.safeParse({ keep: 0 }).error!.issues[0]!.path).toEqual(['keep']);
    expect(expertPruneConfigSchema.safeParse({ keep: 1, progressive: { steps: 4, every: 0 } }).error!.issues[0]!.path).toEqual(['progressive', 'every']);
  });

  it('counts equal a brute-force tally of the routing decisions (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.array(fc.tuple(fc.nat(), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 3, maxLength: 30 }), (experts, k0, pairs) => {
        const topK = Math.min(k0, experts);
        const tokens = Math.floor(pairs.length / topK); // at least 1: 3 or more pairs, topK at most 3
        const used = pairs.slice(0, tokens * topK);
        const acc = new RoutingAccumulator(experts).add(used.map(([e]) => e % experts), used.map(([, g]) => g), topK);
        for (let e = 0; e < experts; e++) {
          const mine = used.filter(([x]) => x % experts === e);
          expect(acc.scores('frequency')[e]).toBeCloseTo(mine.length / tokens, 12);
          expect(acc.scores('gate')[e]).toBeCloseTo(mine.reduce((s, [, g]) => s + g, 0) / tokens, 12);
        }
        // the state round trip continues the same tallies
        const again = new RoutingAccumulator(experts).load(acc.state());
        expect(again.state()).toEqual(acc.state());
        expect(acc.reset().tokens).toBe(0);
      }),
    );
  });

  it('expertsToDrop: the lowest scores among the active experts, ties drop the higher index (brute force)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 7 }), fc.nat(), fc.nat(), (scores, a0, c0) => {
        const active = scores.map((_, e) => e).filter((e) => ((a0 >> e) & 1) === 1 || e === 0);
        const count = c0 % (active.length + 1);
        const got = expertsToDrop(scores, active, count);
        // brute force: among all subsets of `active` of size count, the lowest total score; ties: the set whose
        // complement in `active` is the lexicographically smallest (the lower indices stay)
        let best: number[] | undefined;
        for (let m = 0; m < 1 << active.length; m++) {
          const set = active.filter((_, i) => (m >> i) & 1);
          if (set.length !== count) continue;
          const sum = (x: number[]) => x.reduce((s, e) => s + scores[e]!, 0);
          const rest = (x: number[]) => active.filter((e) => !x.includes(e)).join(',');
          if (best === undefined || sum(set) < sum(best) || (sum(set) === sum(best) && rest(set) < rest(best))) best = set;
        }
        expect(got).toEqual(best);
      }),
    );
  });

  it('expertDropsAt: the schedule equals a step-by-step simulation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), (experts, k, every, drop) => {
        const keep = Math.min(k, experts);
        let active = experts;
        for (let step = 1; step <= 60; step++) {
          const want = step % every === 0 && active > keep ? Math.min(drop, active - keep) : 0;
          expect(expertDropsAt(step, { experts, keep, every, drop })).toBe(want);
          active -= want;
        }
        expect(active).toBe(keep);
      }),
    );
  });

  it('renormalizedRouting: top-min(k, kept) of the kept logits, gates = their softmax (hand-computed)', () => {
    // 2 tokens, 4 experts, kept {1, 3}, router top-3 -> each token goes to both kept experts
    const logits = [0.5, 2, 9, 1, /* token 1 */ 0, -1, 5, 3];
    const { chosen, gates, k } = renormalizedRouting(logits, 2, 4, [1, 3], 3);
    expect(k).toBe(2);
    expect(Array.from(chosen)).toEqual([1, 3, 3, 1]);
    const z0 = Math.exp(2) + Math.exp(1);
    const z1 = Math.exp(3) + Math.exp(-1);
    [Math.exp(2) / z0, Math.exp(1) / z0, Math.exp(3) / z1, Math.exp(-1) / z1].forEach((g, i) => expect(gates[i]).toBeCloseTo(g, 14));
    // top-1 among the kept: the larger kept logit, gate 1
    const one = renormalizedRouting(logits, 2, 4, [0, 1, 3], 1);
    expect(Array.from(one.chosen)).toEqual([1, 3]);
    expect(Array.from(one.gates)).toEqual([1, 1]);
  });
});
