import { describe, expect, it } from 'vitest';
import { isPruningStep, sparsityAt } from '@sparse/masks';
import { gmpConfigSchema, gmpGroupKeep, gmpSchedule } from './gradual.js';

describe('gmpConfigSchema', () => {
  it('fills in the defaults: 80% final sparsity from 0, cubic over the first 3/4 of the stage, every 10 steps, per layer', () => {
    expect(gmpConfigSchema.parse({})).toEqual({ sparsity: 0.8, initialSparsity: 0, start: 0, end: 0.75, every: 10, budget: 'layer' });
    expect(gmpConfigSchema.parse({ budget: 'erk', erkPowerScale: 0.5 }).erkPowerScale).toBe(0.5);
  });

  it('refuses bad fields with a message naming each', () => {
    const issues = (c: unknown) => gmpConfigSchema.safeParse(c).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(issues({ sparsity: 1 })).toEqual(['sparsity: sparsity must be a number in [0, 1)']);
    expect(issues({ start: 1 })).toContain('start: start must be a fraction of the stage in [0, 1)');
    expect(issues({ end: 0 })).toContain('end: end must be a fraction of the stage in (0, 1]');
    expect(issues({ start: 0.5, end: 0.5 })).toEqual(['end: end must be after start']);
    expect(issues({ every: 0 })).toEqual(['every: every must be a positive integer']);
    expect(issues({ every: 1.5 })).toEqual(['every: every must be a positive integer']);
    expect(issues({ initialSparsity: 0.6, sparsity: 0.5 })).toEqual(['initialSparsity: initialSparsity must not exceed sparsity']);
    expect(issues({ budget: 'uniform' })).toEqual(["budget: budget must be 'layer', 'global', 'er' or 'erk'"]);
    expect(issues({ budget: 'er', erkPowerScale: 1 })).toEqual(["erkPowerScale: erkPowerScale needs budget: 'erk'"]);
    expect(issues({ evrey: 3 })).toHaveLength(1);
    expect(issues({ pattern: { n: 4, m: 4 } })).toEqual(['pattern.n: pattern needs n < m (n kept in every group of m)']);
    expect(issues({ pattern: { n: 0, m: 4 } })).toEqual(['pattern.n: pattern.n must be an integer >= 1']);
    expect(issues({ pattern: { n: 2, m: 4 }, sparsity: 0.6 })).toEqual(['sparsity: with a pattern n:m the sparsity is 1 − n/m: omit sparsity']);
    expect(issues({ pattern: { n: 2, m: 4 }, budget: 'global' })).toEqual(["budget: pattern needs budget: 'layer' (N:M is kept per group of m)"]);
    expect(issues({ pattern: { n: 2, m: 4 }, initialSparsity: 0.6 })).toEqual(['initialSparsity: initialSparsity must not exceed sparsity']);
  });

  it('an n:m pattern is the final sparsity 1 − n/m; each group keeps round((1 − s) · m) in [n, m], exactly n at the end', () => {
    const cfg = gmpConfigSchema.parse({ pattern: { n: 2, m: 8 } });
    expect(cfg.sparsity).toBe(0.75);
    expect(gmpConfigSchema.parse(cfg)).toEqual(cfg); // a resolved config parses to itself
    expect(gmpConfigSchema.parse(gmpConfigSchema.parse({}))).toEqual(gmpConfigSchema.parse({}));
    const p = cfg.pattern!;
    expect([0, 0.06, 0.07, 0.5, 0.74, 0.75].map((s) => gmpGroupKeep(p, s))).toEqual([8, 8, 7, 4, 2, 2]);
    expect(gmpGroupKeep({ n: 1, m: 3 }, 1 - 1 / 3)).toBe(1);
    expect(gmpGroupKeep({ n: 2, m: 4 }, 0.9)).toBe(2);
  });
});

describe('gmpSchedule', () => {
  it('is the cubic ramp over floor(start · steps) .. floor(end · steps), in steps done', () => {
    const cfg = gmpConfigSchema.parse({ sparsity: 0.9, initialSparsity: 0.1, start: 0.1, end: 0.85, every: 7 });
    const s = gmpSchedule(cfg, 100);
    expect(s).toEqual({ kind: 'cubic', initial: 0.1, final: 0.9, begin: 10, end: 85, every: 7 });
    // Zhu & Gupta's formula at the update steps, the final sparsity from end on
    for (const t of [10, 17, 24, 80]) {
      expect(isPruningStep(s, t)).toBe(true);
      expect(sparsityAt(s, t)).toBeCloseTo(0.9 + (0.1 - 0.9) * (1 - (t - 10) / 75) ** 3, 12);
    }
    expect(isPruningStep(s, 85)).toBe(true);
    expect(isPruningStep(s, 86)).toBe(false);
    expect(sparsityAt(s, 85)).toBe(0.9);
  });

  it('keeps at least one step of ramp on a tiny stage', () => {
    const cfg = gmpConfigSchema.parse({ start: 0.5, end: 0.6 });
    expect(gmpSchedule(cfg, 4)).toMatchObject({ begin: 2, end: 3 });
    expect(gmpSchedule(gmpConfigSchema.parse({ start: 0.9, end: 1 }), 1)).toMatchObject({ begin: 0, end: 1 });
    expect(() => gmpSchedule(cfg, 0)).toThrow(/steps must be a positive integer, got 0/);
  });
});
