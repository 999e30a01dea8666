import { describe, expect, it } from 'vitest';
import { impConfigSchema, lotteryLayout, lotterySparsity, swampConfigSchema } from './config.js';

const issues = (schema: { safeParse(c: unknown): { error?: { issues: { path: PropertyKey[]; message: string }[] } } }, c: unknown) =>
  schema.safeParse(c).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('impConfigSchema / swampConfigSchema', () => {
  it('fill in the defaults (3 rounds of 20%, rewind at 2% of the stage, per layer; 4 particles) and parse a resolved config to itself', () => {
    const imp = impConfigSchema.parse({});
    expect(imp).toEqual({ rounds: 3, rate: 0.2, rewind: 0.02, budget: 'layer' });
    expect(swampConfigSchema.parse({})).toEqual({ rounds: 3, rate: 0.2, rewind: 0.02, budget: 'layer', particles: 4 });
    const exact = impConfigSchema.parse({ rewindStep: 12, rounds: 2 });
    expect(exact).toEqual({ rounds: 2, rate: 0.2, rewindStep: 12, budget: 'layer' });
    for (const c of [imp, exact]) expect(impConfigSchema.parse(c)).toEqual(c);
  });

  it('refuse bad fields, naming each', () => {
    expect(issues(impConfigSchema, { rewindStep: 5, rewind: 0.1 })).toEqual(['rewind: give rewindStep (steps) or rewind (a fraction of the stage), not both']);
    expect(issues(impConfigSchema, { rate: 1 })).toEqual(['rate: rate must be a number in (0, 1) (the fraction of the remaining weights each round prunes)']);
    expect(issues(impConfigSchema, { rounds: 0 })).toEqual(['rounds: rounds must be an integer >= 1']);
    expect(issues(impConfigSchema, { rewindStep: -1 })).toEqual(['rewindStep: rewindStep must be an integer >= 0']);
    expect(issues(impConfigSchema, { rewind: 1 })).toEqual(['rewind: rewind must be a fraction of the stage in [0, 1)']);
    expect(issues(impConfigSchema, { budget: 'erk' })).toEqual(["budget: budget must be 'layer' or 'global'"]);
    expect(issues(impConfigSchema, { particles: 2 })).toHaveLength(1);
    expect(issues(swampConfigSchema, { particles: 0 })).toEqual(['particles: particles must be an integer >= 1']);
  });
});

describe('lotteryLayout', () => {
  it('puts rewindStep steps first, then (rounds + 1) · particles phases of ⌊(steps − k) / that⌋ steps', () => {
    expect(lotteryLayout({ rounds: 2, rewindStep: 12 }, 600)).toEqual({ rewindStep: 12, phaseSteps: 196, rounds: 2, particles: 1, steps: 600, scheduleSteps: 208 });
    // 2% of 400 = 8; (400 − 8) / 4 = 98
    expect(lotteryLayout({ rounds: 3, rewind: 0.02 }, 400)).toEqual({ rewindStep: 8, phaseSteps: 98, rounds: 3, particles: 1, steps: 400, scheduleSteps: 106 });
    // the leftover (here 1 step) is not run: 4 = 0 + 3 · 1 + 1
    expect(lotteryLayout({ rounds: 2, rewind: 0.02 }, 4)).toEqual({ rewindStep: 0, phaseSteps: 1, rounds: 2, particles: 1, steps: 3, scheduleSteps: 1 });
    // SWAMP: 2 rounds, 3 particles over 100 steps with k = 10: 9 phases of 10
    expect(lotteryLayout({ rounds: 2, rewindStep: 10, particles: 3 }, 100)).toEqual({ rewindStep: 10, phaseSteps: 10, rounds: 2, particles: 3, steps: 100, scheduleSteps: 20 });
    // the written-out layout lays out the same way again
    const l = lotteryLayout({ rounds: 3, rewind: 0.05, particles: 2 }, 333);
    expect(lotteryLayout({ rounds: 3, rewindStep: l.rewindStep, particles: 2 }, l.steps)).toEqual(l);
    expect(() => lotteryLayout({ rounds: 3, rewindStep: 5 }, 8)).toThrow(/8 steps leave no phase: .* need steps >= 9/);
  });

  it('the density after r rounds is (1 − rate)^r', () => {
    expect(lotterySparsity(0.2, 0)).toBe(0);
    expect(1 - lotterySparsity(0.2, 2)).toBeCloseTo(0.64, 15);
    expect(1 - lotterySparsity(0.5, 3)).toBeCloseTo(0.125, 15);
    expect(() => lotterySparsity(0, 1)).toThrow(/rate must be in \(0, 1\)/);
  });
});
