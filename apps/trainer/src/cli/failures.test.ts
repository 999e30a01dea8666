// The built CLI on everything that can go wrong: each expected failure is one line naming the file or
// field and what to do (exit 2 for usage, 1 for a failed run), one JSON line with --json, never a
// stack trace; sizes and layer-dependent fields are checked before any work starts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCorpus } from '../data/corpus.js';
import { ensureDist } from '../testing/dist.js';
import { metricEvents, runCLI, type CLIResult } from '../testing/cli.js';

let tmp: string;
const MODEL = 'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }';
const tiny = ['--layers', '1', '--d', '16', '--heads', '2', '--ctx', '16', '--batch', '4', '--eval-windows', '4', '--steps', '3'];

function recipeFile(name: string, lines: string[]): string {
  const path = join(tmp, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const run = (args: string[], opts: Parameters<typeof runCLI>[1] = {}) => runCLI(args, { cwd: tmp, ...opts });

/** One message on stderr, no trace, nothing on stdout. */
function expectOneLine(r: CLIResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^sparse-train: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

let finished: string;
let finishedRecipe: string;

beforeAll(() => {
  ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'sparse-failures-'));
  finishedRecipe = recipeFile('small.yaml', ['name: small', MODEL, 'eval: { windows: 4 }', 'stages:', '  - { stage: pretrain, steps: 4, batch: 4 }', '  - { stage: evaluate }']);
  finished = join(tmp, 'finished');
  const r = run(['--recipe', finishedRecipe, '--out', finished, '--quiet']);
  if (r.code !== 0) throw new Error(r.stderr);
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('recipe files', () => {
  it('a missing file, a folder, an empty file and a YAML syntax error are one line each, exit 2', () => {
    expectOneLine(run(['--recipe', join(tmp, 'nope.yaml')]), 2, /invalid recipe .*nope\.yaml: the file does not exist; give a recipe file/);
    expectOneLine(run(['--recipe', tmp]), 2, /is a folder, not a recipe file/);
    expectOneLine(run(['--recipe', recipeFile('empty.yaml', ['# nothing'])]), 2, /empty\.yaml: the recipe is empty; it needs at least a `stages:` list/);
    expectOneLine(run(['--recipe', recipeFile('syntax.yaml', ['stages:', '  - { stage: pretrain, steps: 2'])]), 2, /syntax\.yaml: line \d+, column \d+: /);
    expectOneLine(run(['recipe', join(tmp, 'nope.yaml'), '--explain']), 2, /does not exist/);
  });

  it('with --json the error is one JSON line on stdout', () => {
    const r = run(['--recipe', join(tmp, 'nope.yaml'), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'error', exit: 2, kind: 'recipe', file: join(tmp, 'nope.yaml') });
    const flag = run(['--stesp', '2', '--json']);
    expect(flag.code).toBe(2);
    expect(JSON.parse(flag.stdout)).toMatchObject({ event: 'error', kind: 'usage', message: 'unknown flag --stesp (did you mean --steps?)' });
  });
});

describe('--out', () => {
  it('an existing file, a path too long, or a non-empty folder is refused before any work, exit 2', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'mine');
    expectOneLine(run([...tiny, '--out', file]), 2, /--out .*a-file is an existing file, not a folder; choose another --out/);
    expect(readFileSync(file, 'utf8')).toBe('mine');
    expectOneLine(run([...tiny, '--out', join(tmp, 'x'.repeat(300))]), 2, /cannot be used as a run folder: the path is too long \(ENAMETOOLONG\)/);
    expectOneLine(run([...tiny, '--out', join(file, 'sub')]), 2, /a part of the path is a file/);
    const full = join(tmp, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'notes.txt'), 'keep');
    expectOneLine(run([...tiny, '--out', full]), 2, /is a folder with other files in it \(notes\.txt\)/);
    expect(readdirSync(full)).toEqual(['notes.txt']);
  });

  it("a recipe name like '../../x' makes a folder inside runs/", () => {
    const cwd = join(tmp, 'named');
    mkdirSync(cwd);
    const r = runCLI(['--recipe', recipeFile('escape.yaml', ['name: ../../x', MODEL, 'eval: { windows: 2 }', 'stages:', '  - { stage: pretrain, steps: 1, batch: 2 }']), '--quiet'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual(['runs']);
    const made = readdirSync(join(cwd, 'runs'));
    expect(made).toHaveLength(1);
    expect(made[0]).toMatch(/^x-\d{4}-/);
    expect(existsSync(join(tmp, 'x'))).toBe(false);
  });
});

describe('checks before any work', () => {
  const refused = (name: string, lines: string[], pattern: RegExp) => {
    const out = join(tmp, `out-${name}`);
    const t0 = Date.now();
    const r = run(['--recipe', recipeFile(`${name}.yaml`, lines), '--out', out], { timeout: 60_000 });
    expectOneLine(r, 2, pattern);
    expect(existsSync(out), 'no run folder').toBe(false);
    return Date.now() - t0;
  };

  it('sizes far beyond the machine name the field and the estimated bytes against its memory', () => {
    const mem = /more than this machine's (memory|memory limit) \([\d.]+ [KMGT]iB\)/;
    refused('d', ['model: { architecture: gpt, d: 1000000000, heads: 4 }', 'stages: [{ stage: pretrain, steps: 1 }]'], new RegExp(`model\\.d: the run needs an estimated [\\d.]+ \\w+ of memory.*${mem.source}.*lower model\\.d \\(1000000000\\)`));
    refused('layers', ['model: { architecture: gpt, layers: 1000000 }', 'stages: [{ stage: pretrain, steps: 1 }]'], /model\.layers: the run needs an estimated .*lower model\.layers \(1000000\)/);
    refused('ctx', ['model: { architecture: gpt, ctx: 100000000 }', 'stages: [{ stage: pretrain, steps: 1 }]'], /model\.ctx: .*lower model\.ctx \(100000000\)/);
    refused('batch', ['stages: [{ stage: pretrain, steps: 1, batch: 1000000000 }]'], /stages\[0\]\.batch: the run needs an estimated .*lower stages\[0\]\.batch \(1000000000\)/);
    const ms = refused('windows', ['stages: [{ stage: calibrate, windows: 1000000000 }, { stage: prune, method: wanda, config: { sparsity: 0.5 } }]'], /stages\[0\]\.windows: the run needs .*lower stages\[0\]\.windows \(1000000000\)/);
    expect(ms).toBeLessThan(30_000);
    // SPARSE_TRAIN_MEMORY stands for the machine's memory
    const small = run(['--recipe', recipeFile('fits.yaml', [MODEL, 'stages: [{ stage: pretrain, steps: 1, batch: 512 }]']), '--out', join(tmp, 'out-fits')], { env: { SPARSE_TRAIN_MEMORY: '1MiB' } });
    expectOneLine(small, 2, /more than SPARSE_TRAIN_MEMORY=1MiB \(1\.0 MiB\).*lower stages\[0\]\.batch \(512\)/);
  });

  it('N:M m, targets, groupSize and permute are checked against the layers before pretraining', () => {
    const pre = '  - { stage: pretrain, steps: 2, batch: 2 }';
    refused('m', ['model: { architecture: gpt, d: 18, layers: 1, heads: 2, ctx: 16 }', 'stages:', pre, '  - { stage: prune, method: wanda, config: { n: 2, m: 4 } }'], /stages\[1\]\.config\.m: m = 4 must divide the inputs of every layer it prunes; h\.0\.attn\.c_attn\.weight has 18/);
    refused('targets', [MODEL, 'stages:', pre, '  - { stage: prune, method: wanda, targets: [mlp.upp], config: { n: 2, m: 4 } }'], /stages\[1\]\.targets: 'mlp\.upp' matches no linear layer \(did you mean 'mlp\.up'\?\)/);
    refused('group', [MODEL, 'stages:', pre, '  - { stage: prune, method: structured, targets: [attn.out], config: { sparsity: 0.5, groupSize: 5 } }'], /stages\[1\]\.config\.groupSize: groupSize 5 must divide the inputs of every targeted layer; h\.0\.attn\.c_proj\.weight has 16/);
    refused('permute', [MODEL, 'stages:', pre, '  - { stage: prune, method: wanda, permute: true, config: { sparsity: 0.5 } }'], /stages\[1\]\.permute: permute searches a channel permutation for N:M pruning; give config n and m/);
    refused('gmp', [MODEL, 'stages:', pre, '  - { stage: train, method: gmp, config: { pattern: { n: 1, m: 3 } }, steps: 2, batch: 2 }'], /stages\[1\]\.config\.pattern\.m: m = 3 must divide/);
  });
});

describe('run failures', () => {
  it('a diverged run names the stage, the step and the lr to lower, and a failed start leaves no folder behind', () => {
    const bad = recipeFile('diverge.yaml', ['name: diverge', MODEL, 'stages:', '  - { stage: pretrain, steps: 40, batch: 4, lr: 1e30, clipNorm: 0, warmup: 0 }']);
    const out = join(tmp, 'diverged');
    const r = run(['--recipe', bad, '--out', out]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^sparse-train: stage 1\/1 \(pretrain:dense#0\) diverged: the loss is (NaN|-?Infinity) at step \d+; lower stages\[0\]\.lr \(now 1e\+30\)/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    // the same --out takes a run at once
    const again = run(['--recipe', finishedRecipe, '--out', out, '--quiet']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('a missing data file, /dev/zero and a named pipe with no writer fail at once, exit 1', () => {
    expectOneLine(run([...tiny, '--data', join(tmp, 'none.txt'), '--out', join(tmp, 'o1')]), 1, /data file .*none\.txt does not exist/);
    expectOneLine(run([...tiny, '--data', '/dev/zero', '--out', join(tmp, 'o2')], { timeout: 60_000 }), 1, /data file \/dev\/zero is a device, not a regular file/);
    const fifo = join(tmp, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const r = run([...tiny, '--data', fifo, '--out', join(tmp, 'o3')], { timeout: 60_000 });
    expectOneLine(r, 1, /is a named pipe, not a regular file; to read a stream, pipe it to standard input: sparse-train --data - </);
    for (const o of ['o1', 'o2', 'o3']) expect(existsSync(join(tmp, o))).toBe(false);
  });
});

describe('data', () => {
  const text = `${generateCorpus({ seed: 5, chars: 3000 })}\n`;

  it("reads standard input once for '-' and /dev/stdin, keeps a copy in the run folder and resumes from it", () => {
    for (const [i, arg] of ['-', '/dev/stdin'].entries()) {
      const out = join(tmp, `stdin-${i}`);
      const r = run([...tiny, '--data', arg, '--out', out, '--quiet'], { input: text });
      expect(r.code, r.stderr).toBe(0);
      const copy = join(out, 'data', 'stdin.txt');
      expect(readFileSync(copy, 'utf8')).toBe(text);
      const recipe = JSON.parse(readFileSync(join(out, 'recipe.json'), 'utf8')) as { data: { path: string } };
      expect(recipe.data.path).toBe(copy);
      const again = run(['resume', out, '--quiet'], { input: '' });
      expect(again.code, again.stderr).toBe(0);
    }
  });

  it('honours heldOut for --data files, byte tokens and the embedded corpus', () => {
    const file = join(tmp, 'notes.txt');
    writeFileSync(file, text);
    const bytes = statSync(file).size;
    const heldOut = recipeFile('heldout.yaml', [MODEL, 'data: { heldOut: 0.25 }', 'eval: { windows: 2 }', 'stages: [{ stage: pretrain, steps: 1, batch: 2 }]']);
    const fromFile = run(['--recipe', heldOut, '--data', file, '--out', join(tmp, 'h1')]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toContain(`held out ${Math.round(bytes * 0.25).toLocaleString('en-US')}`);
    const byte = recipeFile('heldout-byte.yaml', [MODEL, `data: { source: text, path: ${file}, tokenizer: byte, heldOut: 0.4 }`, 'eval: { windows: 2 }', 'stages: [{ stage: pretrain, steps: 1, batch: 2 }]']);
    const b = run(['--recipe', byte, '--out', join(tmp, 'h2')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain(`held out ${Math.round(bytes * 0.4).toLocaleString('en-US')}`);
    const embedded = recipeFile('heldout-embedded.yaml', [MODEL, 'data: { heldOut: 0.3 }', 'eval: { windows: 2 }', 'stages: [{ stage: pretrain, steps: 1, batch: 2 }]']);
    const e = run(['--recipe', embedded, '--out', join(tmp, 'h3')]);
    expect(e.code, e.stderr).toBe(0);
    const m = /: ([\d,]+) tokens .*held out ([\d,]+)/.exec(e.stdout)!;
    const [total, held] = [Number(m[1]!.replace(/,/g, '')), Number(m[2]!.replace(/,/g, ''))];
    expect(held).toBe(Math.round(total * 0.3));
  });
});

describe('run folders', () => {
  it('resume refuses a folder that is not a run and changes nothing in it', () => {
    const mine = join(tmp, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'recipe.json'), readFileSync(join(finished, 'recipe.json')));
    writeFileSync(join(mine, 'metrics.jsonl'), 'my own notes\n');
    expectOneLine(run(['resume', mine]), 2, /is not a sparse-train run folder \(it has no sparse-run\.json\); nothing in it was changed/);
    expect(readFileSync(join(mine, 'metrics.jsonl'), 'utf8')).toBe('my own notes\n');
    expect(readdirSync(mine).sort()).toEqual(['metrics.jsonl', 'recipe.json']);
    expectOneLine(run(['resume', join(tmp, 'no-such-run')]), 2, /does not exist/);
  });

  it('refuses an edited recipe.json, naming what changed, unless --allow-recipe-change', () => {
    const dir = join(tmp, 'edited');
    expect(run(['--recipe', finishedRecipe, '--out', dir, '--quiet']).code).toBe(0);
    const path = join(dir, 'recipe.json');
    const recipe = JSON.parse(readFileSync(path, 'utf8')) as { eval: { windows: number } };
    recipe.eval.windows = 2;
    writeFileSync(path, JSON.stringify(recipe));
    expectOneLine(run(['resume', dir]), 2, /recipe\.json was changed after the run started \(eval\.windows: 4 -> 2\); restore it, or accept the change with 'sparse-train resume .* --allow-recipe-change'/);
    const ok = run(['resume', dir, '--allow-recipe-change']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/changed since the run started \(accepted\): eval\.windows: 4 -> 2/);
    // accepted once, it is the run's recipe
    expect(run(['resume', dir, '--quiet']).code).toBe(0);
    expectOneLine(run(['--allow-recipe-change']), 2, /--allow-recipe-change goes with 'sparse-train resume/);
  });

  it('an invalid recipe.json or a truncated checkpoint is one line naming the file', () => {
    const copyOf = (name: string) => {
      const dir = join(tmp, name);
      execFileSync('cp', ['-r', finished, dir]);
      return dir;
    };
    const bad = copyOf('bad-recipe');
    writeFileSync(join(bad, 'recipe.json'), '{ "name": ');
    expectOneLine(run(['resume', bad]), 2, /recipe\.json: not valid JSON \(.*\); fix the file, or restore it from the recipe in sparse-run\.json/);
    const cut = copyOf('cut-checkpoint');
    const ckpt = readdirSync(join(cut, 'checkpoints')).find((f) => f.endsWith('.safetensors'))!;
    truncateSync(join(cut, 'checkpoints', ckpt), Math.floor(statSync(join(cut, 'checkpoints', ckpt)).size / 2));
    expectOneLine(run(['resume', cut]), 1, /checkpoint .*checkpoints cannot be read \(.*\); the run cannot continue from it/);
    const cutLatest = copyOf('cut-latest');
    truncateSync(join(cutLatest, 'checkpoints', 'latest.json'), 10);
    expectOneLine(run(['resume', cutLatest]), 1, /checkpoint .* cannot be read/);
  });

  it('a live lock refuses a second resume; a dead process\'s lock is taken over; temporary files of a kill are removed', () => {
    const dir = join(tmp, 'locked');
    execFileSync('cp', ['-r', finished, dir]);
    const lock = join(dir, 'sparse-run.lock');
    const host = execFileSync('hostname', { encoding: 'utf8' }).trim();
    // a live process: this test's own
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host, started: new Date().toISOString() }));
    expectOneLine(run(['resume', dir]), 1, new RegExp(`is in use by process ${process.pid} \\(lock file .*sparse-run\\.lock\\); wait for it to finish or stop it first`));
    // a dead one
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
    writeFileSync(lock, JSON.stringify({ pid: dead, host, started: new Date().toISOString() }));
    const temp = join(dir, 'checkpoints', `latest.json.tmp-${dead}-0123456789ab`);
    writeFileSync(temp, 'half');
    const r = run(['resume', dir, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(temp)).toBe(false);
    expect(metricEvents(dir).filter((e) => e.event === 'resume')).toHaveLength(1);
  });

  it('adapters whose names give the same folder are each exported', () => {
    const r = run([
      '--recipe',
      recipeFile('twins.yaml', [
        MODEL,
        'eval: { windows: 2 }',
        'stages:',
        '  - { stage: pretrain, steps: 2, batch: 2 }',
        "  - { stage: adapt, name: 'ft a', method: lora, config: { r: 2 }, steps: 2, batch: 2 }",
        '  - { stage: adapt, name: ft_a, method: lora, config: { r: 2 }, steps: 2, batch: 2 }',
        '  - { stage: adapt, name: ft_a, method: lora, config: { r: 2 }, steps: 2, batch: 2 }',
      ]),
      '--out',
      join(tmp, 'twins'),
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(tmp, 'twins', 'exports', 'adapters')).sort()).toEqual(['ft_a-stage1', 'ft_a-stage2', 'ft_a-stage3']);
  });
});

describe('methods', () => {
  it('export lists the formats; a misspelt kind suggests the right one, exit 2; limits print as ∞', () => {
    const e = run(['methods', 'export']);
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^export formats:$/m);
    for (const f of ['compressed', 'dense', 'adapters']) expect(e.stdout).toMatch(new RegExp(`^ {2}${f} {2}\\S`, 'm'));
    expect(e.stdout).toMatch(/formats: .*"compressed".*= \["compressed","dense"\]/);
    const typo = run(['methods', 'prun']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown stage kind 'prun' \(did you mean 'prune'\?\)/);
    const all = run(['methods']);
    expect(all.code).toBe(0);
    expect(all.stdout).not.toContain('9007199254740991');
    expect(all.stdout).toMatch(/^ {6}r: integer \(0, ∞\] = 8/m);
    expect(all.stdout).toMatch(/^ {6}seed: integer( |$)/m);
  });
});
