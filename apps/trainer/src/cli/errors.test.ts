// How main() reports failures it did not expect, and how each kind of error maps to a line and an
// exit status (the built CLI's cases are in failures.test.ts).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { ArgumentError } from '@sparse/tensor';
import { RecipeError } from '../recipe/errors.js';
import { RunLockedError, RunWriteError } from '../run/errors.js';
import { describeError, formatFailure } from './errors.js';

vi.mock('../run/runner.js', () => ({
  startRun: () => {
    throw new TypeError("Cannot read properties of undefined (reading 'x')");
  },
  resumeRun: () => Promise.reject(new RangeError('Invalid typed array length: -1')),
}));

const { main } = await import('./main.js');

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: { write: (s: string) => ((out.stdout += s), true) }, stderr: { write: (s: string) => ((out.stderr += s), true) } } };
}

const errno = (code: string, path?: string) => Object.assign(new Error(`${code}: failed, write`), { code, ...(path ? { path } : {}) });

describe('unexpected errors', () => {
  it('print a short message and where the full trace is; --debug prints it', async () => {
    const a = capture();
    expect(await main(['--steps', '1'], a.io)).toBe(1);
    const m = /^sparse-train: TypeError: Cannot read properties of undefined \(reading 'x'\) \(an unexpected error: the full trace is in (\S+); run again with --debug or SPARSE_TRAIN_DEBUG=1 to print it\)\n$/.exec(a.out.stderr);
    expect(m, a.out.stderr).not.toBeNull();
    const trace = readFileSync(m![1]!.replace(/;$/, ''), 'utf8');
    expect(trace).toMatch(/TypeError: Cannot read properties/);
    expect(trace).toMatch(/\n\s+at /);
    rmSync(m![1]!.replace(/;$/, ''));

    const b = capture();
    expect(await main(['resume', 'somewhere', '--debug'], b.io)).toBe(1);
    expect(b.out.stderr).toMatch(/^sparse-train: RangeError: Invalid typed array length: -1 \(an unexpected error/);
    expect(b.out.stderr).toMatch(/\n\s+at /);

    const c = capture();
    expect(await main(['resume', 'somewhere', '--json'], c.io)).toBe(1);
    expect(c.out.stderr).toBe('');
    const line = JSON.parse(c.out.stdout) as { event: string; kind: string; traceFile: string };
    expect(line).toMatchObject({ event: 'error', kind: 'internal', exit: 1 });
    expect(existsSync(line.traceFile)).toBe(true);
    rmSync(line.traceFile);
  });
});

describe('describeError', () => {
  it('maps each kind to its exit status and one line', () => {
    expect(describeError(new RecipeError('r.yaml', [{ path: 'stages[0].steps', message: 'bad' }]))).toMatchObject({ exit: 2, kind: 'recipe', message: 'invalid recipe r.yaml: stages[0].steps: bad' });
    expect(describeError(new RunLockedError('/r', '/r/sparse-run.lock', 42, undefined))).toMatchObject({ exit: 1, kind: 'locked' });
    expect(describeError(new RunWriteError('/r/checkpoints', 'ENOSPC', '/r', true)).message).toBe("cannot write /r/checkpoints: no space left on the device (ENOSPC). The last checkpoint is intact: free some space, then continue with 'sparse-train resume /r'");
    expect(describeError(new RunWriteError('/r/recipe.json', 'EACCES', '/r', false)).message).toBe('cannot write /r/recipe.json: permission denied (EACCES). Nothing was kept: make the folder writable, then start the run again');
    expect(describeError(errno('EROFS', '/r/report.html'))).toMatchObject({ exit: 1, kind: 'write', message: 'cannot write /r/report.html: the file system is read-only (EROFS); make it writable and try again' });
    expect(describeError(errno('EACCES', '/r/x'))).toMatchObject({ exit: 1, kind: 'write', file: '/r/x' });
    expect(describeError(errno('ENOENT', '/r/y'))).toMatchObject({ exit: 1, kind: 'failed', file: '/r/y' });
    expect(describeError(new ArgumentError('stages[1]: rigl needs all or none\nsecond line'))).toMatchObject({ exit: 1, kind: 'failed', message: 'stages[1]: rigl needs all or none' });
    const f = describeError(new RecipeError('r.yaml', [{ path: 'a', message: 'x' }, { path: 'b', message: 'y' }]));
    expect(formatFailure(f, { json: false, debug: false }).stderr).toBe('sparse-train: invalid recipe r.yaml:\n  a: x\n  b: y\n');
    expect(JSON.parse(formatFailure(f, { json: true, debug: false }).stdout)).toMatchObject({ event: 'error', problems: [{ path: 'a', message: 'x' }, { path: 'b', message: 'y' }] });
  });
});
