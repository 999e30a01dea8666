import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { axisFraction, formatTick, linearAxis, logAxis, niceStep, parseHex, scaleColor, truncateMiddle } from './scene.js';

const isNice = (step: number) => {
  const p = 10 ** Math.floor(Math.log10(step) + 1e-12);
  return [1, 2, 5, 10].some((m) => Math.abs(step / p - m) < 1e-6);
};

describe('axes', () => {
  it('linear axis: nice equal steps that cover the data', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.double({ min: 1e-3, max: 1e6, noNaN: true }), (lo, span) => {
        const hi = lo + span;
        const a = linearAxis(lo, hi, 5);
        const step = a.ticks[1] - a.ticks[0];
        // bounds may sit inside the data by rounding noise only (0.1 * 3 = 0.30000000000000004)
        expect(a.min).toBeLessThanOrEqual(lo + step * 1e-6);
        expect(a.max).toBeGreaterThanOrEqual(hi - step * 1e-6);
        expect(a.ticks[0]).toBeCloseTo(a.min, 6);
        expect(a.ticks[a.ticks.length - 1]).toBeCloseTo(a.max, 6);
        expect(isNice(step)).toBe(true);
        for (let i = 1; i < a.ticks.length; i++) expect(a.ticks[i] - a.ticks[i - 1]).toBeCloseTo(step, 6);
        expect(a.ticks.length).toBeGreaterThanOrEqual(3);
        expect(a.ticks.length).toBeLessThanOrEqual(12);
      }),
    );
  });

  it('linear axis: known cases, a flat series, and a zero baseline', () => {
    expect(linearAxis(0.3, 9.7, 5).ticks).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceStep(100, 4)).toBe(20);
    expect(linearAxis(5, 5, 5).min).toBeLessThan(5);
    expect(linearAxis(5, 5, 5).max).toBeGreaterThan(5);
    expect(linearAxis(30, 70, 5, true).min).toBe(0);
    expect(linearAxis(0, 0, 5, true).ticks[0]).toBe(0);
  });

  it('log axis: decades, 1-2-5 ticks over few decades, tight bounds inside one decade', () => {
    expect(logAxis(0.05, 3).ticks).toEqual([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
    const wide = logAxis(1e-5, 1e3);
    expect(wide.min).toBe(1e-5);
    expect(wide.max).toBe(1e3);
    expect(wide.ticks).toContain(1);
    const narrow = logAxis(2.2, 4.9);
    expect(narrow.min).toBeGreaterThan(0);
    expect(narrow.min).toBeLessThanOrEqual(2.2);
    expect(narrow.max).toBeGreaterThanOrEqual(4.9);
    // geometric midpoint maps to the middle
    expect(axisFraction(wide, 1e-1)).toBeCloseTo(0.5, 12);
    expect(() => logAxis(0, 1)).toThrow();
  });

  it('tick labels', () => {
    expect(formatTick(0)).toBe('0');
    expect(formatTick(0.30000000000000004)).toBe('0.3');
    expect(formatTick(2500)).toBe('2500');
    expect(formatTick(2e6)).toBe('2M');
    expect(formatTick(500_000)).toBe('500k');
    expect(formatTick(-12_500)).toBe('-12.5k');
    expect(formatTick(3e20)).toBe('3e20');
    expect(formatTick(1.5e-5)).toBe('1.5e-5');
  });
});

describe('colours and labels', () => {
  it('scale runs viridis from dense (0) to empty (1), greys out non-finite', () => {
    expect(scaleColor(0)).toBe('#440154');
    expect(scaleColor(0.5)).toBe('#21918c');
    expect(scaleColor(1)).toBe('#fde725');
    expect(scaleColor(2)).toBe('#fde725');
    // halfway between the first two stops
    const [a, b] = [parseHex('#440154'), parseHex('#3b528b')];
    expect(parseHex(scaleColor(0.125))).toEqual(a.map((v, i) => Math.round((v + b[i]) / 2)));
    expect(scaleColor(Number.NaN)).toBe('#cccccc');
  });

  it('truncates long labels in the middle', () => {
    expect(truncateMiddle('short', 10)).toBe('short');
    const t = truncateMiddle('blocks.11.attention.query_key_value', 20);
    expect(t).toHaveLength(20);
    expect(t.startsWith('blocks.11')).toBe(true);
    expect(t.endsWith('value')).toBe(true);
    expect(t).toContain('...');
  });
});
