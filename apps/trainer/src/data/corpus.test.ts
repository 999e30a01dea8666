import { describe, expect, it } from 'vitest';
import { generateCorpus, numberWords } from './corpus.js';

describe('generateCorpus', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateCorpus({ seed: 7, chars: 20_000 });
    expect(generateCorpus({ seed: 7, chars: 20_000 })).toBe(a);
    const b = generateCorpus({ seed: 8, chars: 20_000 });
    expect(b).not.toBe(a);
  });

  it('has about the requested size and the default is 200-500 KB', () => {
    const small = generateCorpus({ chars: 10_000 });
    expect(small.length).toBeGreaterThanOrEqual(10_000);
    expect(small.length).toBeLessThan(10_200);
    const full = generateCorpus();
    expect(full.length).toBeGreaterThan(200_000);
    expect(full.length).toBeLessThan(500_000);
  });

  it('mixes all kinds of lines', () => {
    const text = generateCorpus({ seed: 3, chars: 30_000 });
    expect(text).toMatch(/^record \d+: name=/m);
    expect(text).toMatch(/^count by \d: \d+, \d+/m);
    expect(text).toMatch(/^\d+ [+*-] \d+ = \d+$/m);
    expect(text).toMatch(/ is [a-z-]+\.$/m);
    expect(text).toMatch(/ lives in [A-Z][a-z]+\./);
  });

  it('keeps subject-verb agreement and correct arithmetic', () => {
    const lines = generateCorpus({ seed: 11, chars: 60_000 }).split('\n');
    for (const line of lines) {
      // singular determiners never take a plural verb, and vice versa
      expect(line).not.toMatch(/^(This|Every) (\w+ )?\w+ (see|like|find|carry|watch|have|want|drop) /);
      expect(line).not.toMatch(/^(These|Some|Many) (\w+ )?\w+ (sees|likes|finds|carries|watches|has|wants|drops) /);
      const m = /^(\d+) ([+*-]) (\d+) = (\d+)$/.exec(line);
      if (m) {
        const [a, b, c] = [Number(m[1]), Number(m[3]), Number(m[4])];
        expect(m[2] === '+' ? a + b : m[2] === '-' ? a - b : a * b).toBe(c);
      }
    }
  });

  it('states the same facts about an entity everywhere', () => {
    const text = generateCorpus({ seed: 5, chars: 80_000 });
    const homes = new Map<string, Set<string>>();
    for (const m of text.matchAll(/([A-Z][a-z]+) lives in ([A-Z][a-z]+)\./g)) {
      if (!homes.has(m[1])) homes.set(m[1], new Set());
      homes.get(m[1])!.add(m[2]);
    }
    for (const m of text.matchAll(/name=([A-Z][a-z]+); city=([A-Z][a-z]+)/g)) homes.get(m[1])?.add(m[2]);
    expect(homes.size).toBeGreaterThan(10);
    for (const cities of homes.values()) expect(cities.size).toBe(1);
  });

  it('spells numbers', () => {
    expect(numberWords(0)).toBe('zero');
    expect(numberWords(13)).toBe('thirteen');
    expect(numberWords(40)).toBe('forty');
    expect(numberWords(99)).toBe('ninety-nine');
    expect(() => numberWords(100)).toThrow(RangeError);
  });
});
