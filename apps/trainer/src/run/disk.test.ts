// A full disk and a read-only file system under a real run (the built CLI), on small tmpfs mounts
// (needs root, as in CI and on the developers' machines): one line saying what happened and how to
// go on, exit 1 (2 for an --out that cannot be used), and the run resumes once there is room.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist } from '../testing/dist.js';
import { metricEvents, runCLI, runWatching } from '../testing/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-disk-'));
const mounts: string[] = [];

function mountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    mounts.push(dir);
    return true;
  } catch {
    return false;
  }
}

const canMount = process.getuid?.() === 0 && mountTmpfs(join(tmp, 'probe'), '64k');

const RECIPE = [
  'name: disk',
  'model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }',
  'eval: { windows: 4 }',
  'stages:',
  '  - { stage: pretrain, steps: 200, batch: 4, checkpointEvery: 5 }',
  '  - { stage: evaluate }',
  '',
].join('\n');

beforeAll(() => {
  ensureDist();
  writeFileSync(join(tmp, 'disk.yaml'), RECIPE);
}, 180_000);

afterAll(() => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** Fills the file system of `dir` with one file until a write fails with ENOSPC. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = new Uint8Array(16 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!canMount)('writing a run on a full or read-only file system', () => {
  it('a full disk stops the run with one line (exit 1); with room again it resumes and no step is lost or doubled', async () => {
    const disk = join(tmp, 'small');
    expect(mountTmpfs(disk, '4m')).toBe(true);
    const dir = join(disk, 'run');
    const filler = join(disk, 'filler');
    const r = await runWatching(['--recipe', join(tmp, 'disk.yaml'), '--out', dir, '--quiet'], dir, (ev) => ev.some((e) => e.event === 'step' && e.step! >= 12), () => fill(filler));
    expect(r.acted).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^sparse-train: cannot write ${dir}/\\S+: no space left on the device \\(ENOSPC\\)\\. The last checkpoint is intact: free some space, then continue with 'sparse-train resume ${dir}'\\n$`));
    rmSync(filler);
    const fin = runCLI(['resume', dir, '--quiet']);
    expect(fin.code, fin.stderr).toBe(0);
    const steps = metricEvents(dir).filter((e) => e.event === 'step').map((e) => e.step);
    expect(steps).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  }, 300_000);

  it('a read-only file system: --out there is refused (exit 2), resume there says what to do (exit 1)', () => {
    const disk = join(tmp, 'ro');
    expect(mountTmpfs(disk, '4m')).toBe(true);
    const dir = join(disk, 'run');
    const short = join(tmp, 'short.yaml');
    writeFileSync(short, RECIPE.replace('steps: 200', 'steps: 3'));
    expect(runCLI(['--recipe', short, '--out', dir, '--quiet']).code).toBe(0);
    execFileSync('mount', ['-o', 'remount,ro', disk]);
    const resumed = runCLI(['resume', dir]);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(resumed.stderr).toMatch(new RegExp(`^sparse-train: cannot write ${dir}/sparse-run\\.lock\\S*: the file system is read-only \\(EROFS\\)\\. The last checkpoint is intact: make it writable, then continue with 'sparse-train resume ${dir}'\\n$`));
    const fresh = runCLI(['--recipe', short, '--out', join(disk, 'new'), '--quiet']);
    expect(fresh.code, fresh.stderr).toBe(2);
    expect(fresh.stderr).toMatch(/^sparse-train: --out .*new cannot be used as a run folder: the file system is read-only \(EROFS\); choose another --out\n$/);
    expect(existsSync(join(disk, 'new'))).toBe(false);
  }, 300_000);
});
