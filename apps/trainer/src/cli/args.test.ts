import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closestFlag, DEFAULT_OPTIONS, FlagError, parseArgs, usage } from './args.js';

function flagError(argv: string[]): FlagError {
  try {
    parseArgs(argv);
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error(`parseArgs(${JSON.stringify(argv)}) did not throw`);
}

describe('parseArgs', () => {
  it('returns the defaults for no arguments', () => {
    expect(parseArgs([])).toEqual(DEFAULT_OPTIONS);
  });

  it('reads values in both --flag value and --flag=value forms', () => {
    const o = parseArgs(['--steps', '5', '--d=16', '--layers', '1', '--lr', '1e-3', '--data', 'x.txt', '--json', '-q', '--heads=2']);
    expect(o).toMatchObject({ steps: 5, d: 16, layers: 1, lr: 1e-3, data: 'x.txt', json: true, quiet: true, heads: 2 });
  });

  it('names the unknown flag and the closest known one', () => {
    const e = flagError(['--stpes', '3']);
    expect(e.flag).toBe('--stpes');
    expect(e.message).toBe('unknown flag --stpes (did you mean --steps?)');
    expect(flagError(['--layer', '2']).message).toMatch(/did you mean --layers\?/);
    expect(flagError(['--learning-rate=1']).message).toMatch(/--learning-rate/);
  });

  it('rejects bad values, naming the flag', () => {
    expect(flagError(['--steps', 'ten']).message).toBe("--steps must be a non-negative integer, got 'ten'");
    expect(flagError(['--batch', '0']).flag).toBe('--batch');
    expect(flagError(['--lr', '-1']).message).toMatch(/^--lr must be a positive number/);
    expect(flagError(['--ctx', '2.5']).flag).toBe('--ctx');
    expect(flagError(['--seed', '1e3']).flag).toBe('--seed');
    expect(flagError(['--steps']).message).toBe('--steps needs a value (N)');
    expect(flagError(['--steps', '--quiet']).message).toBe('--steps needs a value (N)');
    expect(flagError(['--quiet=yes']).message).toBe('--quiet takes no value');
    expect(flagError(['--steps', '1', '--steps', '2']).message).toMatch(/more than once/);
    expect(flagError(['trian']).message).toMatch(/unknown command 'trian'/);
    expect(flagError(['resum', 'x']).message).toMatch(/did you mean 'resume'/);
    expect(flagError(['--d', '30', '--heads', '4']).message).toBe('--d (30) must be a multiple of --heads (4)');
    expect(flagError(['resume']).message).toBe('usage: sparse-train resume <run-folder>');
    expect(flagError(['methods', 'prune', 'extra']).message).toMatch(/usage: sparse-train methods/);
    expect(flagError(['--explain']).message).toMatch(/--explain goes with/);
  });

  it('accepts every non-negative integer for --steps and rejects any other text', () => {
    fc.assert(
      fc.property(fc.nat(), (n) => {
        expect(parseArgs(['--steps', String(n)]).steps).toBe(n);
      }),
    );
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/^\s*\+?\d+\s*$/.test(s) && !s.startsWith('--')),
        (s) => {
          expect(flagError(['--steps', s]).flag).toBe('--steps');
        },
      ),
    );
  });

  it('reads commands and their arguments', () => {
    expect(parseArgs(['resume', 'runs/a'])).toMatchObject({ command: 'resume', args: ['runs/a'] });
    expect(parseArgs(['methods'])).toMatchObject({ command: 'methods', args: [] });
    expect(parseArgs(['methods', 'prune'])).toMatchObject({ command: 'methods', args: ['prune'] });
    expect(parseArgs(['recipe', 'r.yaml', '--explain'])).toMatchObject({ command: 'recipe', args: ['r.yaml'], explain: true });
    expect(parseArgs(['--recipe', 'r.yaml', '--out', 'o'])).toMatchObject({ command: 'run', recipe: 'r.yaml', out: 'o' });
  });

  it('suggests by edit distance', () => {
    expect(closestFlag('--jsno')).toBe('--json');
    expect(closestFlag('--versoin')).toBe('--version');
  });

  it('documents every flag in the usage text', () => {
    const text = usage();
    for (const f of ['--recipe', '--out', '--explain', 'resume', 'methods', '--data', '--steps', '--seed', '--batch', '--ctx', '--layers', '--d ', '--lr', '--quiet', '--json', '--help', '--version']) {
      expect(text).toContain(f);
    }
  });
});
