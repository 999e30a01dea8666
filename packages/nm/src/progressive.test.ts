import { ArgumentError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { maskDecayFactor, structureDecayPatterns, structureDecaySchedule, structurePhaseAt } from './progressive.js';

describe('maskDecayFactor (MDGF)', () => {
  it('linear: max(0, 1 - rate t); exponential: exp(-rate t), 1 at step 0', () => {
    for (const t of [0, 1, 7, 99, 100, 250]) {
      expect(maskDecayFactor(t, { shape: 'linear', rate: 0.01 })).toBeCloseTo(Math.max(0, 1 - 0.01 * t), 12);
      expect(maskDecayFactor(t, { shape: 'exponential', rate: 0.05 })).toBeCloseTo(Math.exp(-0.05 * t), 12);
    }
    expect(maskDecayFactor(0, { shape: 'exponential', rate: 3 })).toBe(1);
    expect(maskDecayFactor(200, { shape: 'linear', rate: 0.01 })).toBe(0);
  });

  it('refuses a bad step, rate or shape, naming it', () => {
    expect(() => maskDecayFactor(-1, { shape: 'linear', rate: 0.1 })).toThrow(/step/);
    expect(() => maskDecayFactor(1, { shape: 'linear', rate: 0 })).toThrow(/rate/);
    expect(() => maskDecayFactor(1, { shape: 'cosine' as 'linear', rate: 0.1 })).toThrow(ArgumentError);
  });
});

describe('structureDecayPatterns (SDGF)', () => {
  it("stepwise lowers N at fixed M as the paper lists it: 1:8 -> 7:8, 4:8, 2:8, 1:8; 2:4 -> 3:4, 2:4", () => {
    expect(structureDecayPatterns({ n: 1, m: 8, kind: 'stepwise' })).toEqual([
      { n: 7, m: 8 },
      { n: 4, m: 8 },
      { n: 2, m: 8 },
      { n: 1, m: 8 },
    ]);
    expect(structureDecayPatterns({ n: 2, m: 4, kind: 'stepwise' })).toEqual([
      { n: 3, m: 4 },
      { n: 2, m: 4 },
    ]);
    expect(structureDecayPatterns({ n: 1, m: 16, kind: 'stepwise' }).map((p) => p.n)).toEqual([15, 8, 4, 2, 1]);
    // not a power of two apart: halvings above N, then N itself
    expect(structureDecayPatterns({ n: 3, m: 8, kind: 'stepwise' }).map((p) => p.n)).toEqual([7, 4, 3]);
    expect(structureDecayPatterns({ n: 7, m: 8, kind: 'stepwise' }).map((p) => p.n)).toEqual([7]);
  });

  it('geometric keeps the density and shrinks the group: 1:8 -> 8:64, 4:32, 2:16, 1:8', () => {
    expect(structureDecayPatterns({ n: 1, m: 8, kind: 'geometric' })).toEqual([
      { n: 8, m: 64 },
      { n: 4, m: 32 },
      { n: 2, m: 16 },
      { n: 1, m: 8 },
    ]);
    expect(structureDecayPatterns({ n: 2, m: 4, kind: 'geometric', frames: 2 })).toEqual([
      { n: 4, m: 8 },
      { n: 2, m: 4 },
    ]);
  });

  it('every pattern is looser-or-equal than the next (density never rises) and the last is n:m', () => {
    for (const [n, m] of [[1, 4], [2, 4], [1, 8], [3, 8], [2, 16], [5, 6]] as const) {
      for (const kind of ['stepwise', 'geometric'] as const) {
        const ps = structureDecayPatterns({ n, m, kind });
        expect(ps.at(-1)).toEqual({ n, m });
        for (let i = 1; i < ps.length; i++) expect(ps[i]!.n / ps[i]!.m).toBeLessThanOrEqual(ps[i - 1]!.n / ps[i - 1]!.m);
      }
    }
  });

  it('frames split the steps equally and structurePhaseAt picks the frame by brute force over the starts', () => {
    const s = structureDecaySchedule({ n: 1, m: 8, kind: 'stepwise', steps: 10 });
    expect(s.map((p) => p.start)).toEqual([0, 2, 5, 7]);
    const want = [7, 7, 4, 4, 4, 2, 2, 1, 1, 1, 1, 1];
    expect(Array.from({ length: 12 }, (_, t) => structurePhaseAt(s, t).n)).toEqual(want);
  });

  it('refuses bad arguments', () => {
    expect(() => structureDecayPatterns({ n: 4, m: 4, kind: 'stepwise' })).toThrow(/n must be below m/);
    expect(() => structureDecaySchedule({ n: 1, m: 8, kind: 'stepwise', steps: 0 })).toThrow(/steps/);
    expect(() => structureDecayPatterns({ n: 1, m: 8, kind: 'geometric', frames: 0 })).toThrow(/frames/);
    expect(() => structureDecayPatterns({ n: 1, m: 8, kind: 'fine' as 'stepwise' })).toThrow(/kind/);
    expect(() => structurePhaseAt([], 0)).toThrow(ArgumentError);
  });
});
