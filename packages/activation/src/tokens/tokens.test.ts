import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { calibrateActivation, getActivationMethod } from '../registry.js';
import type { Site, SiteSample, SiteSparsifier } from '../types.js';
import { lemoSelection } from './lemo.js';
import { attentionReceived, blockChange, deviationFromMean, rowNorms } from './scores.js';
import { keptTokens, selectTokens } from './select.js';

/** Brute force: over every subset of the target size that holds the forced tokens, the one of largest score sum. */
function bruteForce(scores: number[], keep: number, sink: number, recent: number): number[] {
  const n = scores.length;
  const forced = (i: number) => i < sink || i >= n - recent;
  const nForced = [...Array(n).keys()].filter(forced).length;
  const target = Math.min(n, Math.max(nForced, Math.round(keep * n)));
  let best: number[] = [];
  let bestSum = -Infinity;
  for (let m = 0; m < 1 << n; m++) {
    const set = [...Array(n).keys()].filter((i) => (m >> i) & 1);
    if (set.length !== target || ![...Array(n).keys()].every((i) => !forced(i) || set.includes(i))) continue;
    const sum = set.reduce((s, i) => s + scores[i]!, 0);
    if (sum > bestSum) [best, bestSum] = [set, sum];
  }
  return best;
}

describe('token selection', () => {
  it('equals the best-scoring subset that holds the sink and recent tokens (brute force)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 1e6 }),
        (n, sink, recent, keep, seed) => {
          const rng = new Random(seed);
          const scores = Array.from({ length: n }, () => rng.normal()); // distinct, so the best subset is unique
          const mask = selectTokens(scores, { keep, sink, recent });
          const kept = [...mask.keys()].filter((i) => mask[i] === 1);
          expect(kept).toEqual(bruteForce(scores, keep, sink, recent));
          expect(kept.length).toBe(keptTokens(n, { keep, sink, recent }));
          for (let i = 0; i < Math.min(sink, n); i++) expect(mask[i]).toBe(1);
          for (let i = Math.max(0, n - recent); i < n; i++) expect(mask[i]).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects bad options', () => {
    expect(() => selectTokens([1, 2], { keep: 0, sink: 0, recent: 0 })).toThrow(ArgumentError);
    expect(() => selectTokens([1, 2], { keep: 0.5, sink: -1, recent: 0 })).toThrow(ArgumentError);
  });
});

describe('informativeness scores', () => {
  it('attention received: mean over heads of the mass from the queries that see the token', () => {
    // one head, 3 tokens, causal rows
    const p = [1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5];
    expect(Array.from(attentionReceived(p, 1, 3))).toEqual([(1 + 0.5 + 0.2) / 3, (0.5 + 0.3) / 2, 0.5 / 1]);
    // two heads average
    const q = [...p, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    const two = attentionReceived(q, 2, 3);
    expect(two[2]).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(() => attentionReceived(p, 2, 3)).toThrow(ShapeError);
  });

  it('block change, row norms and deviation from the mean', () => {
    const before = [0, 0, 1, 1];
    const after = [3, 4, 1, 2];
    expect(Array.from(blockChange(before, after, 2, 2))).toEqual([5, 1]);
    expect(Array.from(rowNorms(after, 2, 2))).toEqual([5, Math.sqrt(5)]);
    // mean of rows (3, 4) and (1, 2) is (2, 3): both lie sqrt(2) away
    deviationFromMean(after, 2, 2).forEach((v) => expect(v).toBeCloseTo(Math.SQRT2, 12));
  });
});

describe('lemo', () => {
  const d = 6;
  const block = 1;
  const site = (name: string, role: string, b = block): Site => ({ name: `h.${b}.${name}.weight`, kind: 'linear-input', block: b, role, features: d, out: d });
  const sites = [site('attn.q', 'attn.q'), site('attn.k', 'attn.k'), site('attn.v', 'attn.v'), site('attn.o', 'attn.out'), site('mlp.gate', 'mlp.gate'), site('mlp.up', 'mlp.up'), site('mlp.down', 'mlp.down')];
  const act: Site = { name: `h.${block}.mlp.act`, kind: 'mlp-activation', block, role: 'mlp.act', features: d };
  const other = site('attn.q', 'attn.q', 0);
  const rng = new Random(4);
  const rows = (t: number) => rng.fillNormal(new Float32Array(t * d));
  const samples: SiteSample[] = [...sites, act, other].map((s) => ({ site: s, x: rows(4), tokens: 4 }));
  const config = { keep: 0.5, sink: 2, recent: 3, blocks: [block], window: 12 };

  it('acts on the linear inputs of the chosen blocks only', () => {
    const m = getActivationMethod('lemo');
    const cfg = m.schema.safeParse(config).data as never;
    expect(samples.filter((s) => m.acts(cfg, s.site)).map((s) => s.site.name)).toEqual(sites.map((s) => s.name));
    expect(m.schema.safeParse({}).success).toBe(false);
  });

  it('zeroes the same rows at every site of the block, keeps the others untouched, per sequence of `window` tokens', () => {
    const sps = calibrateActivation('lemo', config, samples);
    expect(sps.map((s) => s.site)).toEqual(sites.map((s) => s.name));
    const t = 24; // two sequences of 12
    const x0 = rows(t);
    const parsed = getActivationMethod('lemo').schema.safeParse(config).data as never;
    const expected = lemoSelection(parsed, x0, t, d);
    for (const [i, sp] of sps.entries()) {
      const x = i === 0 ? x0 : rows(t);
      const y = Float32Array.from(x);
      const kept = sp.apply(y, t);
      expect(kept).toBe(expected.reduce((s, v) => s + v, 0) * d);
      for (let r = 0; r < t; r++) {
        const a = Array.from(y.subarray(r * d, (r + 1) * d));
        expect(a).toEqual(expected[r] ? Array.from(x.subarray(r * d, (r + 1) * d)) : new Array(d).fill(0));
      }
    }
    // each sequence keeps round(0.5 * 12) = 6: its first 2, its last 3, and 1 more
    for (const start of [0, 12]) {
      const seq = Array.from(expected.subarray(start, start + 12));
      expect(seq.reduce((s, v) => s + v, 0)).toBe(6);
      expect(seq.slice(0, 2)).toEqual([1, 1]);
      expect(seq.slice(9)).toEqual([1, 1, 1]);
    }
    // the one free choice of each sequence is its most deviating middle token
    const dev = deviationFromMean(x0.subarray(0, 12 * d), 12, d);
    const mid = [...Array(12).keys()].slice(2, 9).sort((a, b) => dev[b]! - dev[a]!)[0]!;
    expect(expected[mid]).toBe(1);
  });

  it('a follower before the decider, or with another token count, throws', () => {
    const sps = calibrateActivation('lemo', config, samples);
    expect(() => sps[3]!.apply(rows(5), 5)).toThrow(/attention input site/);
    sps[0]!.apply(rows(5), 5);
    expect(() => sps[3]!.apply(rows(4), 4)).toThrow(ShapeError);
    const noDecider = samples.filter((s) => s.site.role !== 'attn.q');
    expect(() => calibrateActivation('lemo', config, noDecider)).toThrow(/no attention input sample/);
  });

  it('state round trip (restored with one parsed config)', () => {
    const m = getActivationMethod('lemo');
    const cfg = m.schema.safeParse(config).data as never;
    const sps = calibrateActivation('lemo', config, samples);
    const states = JSON.parse(JSON.stringify(sps.map((s) => s.state()))) as unknown[];
    const restored: SiteSparsifier[] = sites.map((s, i) => m.restore(cfg, s, states[i]));
    const xs = sites.map(() => rows(12));
    const out = (list: SiteSparsifier[]) => list.map((sp, i) => {
      const y = Float32Array.from(xs[i]!);
      sp.apply(y, 12);
      return y;
    });
    expect(out(restored)).toEqual(out(sps));
    expect(() => m.restore(cfg, sites[1]!, states[0])).toThrow(ArgumentError);
  });
});
