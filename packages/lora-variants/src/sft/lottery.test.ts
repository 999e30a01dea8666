import { ArgumentError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sftConfigSchema } from './config.js';
import { sparseDelta } from './delta.js';
import { lotteryTicketSupports } from './lottery.js';

/** Two or three deltas on random supports of small weights, values from a few levels (so ties happen). */
const deltasArb = fc
  .array(
    fc.record({ rows: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 5 }), seed: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 20, maxLength: 20 }), keepEvery: fc.integer({ min: 1, max: 3 }) }),
    { minLength: 1, maxLength: 3 },
  )
  .map((ls) =>
    Object.fromEntries(
      ls.map((l, n) => {
        // the support: every keepEvery-th entry (a full fine-tune inside a mask moves only kept entries)
        const idx = Array.from({ length: l.rows * l.cols }, (_, f) => f).filter((f) => f % l.keepEvery === 0);
        return [`w${n}`, sparseDelta([l.rows, l.cols], idx, idx.map((f) => l.seed[f % 20]! / 2))];
      }),
    ),
  );

describe('lotteryTicketSupports (LT-SFT selection)', () => {
  it('global: the round(density · Σ size) largest |Δ| over all weights, ties to the earlier weight and lower index (brute-force sort)', () => {
    fc.assert(
      fc.property(deltasArb, fc.double({ min: 0.01, max: 1, noNaN: true }), (deltas, density) => {
        const all: { n: string; l: number; f: number; a: number }[] = [];
        let size = 0;
        Object.entries(deltas).forEach(([n, d], l) => {
          size += d.shape[0] * d.shape[1];
          d.indices.forEach((f, p) => all.push({ n, l, f, a: Math.abs(d.values[p]!) }));
        });
        const k = Math.min(all.length, Math.max(1, Math.round(density * size)));
        const top = [...all].sort((x, y) => y.a - x.a || x.l - y.l || x.f - y.f).slice(0, k);
        const got = lotteryTicketSupports(deltas, { density });
        for (const n of Object.keys(deltas)) {
          expect([...got[n]!]).toEqual(top.filter((e) => e.n === n).map((e) => e.f).sort((a, b) => a - b));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('layer: each weight its own round(density · size) largest |Δ| within its support (brute-force sort)', () => {
    fc.assert(
      fc.property(deltasArb, fc.double({ min: 0.01, max: 1, noNaN: true }), (deltas, density) => {
        const got = lotteryTicketSupports(deltas, { density, budget: 'layer' });
        for (const [n, d] of Object.entries(deltas)) {
          const k = Math.min(d.indices.length, Math.max(1, Math.round(density * d.shape[0] * d.shape[1])));
          const want = Array.from(d.indices, (f, p) => ({ f, a: Math.abs(d.values[p]!) }))
            .sort((x, y) => y.a - x.a || x.f - y.f)
            .slice(0, k)
            .map((e) => e.f)
            .sort((a, b) => a - b);
          expect([...got[n]!]).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a hand-computed case', () => {
    const deltas = { a: sparseDelta([2, 2], [0, 1, 2, 3], [0.1, -0.9, 0.5, 0]), b: sparseDelta([1, 4], [0, 3], [0.7, -0.5]) };
    // 8 entries, density 0.375 -> 3: |-0.9| (a:1), 0.7 (b:0), then 0.5 at a:2 and |-0.5| at b:3 -> the earlier weight
    expect(Object.fromEntries(Object.entries(lotteryTicketSupports(deltas, { density: 0.375 })).map(([n, v]) => [n, [...v]]))).toEqual({ a: [1, 2], b: [0] });
    // per layer: a keeps round(0.25 · 4) = 1, b keeps 1
    expect(Object.fromEntries(Object.entries(lotteryTicketSupports(deltas, { density: 0.25, budget: 'layer' })).map(([n, v]) => [n, [...v]]))).toEqual({ a: [1], b: [0] });
  });

  it('refuses bad input, naming the field', () => {
    const deltas = { a: sparseDelta([2, 2], [0], [1]) };
    expect(() => lotteryTicketSupports(deltas, { density: 0 })).toThrow(ArgumentError);
    expect(() => lotteryTicketSupports(deltas, { density: 0 })).toThrow(/density/);
    expect(() => lotteryTicketSupports(deltas, { density: 0.5, budget: 'all' as never })).toThrow(/budget/);
    const r = sftConfigSchema.safeParse({ lottery: { steps: 10 }, every: 5 });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['every']);
    expect(sftConfigSchema.safeParse({ lottery: { steps: 0 } }).error!.issues[0]!.path).toEqual(['lottery', 'steps']);
    expect(sftConfigSchema.parse({ lottery: { steps: 3 } }).lottery).toEqual({ steps: 3, budget: 'global' });
  });
});
