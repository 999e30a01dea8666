// Ctrl-C and SIGTERM during a real run (the built CLI): the run finishes its step, writes a checkpoint
// at it, says how to continue and exits 130 / 143; resumed, it equals an uninterrupted run step for step.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist } from '../testing/dist.js';
import { metricEvents, runAndSignal, runCLI } from '../testing/cli.js';
import { expectSameRun } from '../testing/resume.js';

let tmp: string;
let recipe: string;

beforeAll(() => {
  ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'sparse-interrupt-'));
  recipe = join(tmp, 'stop.yaml');
  // checkpointEvery is larger than any stage: every checkpoint inside a stage is the stop's own
  writeFileSync(
    recipe,
    [
      'name: stop',
      'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
      'eval: { windows: 8 }',
      'stages:',
      '  - { stage: pretrain, steps: 120, batch: 4, checkpointEvery: 1000 }',
      '  - { stage: prune, method: magnitude, config: { n: 2, m: 4 } }',
      '  - { stage: adapt, method: sqft, config: { r: 2 }, steps: 120, batch: 4, checkpointEvery: 1000 }',
      '  - { stage: evaluate, name: final }',
      '',
    ].join('\n'),
  );
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const latest = (dir: string) => JSON.parse(readFileSync(join(dir, 'checkpoints', 'latest.json'), 'utf8')) as { next: { stage: number; step: number } };
const lastStep = (dir: string) => metricEvents(dir).filter((e) => e.event === 'step').at(-1)!;

describe('a stop request (SIGINT, SIGTERM)', () => {
  it('checkpoints at the current step, prints how to resume, exits 130 / 143, and resumes to the uninterrupted run', async () => {
    const whole = join(tmp, 'whole');
    const w = runCLI(['--recipe', recipe, '--out', whole, '--quiet']);
    expect(w.code, w.stderr).toBe(0);

    const broken = join(tmp, 'broken');
    const a = await runAndSignal(['--recipe', recipe, '--out', broken, '--quiet'], broken, (ev) => ev.some((e) => e.event === 'step' && e.stage === 0 && e.step! >= 30), 'SIGINT');
    expect(a.sent).toBe(true);
    expect(a.signal).toBeNull();
    expect(a.code, a.stderr).toBe(130);
    expect(a.stderr).toContain(`Continue with: sparse-train resume ${broken}`);
    expect(a.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // the step it was in finished, and the checkpoint is at it: nothing logged after it
    const s = lastStep(broken);
    expect(s.stage).toBe(0);
    expect(s.step!).toBeGreaterThanOrEqual(30);
    expect(s.step!).toBeLessThan(120);
    expect(latest(broken).next).toEqual({ stage: 0, step: s.step });
    expect(metricEvents(broken).at(-1)).toMatchObject({ event: 'step', step: s.step });
    // no lock, no temporary files left
    expect(existsSync(join(broken, 'sparse-run.lock'))).toBe(false);
    expect(readdirSync(join(broken, 'checkpoints')).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const b = await runAndSignal(['resume', broken, '--json'], broken, (ev) => ev.some((e) => e.event === 'step' && e.stage === 2 && e.step! >= 25), 'SIGTERM');
    expect(b.sent).toBe(true);
    expect(b.code, b.stderr).toBe(143);
    const line = JSON.parse(b.stdout.trim().split('\n').at(-1)!) as { event: string; signal: string; next: { stage: number; step: number }; resume: string };
    expect(line).toMatchObject({ event: 'interrupted', signal: 'SIGTERM', resume: `sparse-train resume ${broken}` });
    const t = lastStep(broken);
    expect(t.stage).toBe(2);
    expect(line.next).toEqual({ stage: 2, step: t.step });
    expect(latest(broken).next).toEqual({ stage: 2, step: t.step });

    const fin = runCLI(['resume', broken, '--quiet']);
    expect(fin.code, fin.stderr).toBe(0);
    await expectSameRun(whole, broken);
    const evals = (dir: string) => metricEvents(dir).filter((e) => e.event === 'eval').map((e) => e.perplexity as number);
    expect(evals(broken)).toHaveLength(1);
    expect(Math.abs(evals(broken)[0]! - evals(whole)[0]!)).toBeLessThanOrEqual(1e-6 * evals(whole)[0]!);
  }, 600_000);
});
