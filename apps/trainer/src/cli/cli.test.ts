// End to end: the built `sparse-train` executable, spawned as a user would run it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCorpus } from '../data/corpus.js';
import { ensureDist, packageRoot as root } from '../testing/dist.js';

const cli = join(root, 'dist', 'cli.js');
const tinyModel = ['--layers', '1', '--d', '16', '--heads', '2', '--ctx', '16', '--batch', '4', '--eval-windows', '8'];
let tmp: string;
let recipe: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: tmp, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'sparse-train-'));
  recipe = join(tmp, 'tiny.yaml');
  writeFileSync(
    recipe,
    [
      'name: tiny',
      'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
      'eval: { windows: 8 }',
      'stages:',
      '  - { stage: pretrain, steps: 5, batch: 4 }',
      '  - { stage: evaluate, name: dense }',
      '  - { stage: prune, method: wanda, config: { n: 2, m: 4 } }',
      '  - { stage: evaluate, name: pruned }',
      '  - { stage: report }',
      '',
    ].join('\n'),
  );
}, 180_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('sparse-train', () => {
  it('runs a recipe file into a run folder and prints the perplexities and the report path', () => {
    const out = join(tmp, 'run-a');
    const r = run(['--recipe', recipe, '--out', out]);
    expect(r.stderr).not.toMatch(/error|warning/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/char-level, vocab \d+/);
    expect(r.stdout).toMatch(/held-out perplexity: dense [\d.]+ \| pruned [\d.]+/);
    expect(r.stdout).toContain(`report: ${join(out, 'report.html')}`);
    // not a terminal: plain progress lines on stderr, labelled with the stage
    expect(r.stderr).toMatch(/^\[1\/5\] pretrain:dense#0 step 1\/5 .*loss [\d.]+ .*tok\/s/m);
    for (const f of ['recipe.json', 'metrics.jsonl', 'report.html', 'checkpoints/latest.json']) expect(existsSync(join(out, f)), f).toBe(true);
  });

  it('runs the default recipe with size overrides', () => {
    const out = join(tmp, 'run-default');
    const r = run([...tinyModel, '--steps', '5', '--out', out, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/held-out perplexity: dense [\d.]+ \| pruned 2:4 [\d.]+ \| recovered [\d.]+/);
    const resolved = JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8')) as { model: { d: number }; stages: { stage: string; method?: string }[] };
    expect(resolved.model.d).toBe(16);
    expect(resolved.stages.map((s) => s.method).filter(Boolean)).toEqual(['dense', 'sparsegpt', 'sqft']);
    expect(existsSync(join(out, 'exports', 'model.compressed.safetensors'))).toBe(true);
  });

  it('trains on a plain-text file with byte-level tokens', () => {
    const file = join(tmp, 'notes.txt');
    writeFileSync(file, `Ünïcödé ok — ${generateCorpus({ seed: 9, chars: 4000 })}`);
    const r = run(['--recipe', recipe, '--data', file, '--out', join(tmp, 'run-text')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(file);
    expect(r.stdout).toMatch(/byte-level, vocab 256/);
  });

  it('writes JSON lines with --json', () => {
    const r = run(['--recipe', recipe, '--json', '--out', join(tmp, 'run-json')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number; perplexity?: number });
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('start');
    expect(kinds.at(-1)).toBe('done');
    expect(kinds.filter((k) => k === 'step')).toHaveLength(5);
    expect(kinds.filter((k) => k === 'eval')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'stage-end')).toHaveLength(5);
  });

  it('lists every method with its config fields and defaults', () => {
    const r = run(['methods']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^prune:$/m);
    expect(r.stdout).toMatch(/^ {2}sparsegpt {2}\(@sparse\/pruners\)/m);
    // under each method: the paper it follows, then its departures on one line
    expect(r.stdout).toMatch(/^ {2}sparsegpt {2}.*\n {4}paper: Frantar & Alistarh 2023, SparseGPT: .*\n {4}differs: actOrder: true/m);
    expect(r.stdout).toMatch(/^ {2}wanda {2}.*\n {4}paper: Sun et al\. 2023, .*\n {4}differs: none$/m);
    const listed = r.stdout.split('\n').filter((l) => /^ {2}\S/.test(l)).length;
    expect(r.stdout.split('\n').filter((l) => /^ {4}paper: \S/.test(l))).toHaveLength(listed);
    expect(r.stdout.split('\n').filter((l) => /^ {4}differs: \S/.test(l))).toHaveLength(listed);
    expect(r.stdout).toMatch(/^ {6}r: integer.* = 8/m);
    const p = run(['methods', 'prune']);
    expect(p.stdout).not.toMatch(/^adapt:/m);
    expect(run(['methods', 'prnue']).code).toBe(2);
  });

  it('explains a recipe with every default filled in', () => {
    const r = run(['recipe', recipe, '--explain']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sequential: true/);
    expect(r.stdout).toMatch(/granularity: row/);
  });

  it('exits 2 naming the recipe path of a bad field, before any work', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'stages:\n  - { stage: pretrain, steps: 2 }\n  - { stage: prune, method: wanda, config: { sparsity: 1.5 } }\n  - { stage: prune, method: sparsgpt }\n');
    const out = join(tmp, 'run-bad');
    const r = run(['--recipe', bad, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('stages[1].config.sparsity');
    expect(r.stderr).toMatch(/stages\[2\]\.method: unknown prune method 'sparsgpt'; did you mean 'sparsegpt'/);
    expect(existsSync(out)).toBe(false);
  });

  it('exits 2 naming an unknown flag and its closest match', () => {
    const r = run(['--stesp', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown flag --stesp (did you mean --steps?)');
    expect(r.stdout).toBe('');
    expect(run(['--lr', 'fast']).stderr).toContain("--lr must be a positive number, got 'fast'");
  });

  it('exits 1 naming a missing data file', () => {
    const missing = join(tmp, 'nope.txt');
    const r = run(['--recipe', recipe, '--data', missing, '--out', join(tmp, 'run-missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data file ${missing} does not exist`);
  });

  it('refuses to start a second run in a used folder', () => {
    const r = run(['--recipe', recipe, '--out', join(tmp, 'run-a')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already holds a run; continue it with 'sparse-train resume/);
  });

  it('prints help and version', () => {
    const h = run(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: sparse-train/);
    const v = run(['--version']);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(v.stdout.trim()).toBe(pkg.version);
  });
});
