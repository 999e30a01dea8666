import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closestNames, editDistance } from './names.js';

/** Independent reference: the full dynamic-programming table. */
function tableDistance(a: string, b: string): number {
  const t = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) t[i]![j] = Math.min(t[i - 1]![j]! + 1, t[i]![j - 1]! + 1, t[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return t[a.length]![b.length]!;
}

describe('editDistance', () => {
  it('known values', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('wanda', 'wanda')).toBe(0);
  });
  it('equals the full-table reference, is symmetric and obeys the triangle inequality', () => {
    const s = fc.string({ maxLength: 8, unit: fc.constantFrom('a', 'b', 'c') });
    fc.assert(
      fc.property(s, s, s, (a, b, c) => {
        const d = editDistance(a, b);
        expect(d).toBe(tableDistance(a, b));
        expect(d).toBe(editDistance(b, a));
        expect(d).toBeLessThanOrEqual(editDistance(a, c) + editDistance(c, b));
      }),
    );
  });
});

describe('closestNames', () => {
  const names = ['magnitude', 'random', 'sparsegpt', 'wanda', 'dsnot'];
  it('suggests the near misses, best first', () => {
    expect(closestNames('sparsgpt', names)).toEqual(['sparsegpt']);
    expect(closestNames('WANDA', names)[0]).toBe('wanda');
    expect(closestNames('zzzzzzzzzzzz', names)).toEqual([]);
  });
  it('breaks ties by name and respects the limit', () => {
    expect(closestNames('ab', ['ax', 'ay', 'az'], 2)).toEqual(['ax', 'ay']);
  });
});
