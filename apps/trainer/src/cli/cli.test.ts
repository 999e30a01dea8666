// End to end: the built `sparse-train` executable, spawned as a user would run it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCorpus } from '../data/corpus.js';
import { ensureDist, packageRoot as root } from '../testing/dist.js';

const cli = join(root, 'dist', 'cli.js');
const tiny = ['--steps', '5', '--layers', '1', '--d', '16', '--heads', '2', '--ctx', '16', '--batch', '4', '--eval-windows', '8'];
let tmp: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'sparse-train-'));
}, 180_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('sparse-train', () => {
  it('trains a tiny model on the embedded corpus and prints both perplexities', () => {
    const r = run(tiny);
    expect(r.stderr).not.toMatch(/error|warning/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/char-level, vocab \d+/);
    const m = /held-out perplexity: ([\d.]+) before -> ([\d.]+) after 5 steps/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(30);
    expect(Number(m![2])).toBeLessThan(Number(m![1]));
    // not a terminal: plain progress lines on stderr
    expect(r.stderr).toMatch(/^step 1\/5 .*loss [\d.]+ .*tok\/s/m);
    expect(r.stderr).toMatch(/^step 5\/5 .*done in/m);
  });

  it('trains on a plain-text file with byte-level tokens', () => {
    const file = join(tmp, 'notes.txt');
    writeFileSync(file, `Ünïcödé ok — ${generateCorpus({ seed: 9, chars: 4000 })}`);
    const r = run([...tiny, '--data', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(file);
    expect(r.stdout).toMatch(/byte-level, vocab 256/);
    const m = /held-out perplexity: ([\d.]+) before -> ([\d.]+) after/.exec(r.stdout);
    expect(Number(m![1])).toBeGreaterThan(150);
  });

  it('writes JSON lines with --json', () => {
    const r = run([...tiny, '--json', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number });
    expect(events.map((e) => e.event)).toEqual(['start', 'eval', 'step', 'step', 'step', 'step', 'step', 'eval', 'done']);
    expect(events[6].step).toBe(5);
    const done = events[8] as unknown as { perplexityBefore: number; perplexityAfter: number };
    expect(done.perplexityAfter).toBeLessThan(done.perplexityBefore);
  });

  it('prints only the result with --quiet', () => {
    const r = run([...tiny, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toBe('');
  });

  it('exits 2 naming an unknown flag and its closest match', () => {
    const r = run(['--stesp', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag --stesp (did you mean --steps?)');
    expect(r.stdout).toBe('');
  });

  it('exits 2 naming a flag with a bad value', () => {
    const r = run(['--lr', 'fast']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--lr must be a positive number, got 'fast'");
  });

  it('exits 1 naming a missing or empty data file', () => {
    const missing = join(tmp, 'nope.txt');
    const r = run(['--data', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data file ${missing} does not exist`);
    const empty = join(tmp, 'empty.txt');
    writeFileSync(empty, '');
    const e = run(['--data', empty]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain(`data file ${empty} is empty`);
  });

  it('prints help and version', () => {
    const h = run(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: sparse-train/);
    const v = run(['--version']);
    expect(v.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(v.stdout.trim()).toBe(pkg.version);
  });
});
