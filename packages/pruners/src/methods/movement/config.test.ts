import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { movementConfigSchema, smpConfigSchema, smpLayerKeeps } from './config.js';

const issues = (schema: { safeParse(c: unknown): { error?: { issues: { path: PropertyKey[]; message: string }[] } } }, c: unknown) =>
  schema.safeParse(c).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('movementConfigSchema', () => {
  it('fills in the defaults of each variant, and a resolved config parses to itself', () => {
    const hard = movementConfigSchema.parse({});
    expect(hard).toEqual({ variant: 'hard', sparsity: 0.9, initialSparsity: 0, budget: 'layer', start: 0, end: 0.75, every: 10 });
    const soft = movementConfigSchema.parse({ variant: 'soft' });
    expect(soft).toEqual({ variant: 'soft', threshold: 0.1, lambda: 3e-4, scoreScale: 1000, start: 0, end: 0.75, every: 10 });
    for (const c of [hard, soft, movementConfigSchema.parse({ variant: 'soft', threshold: 0.3, lambda: 0, scoreScale: 50, every: 1 })]) expect(movementConfigSchema.parse(c)).toEqual(c);
  });

  it('refuses the other variant’s fields and bad values, naming each field', () => {
    expect(issues(movementConfigSchema, { threshold: 0.2, lambda: 1 })).toEqual([
      "threshold: threshold is a field of variant 'soft' (variant is 'hard')",
      "lambda: lambda is a field of variant 'soft' (variant is 'hard')",
    ]);
    expect(issues(movementConfigSchema, { variant: 'soft', sparsity: 0.5, budget: 'global' })).toEqual([
      "sparsity: sparsity is a field of variant 'hard' (variant is 'soft')",
      "budget: budget is a field of variant 'hard' (variant is 'soft')",
    ]);
    expect(issues(movementConfigSchema, { variant: 'medium' })).toEqual(["variant: variant must be 'hard' or 'soft'"]);
    expect(issues(movementConfigSchema, { variant: 'soft', threshold: 1 })).toEqual(['threshold: threshold must be a number in (0, 1) (a threshold on σ(S))']);
    expect(issues(movementConfigSchema, { variant: 'soft', lambda: -1 })).toEqual(['lambda: lambda must be a finite number >= 0']);
    expect(issues(movementConfigSchema, { variant: 'soft', scoreScale: 0 })).toEqual(['scoreScale: scoreScale must be a finite number > 0']);
    expect(issues(movementConfigSchema, { variant: 'soft', scoreScale: Infinity })).toEqual(['scoreScale: scoreScale must be a finite number > 0']);
    expect(issues(movementConfigSchema, { sparsity: 0.5, initialSparsity: 0.6 })).toEqual(['initialSparsity: initialSparsity must not exceed sparsity']);
    expect(issues(movementConfigSchema, { start: 0.5, end: 0.5 })).toEqual(['end: end must be after start']);
    expect(issues(movementConfigSchema, { budget: 'erk' })).toEqual(["budget: budget must be 'layer' or 'global'"]);
    expect(issues(movementConfigSchema, { evrey: 2 })).toHaveLength(1);
  });
});

describe('smpConfigSchema', () => {
  it('fills in the defaults and refuses bad fields', () => {
    const c = smpConfigSchema.parse({});
    expect(c).toEqual({ sparsity: 0.9, initialSparsity: 0, start: 0, end: 0.75, every: 10, masking: 'global', lambda: 0 });
    expect(smpConfigSchema.parse(c)).toEqual(c);
    expect(issues(smpConfigSchema, { masking: 'row' })).toEqual(["masking: masking must be 'global' or 'local'"]);
    expect(issues(smpConfigSchema, { sparsity: 0.3, initialSparsity: 0.4 })).toEqual(['initialSparsity: initialSparsity must not exceed sparsity']);
    expect(issues(smpConfigSchema, { lambda: Infinity })).toEqual(['lambda: lambda must be a finite number >= 0']);
  });
});

/**
 * The real quotas by bisection on the common factor c: q_i = min(n_i, c · w_i · n_i) with Σ q_i = keep (a
 * different route from the water-filling under test), then largest-remainder rounding written out here.
 */
function bruteKeeps(layers: { size: number; weight: number }[], keep: number): number[] {
  const allZero = layers.every((l) => l.weight === 0 || l.size === 0);
  const w = layers.map((l) => (allZero ? 1 : l.weight));
  const q = (c: number) => layers.map((l, i) => (l.size === 0 ? 0 : w[i] === 0 ? 0 : Math.min(l.size, c * w[i]! * l.size)));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  let lo = 0;
  let hi = 1;
  while (sum(q(hi)) < keep) hi *= 2;
  for (let it = 0; it < 200; it++) {
    const mid = (lo + hi) / 2;
    if (sum(q(mid)) < keep) lo = mid;
    else hi = mid;
  }
  const quotas = q(hi);
  const out = quotas.map((x, i) => Math.min(layers[i]!.size, Math.floor(x + 1e-7)));
  let rest = keep - sum(out);
  const order = quotas.map((x, i) => ({ i, f: x - out[i]! })).sort((a, b) => (rest >= 0 ? b.f - a.f : a.f - b.f) || a.i - b.i);
  for (const { i } of order) {
    if (rest > 0 && out[i]! < layers[i]!.size) {
      out[i]!++;
      rest--;
    } else if (rest < 0 && out[i]! > 0) {
      out[i]!--;
      rest++;
    }
  }
  return out;
}

describe('smpLayerKeeps', () => {
  it('splits in proportion to size × weight, fills a matrix that would overflow and gives its excess to the others', () => {
    // equal sizes: density ∝ weight, 60 kept of 3 × 40
    expect(smpLayerKeeps([{ size: 40, weight: 0.5 }, { size: 40, weight: 0.25 }, { size: 40, weight: 0.25 }], 60)).toEqual([30, 15, 15]);
    // the first would take 90 > 40: it is full, the 50 others split 1:1
    expect(smpLayerKeeps([{ size: 40, weight: 0.9 }, { size: 40, weight: 0.05 }, { size: 40, weight: 0.05 }], 90)).toEqual([40, 25, 25]);
    // all weights zero: in proportion to size
    expect(smpLayerKeeps([{ size: 10, weight: 0 }, { size: 30, weight: 0 }], 20)).toEqual([5, 15]);
    expect(smpLayerKeeps([{ size: 10, weight: 0.3 }], 7)).toEqual([7]);
    expect(() => smpLayerKeeps([{ size: 10, weight: 0.3 }], 11)).toThrow(/keep must be an integer in \[0, 10\]/);
    expect(() => smpLayerKeeps([{ size: 10, weight: -1 }], 1)).toThrow(/layers\[0\]\.weight/);
  });

  it('sums to keep exactly, never exceeds a size, and matches the bisection brute force', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ size: fc.integer({ min: 0, max: 60 }), weight: fc.double({ min: 0.01, max: 1, noNaN: true }) }), { minLength: 1, maxLength: 6 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        (drawn, f, zero) => {
          // SMP's weights are means of σ(S), never 0; all-zero weights stand for "no preference"
          const layers = zero ? drawn.map((l) => ({ ...l, weight: 0 })) : drawn;
          const total = layers.reduce((a, l) => a + l.size, 0);
          const keep = Math.round(f * total);
          const out = smpLayerKeeps(layers, keep);
          expect(out.reduce((a, b) => a + b, 0)).toBe(keep);
          out.forEach((k, i) => expect(k).toBeLessThanOrEqual(layers[i]!.size));
          expect(out).toEqual(bruteKeeps(layers, keep));
        },
      ),
      { numRuns: 300 },
    );
  });
});
