// A real run killed with SIGKILL in the middle of stages, then resumed: the resumed run's losses
// equal an uninterrupted run's step for step, and metrics.jsonl holds every step exactly once.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from '../testing/dist.js';
import { metricEvents, type MetricEvent } from '../testing/cli.js';
import { expectSameRun } from '../testing/resume.js';

const cli = join(packageRoot, 'dist', 'cli.js');
let tmp: string;
let recipe: string;

type Event = MetricEvent & { label?: string; perplexity?: number };

/** metrics.jsonl's events (a line cut by the kill is skipped). */
const events = (dir: string): Event[] => metricEvents(dir) as Event[];

/** Starts the CLI and SIGKILLs it once metrics show `stage` past `step`; resolves when it is dead. */
function runAndKill(dir: string, args: string[], stage: number, step: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'ignore' });
    let killed = false;
    const timer = setInterval(() => {
      if (events(dir).some((e) => e.event === 'step' && e.stage === stage && e.step! >= step)) {
        killed = true;
        child.kill('SIGKILL');
        clearInterval(timer);
      }
    }, 20);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (killed && signal === 'SIGKILL') resolve();
      else reject(new Error(`run ended before the kill (code ${code}, signal ${signal})`));
    });
  });
}

beforeAll(() => {
  ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'sparse-resume-'));
  recipe = join(tmp, 'resume.yaml');
  writeFileSync(
    recipe,
    [
      'name: resume',
      'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
      'eval: { windows: 8 }',
      'stages:',
      '  - { stage: pretrain, steps: 150, batch: 4, checkpointEvery: 7 }',
      '  - { stage: prune, method: magnitude, config: { n: 2, m: 4 } }',
      '  - { stage: adapt, method: sqft, config: { r: 2 }, steps: 150, batch: 4, checkpointEvery: 7, merge: true }',
      '  - { stage: evaluate, name: recovered }',
      '',
    ].join('\n'),
  );
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('resume after kill -9', () => {
  it('continues where the last checkpoint left off with the same losses as an uninterrupted run', async () => {
    const whole = join(tmp, 'whole');
    const r = spawnSync(process.execPath, [cli, '--recipe', recipe, '--out', whole, '--quiet'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);

    const broken = join(tmp, 'broken');
    await runAndKill(broken, ['--recipe', recipe, '--out', broken, '--quiet'], 0, 40); // mid pretrain
    await runAndKill(broken, ['resume', broken, '--quiet'], 2, 30); // mid adapt (the adapter is attached)
    const fin = spawnSync(process.execPath, [cli, 'resume', broken, '--quiet'], { encoding: 'utf8', timeout: 300_000 });
    expect(fin.status, fin.stderr).toBe(0);

    const key = (e: Event) => `${e.stage}:${e.step}`;
    const a = events(whole).filter((e) => e.event === 'step');
    const b = events(broken).filter((e) => e.event === 'step');
    expect(new Set(b.map(key)).size).toBe(b.length); // no step twice
    expect(b.map(key)).toEqual(a.map(key));
    for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]!.loss! - a[i]!.loss!), key(a[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(a[i]!.loss!)));
    const pa = events(whole).find((e) => e.event === 'eval')!.perplexity!;
    const pb = events(broken).find((e) => e.event === 'eval')!.perplexity!;
    expect(Math.abs(pa - pb)).toBeLessThanOrEqual(1e-6 * pa);
    expect(events(broken).filter((e) => e.event === 'resume')).toHaveLength(2);
  }, 600_000);

  it('inside a DST stage on the sparse path and inside a GMP stage: the same losses, mask events and weights', async () => {
    const dst = join(tmp, 'dst.yaml');
    writeFileSync(
      dst,
      [
        'name: resume-dst',
        'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
        'eval: { windows: 8 }',
        'stages:',
        '  - { stage: train, method: rigl, config: { sparsity: 0.8, budget: erk, every: 5 }, path: sparse, steps: 150, batch: 4, checkpointEvery: 7 }',
        '  - { stage: train, method: gmp, config: { sparsity: 0.9, every: 3 }, steps: 150, batch: 4, checkpointEvery: 7 }',
        '  - { stage: evaluate, name: final }',
        '',
      ].join('\n'),
    );
    const whole = join(tmp, 'dst-whole');
    const r = spawnSync(process.execPath, [cli, '--recipe', dst, '--out', whole, '--quiet'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const broken = join(tmp, 'dst-broken');
    await runAndKill(broken, ['--recipe', dst, '--out', broken, '--quiet'], 0, 40); // mid rigl
    await runAndKill(broken, ['resume', broken, '--quiet'], 1, 40); // mid gmp
    const fin = spawnSync(process.execPath, [cli, 'resume', broken, '--quiet'], { encoding: 'utf8', timeout: 300_000 });
    expect(fin.status, fin.stderr).toBe(0);
    await expectSameRun(whole, broken);
    expect(events(broken).filter((e) => e.event === 'rewire').length).toBe(events(whole).filter((e) => e.event === 'rewire').length);
  }, 600_000);
});
