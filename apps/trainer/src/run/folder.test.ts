// Run folders: the name a recipe gives its folder, the lock (live owner refused, dead owner taken
// over), stale temporary files, recipe differences, and the memory estimate's field and numbers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../recipe/load.js';
import { RecipeError } from '../recipe/errors.js';
import { RunLockedError } from './errors.js';
import { acquireRunLock, recipeChanges, removeStaleTemps, RUN_LOCK, safeFolderName } from './folder.js';
import { checkRunResources, formatBytes, machineMemory, parseBytes } from './preflight.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-folder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('safeFolderName', () => {
  it('keeps a name inside its parent folder', () => {
    expect(safeFolderName('../../x')).toBe('x');
    expect(safeFolderName('/etc/passwd')).toBe('etc-passwd');
    expect(safeFolderName('a b/c')).toBe('a-b-c');
    expect(safeFolderName('..')).toBe('run');
    expect(safeFolderName('')).toBe('run');
    expect(safeFolderName('x'.repeat(300))).toHaveLength(64);
    expect(safeFolderName('sqft-recovery')).toBe('sqft-recovery');
  });
});

describe('acquireRunLock', () => {
  it('refuses a live owner, takes over a dead one, and releases only its own lock', () => {
    const dir = join(tmp, 'lock');
    mkdirSync(dir);
    const a = acquireRunLock(dir);
    const held = JSON.parse(readFileSync(join(dir, RUN_LOCK), 'utf8')) as { pid: number; host: string };
    expect(held).toMatchObject({ pid: process.pid, host: hostname() });
    // a second lock in the same process is refused too
    expect(() => acquireRunLock(dir)).toThrow(RunLockedError);
    a.release();
    expect(existsSync(join(dir, RUN_LOCK))).toBe(false);

    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
    writeFileSync(join(dir, RUN_LOCK), JSON.stringify({ pid: dead, host: hostname(), started: '' }));
    const b = acquireRunLock(dir);
    expect(b.tookOver).toBe(dead);
    b.release();

    // another machine's lock cannot be checked: refused, naming the host
    writeFileSync(join(dir, RUN_LOCK), JSON.stringify({ pid: 1, host: 'elsewhere', started: '' }));
    expect(() => acquireRunLock(dir)).toThrow(/in use by process 1 on elsewhere .*delete the lock file/);
    // an unreadable lock (its writer died before writing it) is taken over
    writeFileSync(join(dir, RUN_LOCK), '');
    const c = acquireRunLock(dir);
    expect(c.tookOver).toBeUndefined();
    // a lock someone else holds now is not removed by a stale release
    writeFileSync(join(dir, RUN_LOCK), JSON.stringify({ pid: 1, host: hostname(), started: '' }));
    c.release();
    expect(existsSync(join(dir, RUN_LOCK))).toBe(true);
  });
});

describe('removeStaleTemps', () => {
  it('removes the temporary files of atomic writes and nothing else', () => {
    const dir = join(tmp, 'temps');
    mkdirSync(join(dir, 'checkpoints'), { recursive: true });
    mkdirSync(join(dir, 'exports', 'adapters', 'a'), { recursive: true });
    const temps = [join(dir, 'recipe.json.tmp-123-abcdef012345'), join(dir, 'checkpoints', 'ckpt-001.safetensors.tmp-9-0a0b0c0d0e0f'), join(dir, 'exports', 'adapters', 'a', 'adapter_model.safetensors.tmp-77-ffffffffffff')];
    const keep = [join(dir, 'checkpoints', 'latest.json'), join(dir, 'notes.tmp-file'), join(dir, 'metrics.jsonl')];
    for (const f of [...temps, ...keep]) writeFileSync(f, 'x');
    expect(removeStaleTemps(dir).sort()).toEqual([...temps].sort());
    for (const f of keep) expect(existsSync(f), f).toBe(true);
  });
});

describe('recipeChanges', () => {
  it('lists each changed, added and removed value by recipe path', () => {
    const a = { name: 'r', stages: [{ stage: 'pretrain', steps: 10 }, { stage: 'evaluate' }], eval: { windows: 8 } };
    const b = { name: 'r', stages: [{ stage: 'pretrain', steps: 20 }], eval: { windows: 8, batch: 4 } };
    expect(recipeChanges(a, b)).toEqual([
      { path: 'stages[0].steps', before: 10, after: 20 },
      { path: 'stages[1]', before: { stage: 'evaluate' }, after: undefined },
      { path: 'eval.batch', before: undefined, after: 4 },
    ]);
    expect(recipeChanges(a, structuredClone(a))).toEqual([]);
  });
});

describe('memory estimate', () => {
  const recipe = (model: Record<string, unknown>, stages: unknown[]) => resolveRecipe({ name: 'm', model: { architecture: 'gpt', ...model }, stages });
  const error = (f: () => unknown): RecipeError => {
    try {
      f();
    } catch (err) {
      if (err instanceof RecipeError) return err;
      throw err;
    }
    throw new Error('no RecipeError');
  };

  it('passes the default model, and names the field that makes a run too big', () => {
    const mem = { bytes: 16 * 2 ** 30, source: 'test memory' };
    const ok = checkRunResources(recipe({}, [{ stage: 'pretrain' }]), { memory: mem });
    expect(ok.bytes).toBeGreaterThan(0);
    expect(ok.bytes).toBeLessThan(100 * 2 ** 20);
    const d = error(() => checkRunResources(recipe({ d: 65536, heads: 4 }, [{ stage: 'pretrain' }]), { memory: mem }));
    expect(d.problems[0]!.path).toBe('model.d');
    expect(d.problems[0]!.message).toMatch(/needs an estimated [\d.]+ TiB of memory, more than test memory \(16\.0 GiB\)/);
    const layers = error(() => checkRunResources(recipe({ layers: 100000 }, [{ stage: 'pretrain' }]), { memory: mem }));
    expect(layers.problems[0]!.path).toBe('model.layers');
    const batch = error(() => checkRunResources(recipe({}, [{ stage: 'pretrain' }, { stage: 'train', batch: 100000000 }]), { memory: mem }));
    expect(batch.problems[0]!.path).toBe('stages[1].batch');
    const windows = error(() => checkRunResources(recipe({}, [{ stage: 'calibrate', windows: 1e10 }, { stage: 'prune', method: 'wanda', config: { sparsity: 0.5 } }]), { memory: mem }));
    expect(windows.problems[0]!.path).toBe('stages[0].windows');
    // more memory: the same run passes
    expect(() => checkRunResources(recipe({ d: 2048, heads: 4 }, [{ stage: 'pretrain' }]), { memory: { bytes: 2 ** 50, source: 'big' } })).not.toThrow();
    expect(() => checkRunResources(recipe({ d: 2048, heads: 4 }, [{ stage: 'pretrain' }]), { memory: { bytes: 2 ** 30, source: 'small' } })).toThrow(/model\.d/);
  });

  it('reads SPARSE_TRAIN_MEMORY and formats bytes', () => {
    expect(parseBytes('8GiB')).toBe(8 * 2 ** 30);
    expect(parseBytes('512MB')).toBe(512e6);
    expect(parseBytes('1e9')).toBe(1e9);
    expect(parseBytes('lots')).toBeUndefined();
    expect(machineMemory({ SPARSE_TRAIN_MEMORY: '2GiB' })).toEqual({ bytes: 2 * 2 ** 30, source: 'SPARSE_TRAIN_MEMORY=2GiB' });
    expect(machineMemory({}).bytes).toBeGreaterThan(0);
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 60)).toBe('3.0 EiB');
    expect(formatBytes(1e25)).toBe('1.0e+25 bytes');
  });
});
