import { count, equals, isKept, keepCount } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { isNM, normalMatrix } from '../../__fixtures__/layers.js';
import { randomPrune } from './random.js';

describe('random', () => {
  const w = normalMatrix(new Random(1), 10, 16);

  it('is reproducible per seed and layer name, and differs across either', () => {
    const a = randomPrune({ name: 'fc1', weight: w, config: { seed: 7 } });
    expect(equals(a.mask, randomPrune({ name: 'fc1', weight: w, config: { seed: 7 } }).mask)).toBe(true);
    expect(equals(a.mask, randomPrune({ name: 'fc2', weight: w, config: { seed: 7 } }).mask)).toBe(false);
    expect(equals(a.mask, randomPrune({ name: 'fc1', weight: w, config: { seed: 8 } }).mask)).toBe(false);
  });

  it('hits the exact count and N:M pattern, and is roughly uniform', () => {
    expect(count(randomPrune({ name: 'l', weight: w, config: { sparsity: 0.7 } }).mask)).toBe(keepCount(160, 0.7));
    expect(isNM(randomPrune({ name: 'l', weight: w, config: { n: 1, m: 4 } }).mask, 1, 4)).toBe(true);
    // Over many seeds every position is kept about half the time (binomial: 200 ± 10 of 400).
    const hits = new Array<number>(160).fill(0);
    for (let s = 0; s < 400; s++) {
      const m = randomPrune({ name: 'l', weight: w, config: { seed: s, sparsity: 0.5 } }).mask;
      for (let k = 0; k < 160; k++) if (isKept(m, k)) hits[k]!++;
    }
    for (const h of hits) expect(Math.abs(h - 200)).toBeLessThan(60);
  });
});
