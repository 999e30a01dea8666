import { ArgumentError, Random, ShapeError, tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { and, count, isKept, maskFromBooleans, maskIndices, maskNone, maskToBooleans } from './mask.js';
import {
  dropAndRegrow,
  dropFractionAt,
  isPruningStep,
  isRegrowStep,
  isReselectionStep,
  progressiveSchedule,
  progressiveStage,
  sparsityAt,
  validateSchedule,
  type SparsitySchedule,
} from './schedules.js';

const rampArb = fc
  .record({
    initial: fc.double({ min: 0, max: 0.99, noNaN: true }),
    final: fc.double({ min: 0, max: 0.99, noNaN: true }),
    begin: fc.integer({ min: 0, max: 50 }),
    length: fc.integer({ min: 1, max: 200 }),
    every: fc.integer({ min: 1, max: 30 }),
  })
  .map(({ begin, length, ...r }) => ({ ...r, begin, end: begin + length }));

describe('sparsity schedules', () => {
  it('cubic: Zhu & Gupta formula at update steps, held in between, target exactly at end, monotone', () => {
    fc.assert(
      fc.property(rampArb, ({ initial, final, begin, end, every }) => {
        const s: SparsitySchedule = { kind: 'cubic', initial, final, begin, end, every };
        let prev = sparsityAt(s, 0);
        for (let t = 0; t <= end + 5; t++) {
          const v = sparsityAt(s, t);
          let expected: number;
          if (t < begin) expected = initial;
          else if (t >= end) expected = final;
          else {
            const tq = begin + Math.floor((t - begin) / every) * every; // last update step
            expected = tq === begin ? initial : final + (initial - final) * (1 - (tq - begin) / (end - begin)) ** 3;
          }
          expect(v).toBe(expected);
          // Monotone toward the target.
          if (final >= initial) expect(v).toBeGreaterThanOrEqual(prev);
          else expect(v).toBeLessThanOrEqual(prev);
          prev = v;
          expect(isPruningStep(s, t)).toBe(t >= begin && t <= end && (t === end || (t - begin) % every === 0));
        }
        expect(sparsityAt(s, end)).toBe(final);
        expect(sparsityAt(s, begin)).toBe(initial);
      }),
    );
  });

  it('cubic reaches the target at the end step and not before (worked example)', () => {
    const s: SparsitySchedule = { kind: 'cubic', initial: 0, final: 0.8, begin: 100, end: 1100, every: 100 };
    expect(sparsityAt(s, 99)).toBe(0);
    expect(sparsityAt(s, 100)).toBe(0);
    expect(sparsityAt(s, 150)).toBe(0); // held until the next update
    expect(sparsityAt(s, 200)).toBeCloseTo(0.8 * (1 - 0.9 ** 3), 15);
    expect(sparsityAt(s, 1099)).toBeCloseTo(0.8 * (1 - 0.1 ** 3), 15);
    expect(sparsityAt(s, 1099)).toBeLessThan(0.8);
    expect(sparsityAt(s, 1100)).toBe(0.8);
    expect(sparsityAt(s, 5000)).toBe(0.8);
  });

  it('linear interpolates at update steps and is monotone', () => {
    fc.assert(
      fc.property(rampArb, ({ initial, final, begin, end, every }) => {
        const s: SparsitySchedule = { kind: 'linear', initial, final, begin, end, every };
        for (let t = begin; t < end; t++) {
          const tq = begin + Math.floor((t - begin) / every) * every;
          expect(sparsityAt(s, t)).toBe(tq === begin ? initial : initial + (final - initial) * ((tq - begin) / (end - begin)));
        }
        expect(sparsityAt(s, end)).toBe(final);
      }),
    );
  });

  it('constant, oneShot and step schedules', () => {
    const c: SparsitySchedule = { kind: 'constant', sparsity: 0.5 };
    expect([0, 7, 1000].map((t) => sparsityAt(c, t))).toEqual([0.5, 0.5, 0.5]);
    expect([0, 1].map((t) => isPruningStep(c, t))).toEqual([true, false]);
    const o: SparsitySchedule = { kind: 'oneShot', sparsity: 0.9, step: 10 };
    expect([9, 10, 11].map((t) => sparsityAt(o, t))).toEqual([0, 0.9, 0.9]);
    expect([9, 10, 11].map((t) => isPruningStep(o, t))).toEqual([false, true, false]);
    const st: SparsitySchedule = { kind: 'step', initial: 0.1, milestones: [{ step: 5, sparsity: 0.3 }, { step: 9, sparsity: 0.6 }] };
    expect([0, 4, 5, 8, 9, 100].map((t) => sparsityAt(st, t))).toEqual([0.1, 0.1, 0.3, 0.3, 0.6, 0.6]);
    expect([4, 5, 9].map((t) => isPruningStep(st, t))).toEqual([false, true, true]);
  });

  it('rejects malformed schedules, naming the field', () => {
    expect(() => validateSchedule({ kind: 'cubic', initial: 0, final: 1, begin: 0, end: 10 })).toThrow(/final must be a number in \[0, 1\)/);
    expect(() => validateSchedule({ kind: 'cubic', initial: 0, final: 0.5, begin: 10, end: 10 })).toThrow(/end \(10\) must be after begin/);
    expect(() => validateSchedule({ kind: 'linear', initial: 0, final: 0.5, begin: 0, end: 10, every: 0 })).toThrow(/every/);
    expect(() => validateSchedule({ kind: 'step', initial: 0, milestones: [{ step: 5, sparsity: 0.2 }, { step: 5, sparsity: 0.3 }] })).toThrow(/milestones\[1\]/);
    expect(() => validateSchedule({ kind: 'nope' } as unknown as SparsitySchedule)).toThrow(/kind must be/);
    expect(() => sparsityAt({ kind: 'constant', sparsity: 0.5 }, -1)).toThrow(/step must be a non-negative integer/);
  });
});

describe('progressive (SaRA) re-selection', () => {
  it('splits training into equal stages and reports the stage and re-selection steps', () => {
    const s = progressiveSchedule(1000);
    expect(s.reselectSteps).toEqual([500]);
    expect([0, 499, 500, 999].map((t) => progressiveStage(s, t))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 500, 501].map((t) => isReselectionStep(s, t))).toEqual([true, false, true, false]);
    expect(progressiveSchedule(10, 3).reselectSteps).toEqual([3, 6]);
    expect(progressiveSchedule(10, 1).reselectSteps).toEqual([]);
    expect(() => progressiveStage({ reselectSteps: [5, 5] }, 0)).toThrow(/reselectSteps\[1\]/);
    expect(() => progressiveSchedule(10, 0)).toThrow(/stages/);
  });
});

describe('drop-and-regrow', () => {
  it('cosine drop fraction: α at begin, decreasing, 0 at and after end; regrow every ΔT before end', () => {
    const s = { every: 100, begin: 0, end: 1000, fraction: 0.3 };
    expect(dropFractionAt(s, 0)).toBe(0.3);
    expect(dropFractionAt(s, 500)).toBeCloseTo(0.15, 15);
    let prev = Infinity;
    for (let t = 0; t < 1000; t += 7) {
      const f = dropFractionAt(s, t);
      expect(f).toBeLessThanOrEqual(prev);
      expect(f).toBeCloseTo((0.3 / 2) * (1 + Math.cos((Math.PI * t) / 1000)), 15);
      prev = f;
    }
    expect(dropFractionAt(s, 1000)).toBe(0);
    expect(dropFractionAt({ ...s, decay: 'constant' }, 999)).toBe(0.3);
    expect([0, 50, 100, 900, 1000].map((t) => isRegrowStep(s, t))).toEqual([true, false, true, true, false]);
    expect(() => dropFractionAt({ ...s, fraction: 1.5 }, 0)).toThrow(/fraction/);
  });

  const caseArb = fc.integer({ min: 1, max: 90 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      active: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      drop: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: n, maxLength: n }),
      grow: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: n, maxLength: n }),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      seed: fc.integer(),
    }),
  );

  it('keeps the active count constant; drops the lowest and grows the highest scores (brute force); never regrows a dropped entry', () => {
    fc.assert(
      fc.property(caseArb, ({ n, active, drop, grow, fraction }) => {
        const mask = maskFromBooleans(active, [n]);
        const a = count(mask);
        const r = dropAndRegrow(mask, { dropScores: tensor(Float32Array.from(drop), [n]), growScores: tensor(Float32Array.from(grow), [n]), fraction });
        const d = Math.min(Math.round(fraction * a), n - a);
        expect(count(r.mask)).toBe(a);
        expect(r.dropped.length).toBe(d);
        expect(r.grown.length).toBe(d);
        // Reference: active ranked by (score desc, index asc), the last d dropped; inactive ranked the same, the first d grown.
        const act = active.flatMap((x, i) => (x ? [i] : []));
        const inact = active.flatMap((x, i) => (x ? [] : [i]));
        const rank = (idx: number[], s: number[]) => [...idx].sort((x, y) => s[y]! - s[x]! || x - y);
        expect(Array.from(r.dropped)).toEqual(rank(act, drop).slice(act.length - d).sort((x, y) => x - y));
        expect(Array.from(r.grown)).toEqual(rank(inact, grow).slice(0, d).sort((x, y) => x - y));
        for (const i of r.dropped) expect(isKept(r.mask, i)).toBe(false);
        for (const i of r.grown) expect(active[i]).toBe(false);
        expect(count(and(r.mask, mask))).toBe(a - d);
      }),
    );
  });

  it('random regrowth (SET) draws from the previously inactive entries, reproducibly from the seed', () => {
    fc.assert(
      fc.property(caseArb, ({ n, active, drop, fraction, seed }) => {
        const mask = maskFromBooleans(active, [n]);
        const opts = { dropScores: tensor(Float32Array.from(drop), [n]), fraction };
        const r1 = dropAndRegrow(mask, { ...opts, rng: new Random(seed) });
        const r2 = dropAndRegrow(mask, { ...opts, rng: new Random(seed) });
        expect(Array.from(r1.grown)).toEqual(Array.from(r2.grown));
        expect(count(r1.mask)).toBe(count(mask));
        for (const i of r1.grown) expect(active[i]).toBe(false);
        expect(new Set(r1.grown).size).toBe(r1.grown.length);
      }),
    );
  });

  it('handles full and empty masks and rejects bad input', () => {
    const full = maskFromBooleans([1, 1, 1, 1], [2, 2]);
    const s = tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const r = dropAndRegrow(full, { dropScores: s, growScores: s, fraction: 0.5 });
    expect(r.dropped.length).toBe(0); // nothing inactive to grow into, so nothing is dropped
    expect(Array.from(maskToBooleans(r.mask))).toEqual([1, 1, 1, 1]);
    expect(count(dropAndRegrow(maskNone([2, 2]), { dropScores: s, growScores: s, fraction: 1 }).mask)).toBe(0);
    expect(Array.from(maskIndices(dropAndRegrow(maskFromBooleans([1, 0, 0, 1], [2, 2]), { dropScores: s, growScores: s, fraction: 0.5 }).mask))).toEqual([2, 3]);
    expect(() => dropAndRegrow(full, { dropScores: s, fraction: 0.5 })).toThrow(/needs rng/);
    expect(() => dropAndRegrow(full, { dropScores: tensor(new Float32Array(4), [4]), growScores: s, fraction: 0.5 })).toThrow(ShapeError);
    expect(() => dropAndRegrow(full, { dropScores: s, growScores: tensor(Float32Array.from([0, NaN, 0, 0]), [2, 2]), fraction: 0.5 })).toThrow(/growScores\[0, 1\]/);
    expect(() => dropAndRegrow(full, { dropScores: s, growScores: s, fraction: 2 })).toThrow(ArgumentError);
  });
});
