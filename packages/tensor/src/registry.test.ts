import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArgumentError } from './errors.js';
import { editDistance } from './names.js';
import { ConfigError, createRegistry, provenanceLine, provenanceProblems, UnknownNameError, type ConfigSchema, type RegistryEntry } from './registry.js';

// A hand-written schema (zod's safeParse shape): { size: positive integer, default 1 }.
const sizeSchema: ConfigSchema<{ size: number }> = {
  safeParse(v) {
    const o = (v ?? {}) as Record<string, unknown>;
    const size = o.size ?? 1;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) return { success: false, error: { issues: [{ path: ['size'], message: 'expected a positive integer' }] } };
    return { success: true, data: { size } };
  },
};

interface Thing extends RegistryEntry<'thing'> {
  run(x: number): number;
}
const thing = (name: string, k = 1): Thing => ({
  kind: 'thing',
  name,
  describe: `multiplies by ${k}`,
  paper: "none (this library's own method): a test entry",
  differs: [],
  schema: sizeSchema,
  run: (x) => x * k,
});

describe('createRegistry', () => {
  it('holds builtins, registers, lists sorted, and unregisters only its own entry', () => {
    const r = createRegistry<Thing>({ kind: 'thing', builtins: [thing('zeta', 2), thing('alpha', 3)] });
    expect(r.list()).toEqual(['alpha', 'zeta']);
    expect(r.get('zeta').run(5)).toBe(10);
    const off = r.register(thing('mid-way', 4));
    expect(r.entries().map((e) => e.name)).toEqual(['alpha', 'mid-way', 'zeta']);
    expect(r.has('mid-way')).toBe(true);
    off();
    expect(r.find('mid-way')).toBeUndefined();
    // a stale unregister function does not remove a newer entry of the same name
    const again = thing('mid-way', 5);
    r.register(again);
    off();
    expect(r.get('mid-way')).toBe(again);
  });

  it('refuses malformed entries with the reason', () => {
    const r = createRegistry<Thing>({ kind: 'thing', check: (e) => {
      if (typeof e.run !== 'function') throw new ArgumentError(`register thing: '${e.name}' needs run`);
    } });
    expect(() => r.register(thing('Upper'))).toThrow(/kebab-case/);
    expect(() => r.register(thing('snake_case'))).toThrow(/kebab-case/);
    expect(() => r.register(thing('trailing-'))).toThrow(/kebab-case/);
    expect(() => r.register({ ...thing('a'), kind: 'other' } as unknown as Thing)).toThrow(/kind "other"/);
    expect(() => r.register({ ...thing('a'), describe: ' ' })).toThrow(/describe/);
    expect(() => r.register({ ...thing('a'), schema: {} } as unknown as Thing)).toThrow(/schema/);
    expect(() => r.register({ ...thing('a'), run: undefined } as unknown as Thing)).toThrow(/needs run/);
    r.register(thing('a'));
    expect(() => r.register(thing('a'))).toThrow(/already registered/);
    expect(r.list()).toEqual(['a']);
  });

  it('refuses a malformed paper or differs, naming the entry and the field', () => {
    const r = createRegistry<Thing>({ kind: 'thing' });
    const { paper: _p, ...noPaper } = thing('a');
    const { differs: _d, ...noDiffers } = thing('a');
    expect(() => r.register(noPaper as Thing)).toThrow(/register thing: 'a' paper must be a non-empty citation .*got undefined/);
    expect(() => r.register(noDiffers as Thing)).toThrow(/register thing: 'a' differs must be an array of lines/);
    expect(() => createRegistry<Thing>({ kind: 'thing', builtins: [noPaper as Thing] })).toThrow(/'a' paper/);
    expect(() => r.register({ ...thing('a'), paper: ' ' })).toThrow(/register thing: 'a' paper must be a non-empty citation/);
    expect(() => r.register({ ...thing('a'), paper: 3 } as unknown as Thing)).toThrow(/'a' paper/);
    expect(() => r.register({ ...thing('a'), differs: 'none' } as unknown as Thing)).toThrow(/'a' differs must be an array/);
    expect(() => r.register({ ...thing('a'), differs: ['ok', ''] })).toThrow(/'a' differs\[1\] must be a non-empty string/);
    expect(() => r.register({ ...thing('a'), differs: [7] } as unknown as Thing)).toThrow(/'a' differs\[0\]/);
    r.register({ ...thing('a'), paper: 'Someone et al. 2020, A Paper', differs: ['one sparsity for every layer'] });
    expect(r.get('a').differs).toEqual(['one sparsity for every layer']);
  });

  it('provenanceProblems names every entry without a paper or a differs list', () => {
    const good = thing('good');
    const { paper: _p, ...noPaper } = thing('no-paper');
    const { differs: _d, ...noDiffers } = thing('no-differs');
    const problems = provenanceProblems([good, noPaper, noDiffers, { ...thing('blank'), differs: [' '] }]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/provenance thing: 'no-paper' paper must be a non-empty citation.*got undefined/);
    expect(problems[1]).toMatch(/'no-differs' differs must be an array/);
    expect(problems[2]).toMatch(/'blank' differs\[0\] must be a non-empty string/);
    expect(provenanceProblems([good, { ...thing('x'), differs: ['a departure'] }])).toEqual([]);
    expect(provenanceLine({ paper: 'A et al. 2020, T', differs: [] })).toBe('Paper: A et al. 2020, T. Differs: none.');
    expect(provenanceLine({ paper: 'A et al. 2020, T', differs: ['x', 'y'] })).toBe('Paper: A et al. 2020, T. Differs: x; y.');
  });

  it('an unknown name is a typed error with the nearest names', () => {
    const r = createRegistry<Thing>({ kind: 'thing', builtins: [thing('sparsegpt'), thing('wanda'), thing('magnitude')] });
    let err: unknown;
    try {
      r.get('sparsgpt');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownNameError);
    expect(err).toBeInstanceOf(ArgumentError);
    const u = err as UnknownNameError;
    expect(u.suggestions).toEqual(['sparsegpt']);
    expect(u.kind).toBe('thing');
    expect(u.message).toBe(`unknown thing "sparsgpt"; did you mean 'sparsegpt'? (registered: magnitude, sparsegpt, wanda)`);
    expect(() => r.get('zzzzzzzzzzzzzz')).toThrow(/^unknown thing "zzzzzzzzzzzzzz" \(registered/);
  });

  it('parse fills defaults and names the failing field', () => {
    const r = createRegistry<Thing>({ kind: 'thing', builtins: [thing('a')] });
    expect(r.parse('a', undefined)).toEqual({ size: 1 });
    expect(r.parse('a', { size: 3 })).toEqual({ size: 3 });
    let err: unknown;
    try {
      r.parse('a', { size: 0 }, 'stages[1].config');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([{ path: ['size'], message: 'expected a positive integer' }]);
    expect((err as Error).message).toBe('stages[1].config: invalid config: size: expected a positive integer');
  });

  it('property: every registered name is found; a suggestion is never farther than any other name', () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}$/);
    fc.assert(
      fc.property(fc.uniqueArray(word, { minLength: 1, maxLength: 8 }), word, (names, probe) => {
        const r = createRegistry<Thing>({ kind: 'thing', builtins: names.map((n) => thing(n)) });
        for (const n of names) expect(r.get(n).name).toBe(n);
        expect(r.list()).toEqual([...names].sort());
        if (names.includes(probe)) return true;
        const best = r.closest(probe, 1)[0];
        if (best !== undefined) {
          const d = editDistance(probe, best);
          for (const n of names) expect(editDistance(probe, n)).toBeGreaterThanOrEqual(d);
        }
        expect(() => r.get(probe)).toThrow(UnknownNameError);
        return true;
      }),
    );
  });
});
