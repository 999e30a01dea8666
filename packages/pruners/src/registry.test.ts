import { count, maskAll } from '@sparse/masks';
import { ArgumentError, provenanceProblems, Random, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { normalMatrix } from './__fixtures__/layers.js';
import { getPruner, listPruners, pruneLayer, pruners, registerPruner } from './registry.js';

describe('pruner registry', () => {
  it('every registered pruner names its paper and lists its departures (paper, differs)', () => {
    expect(provenanceProblems(pruners.entries())).toEqual([]);
    expect(getPruner('sparsegpt').paper).toMatch(/^Frantar & Alistarh 2023, SparseGPT/);
    expect(getPruner('magnitude').paper).toMatch(/^none \(/);
  });

  it('lists the built-in methods that work', () => {
    expect(listPruners()).toEqual(['dsnot', 'magnitude', 'random', 'sparsegpt', 'structured', 'wanda']);
    expect(getPruner('sparsegpt').calibration).toEqual(['hessian']);
    expect(getPruner('wanda').calibration).toEqual(['columns']);
    expect(getPruner('magnitude').schema.parse({})).toEqual({ sparsity: 0.5, granularity: 'tensor' });
    expect(getPruner('sparsegpt').schema.parse({ n: 2, m: 4 })).toEqual({ n: 2, m: 4, blocksize: 128, percdamp: 0.01, actOrder: false });
  });

  it('suggests the closest name for an unknown one', () => {
    expect(() => getPruner('wnda')).toThrow(/did you mean 'wanda'/);
    expect(() => getPruner('SparseGPT')).toThrow(/did you mean 'sparsegpt'/);
    expect(() => getPruner('magnitud')).toThrow(ArgumentError);
    expect(pruners.closest('dsnt', 1)).toEqual(['dsnot']);
    expect(pruners.closest('completely-different')).toEqual([]);
  });

  it('registers unique lowercase names only, and can unregister', () => {
    const def = {
      name: 'keep-first',
      kind: 'pruner',
      describe: 'keeps the first k columns',
      paper: "none (this library's own method): a test pruner",
      differs: [],
      schema: z.strictObject({ k: z.int().min(0).default(1) }),
      calibration: [] as const,
      prune({ weight, config }: { weight: { shape: number[] }; config: { k: number } }) {
        const [r, c] = weight.shape as [number, number];
        const bits = maskAll([r, c]);
        for (let i = 0; i < r; i++) for (let j = config.k; j < c; j++) bits.bits[(i * c + j) >>> 5]! &= ~(1 << ((i * c + j) & 31));
        return { mask: bits, weight: tensor(new Float32Array(r * c), [r, c]) };
      },
    };
    const unregister = registerPruner(def as never);
    expect(listPruners()).toContain('keep-first');
    expect(count(pruneLayer('keep-first', { name: 'l', weight: normalMatrix(new Random(0), 3, 4), config: { k: 2 } }).mask)).toBe(6);
    expect(() => registerPruner(def as never)).toThrow(/already registered/);
    unregister();
    expect(listPruners()).not.toContain('keep-first');
    expect(() => registerPruner({ ...def, name: 'KeepFirst' } as never)).toThrow(/kebab-case/);
    expect(() => registerPruner({ ...def, name: 'magnitude' } as never)).toThrow(/already registered/);
    expect(() => registerPruner({ ...def, schema: {} } as never)).toThrow(/zod/);
    expect(() => registerPruner({ ...def, name: 'no-paper', paper: undefined } as never)).toThrow(/'no-paper' paper must be a non-empty citation/);
    expect(() => registerPruner({ ...def, name: 'no-differs', differs: undefined } as never)).toThrow(/'no-differs' differs must be an array/);
  });

  it('pruneLayer validates the config and names the layer and the field', () => {
    const w = normalMatrix(new Random(1), 2, 8);
    expect(() => pruneLayer('magnitude', { name: 'enc.3', weight: w, config: { sparsity: 1.5 } })).toThrow(/magnitude: layer 'enc\.3': invalid config: sparsity/);
    expect(() => pruneLayer('magnitude', { name: 'enc.3', weight: w, config: { n: 5, m: 4 } })).toThrow(/n: N:M needs N < M/);
    expect(() => pruneLayer('magnitude', { name: 'enc.3', weight: w, config: { n: 2.5, m: 4 } })).toThrow(/n must be an integer/);
    expect(count(pruneLayer('magnitude', { name: 'enc.3', weight: w, config: undefined }).mask)).toBe(8);
  });
});
