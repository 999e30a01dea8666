// Run folders: a marker file that says a folder is a sparse-train run (and keeps the recipe the run
// started with, to see later edits of recipe.json), a lock file with the owner's pid so two processes
// never write one run, and the clean-up of temporary files a killed process left behind.

import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { atomicWriteFile } from '@sparse/tensor/node';
import { formatPath } from '../recipe/errors.js';
import { RunFolderError, RunLockedError, type RecipeChange } from './errors.js';

/** The marker file: its presence makes a folder a run folder. */
export const RUN_MARKER = 'sparse-run.json';
/** The lock file, held while a process runs or resumes the run. */
export const RUN_LOCK = 'sparse-run.lock';
export const RECIPE_FILE = 'recipe.json';
const MARKER_FORMAT = 'sparse-train run';

export interface RunMarker {
  format: typeof MARKER_FORMAT;
  version: 1;
  created: string;
  /** The resolved recipe as the run started (or as last accepted with --allow-recipe-change). */
  recipe: unknown;
}

export function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, RUN_MARKER));
}

export function readMarker(dir: string): RunMarker {
  const path = join(dir, RUN_MARKER);
  let marker: RunMarker;
  try {
    marker = JSON.parse(readFileSync(path, 'utf8')) as RunMarker;
  } catch (err) {
    throw new RunFolderError(dir, `${path} cannot be read (${(err as Error).message}); the folder's run marker is damaged`, { cause: err });
  }
  if (marker?.format !== MARKER_FORMAT || marker.version !== 1) throw new RunFolderError(dir, `${path} is not a sparse-train run marker of a known version`);
  return marker;
}

export async function writeMarker(dir: string, recipe: unknown, created = new Date().toISOString()): Promise<void> {
  const marker: RunMarker = { format: MARKER_FORMAT, version: 1, created, recipe };
  await atomicWriteFile(join(dir, RUN_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

/**
 * A folder name made of the recipe's name: letters, digits, '.', '_' and '-' only, no leading dot
 * or dash (so no '..', no path separators), at most 64 characters.
 */
export function safeFolderName(name: string): string {
  const s = name
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 64)
    .replace(/[.-]+$/, '');
  return s === '' ? 'run' : s;
}

interface LockRecord {
  pid: number;
  host: string;
  started: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as LockRecord;
    return Number.isSafeInteger(rec?.pid) && rec.pid > 0 ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Locks this process holds (a second start or resume of the same folder in-process is refused too). */
const heldHere = new Set<string>();

export interface RunLock {
  readonly path: string;
  /** The pid of a dead process whose lock this one took over. */
  readonly tookOver?: number;
  release(): void;
}

/**
 * Takes the run folder's lock: a file with this process's pid, created next to a temporary file and
 * linked into place (atomic, fails when one exists). A lock whose process is gone (killed) is taken
 * over; one held by a live process is refused with RunLockedError.
 */
export function acquireRunLock(dir: string): RunLock {
  const path = join(dir, RUN_LOCK);
  if (heldHere.has(path)) throw new RunLockedError(dir, path, process.pid, undefined);
  const record: LockRecord = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const temp = `${path}.${process.pid}.${Date.now()}`;
  const fd = openSync(temp, 'wx');
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
  } finally {
    closeSync(fd);
  }
  let tookOver: number | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readLock(path);
      if (attempt >= 4) throw new RunLockedError(dir, path, held?.pid ?? 0, undefined);
      if (held && held.pid !== process.pid) {
        const sameHost = held.host === record.host;
        if (!sameHost || processAlive(held.pid) || attempt >= 2) throw new RunLockedError(dir, path, held.pid, sameHost ? undefined : held.host);
      }
      // a lock of a dead process (or of this pid, left by an earlier process that had it), or an
      // unreadable one (its writer died before writing it): take it over
      if (held) tookOver = held.pid;
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(temp, { force: true });
  }
  heldHere.add(path);
  let released = false;
  return {
    path,
    ...(tookOver !== undefined ? { tookOver } : {}),
    release: () => {
      if (released) return;
      released = true;
      heldHere.delete(path);
      if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
    },
  };
}

/** Temporary files of atomic writes (`<name>.tmp-<pid>-<hex>`) and of lock taking (`sparse-run.lock.<pid>.<ms>`). */
const TEMP_NAME = /(\.tmp-\d+-[0-9a-f]+|^sparse-run\.lock\.\d+\.\d+)$/;

/**
 * Removes the temporary files that processes killed mid-write left in the run folder (its top level,
 * checkpoints/, exports/ and the folders under it, plots/, data/). Call with the lock held: then no
 * live process writes there. Returns the paths removed.
 */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  const walk = (d: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (depth < 3) walk(p, depth + 1);
      } else if (TEMP_NAME.test(name)) {
        try {
          unlinkSync(p);
          removed.push(p);
        } catch {
          // gone already, or not ours to remove
        }
      }
    }
  };
  walk(dir, 0);
  return removed;
}

/**
 * Checks `dir` can hold a new run: it does not exist yet (and its path can be created), or it is an
 * empty folder. A file, a non-empty folder, a path too long or a part of it that is a file is a
 * RunFolderError naming --out (`shown`).
 */
export function checkNewRunFolder(dir: string, shown: string): { exists: boolean } {
  let st;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { exists: false };
    throw folderProblem(dir, shown, err);
  }
  if (!st.isDirectory()) throw new RunFolderError(dir, `--out ${shown} is an existing file, not a folder; choose another --out`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw folderProblem(dir, shown, err);
  }
  if (entries.length > 0) {
    throw new RunFolderError(dir, `--out ${shown} is a folder with other files in it (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); a run needs a new or empty folder: choose another --out`);
  }
  return { exists: true };
}

/** Creates the run folder (after checkNewRunFolder); returns whether it was created, so a failed start removes it. */
export function createRunFolder(dir: string, shown: string): { created: boolean } {
  const { exists } = checkNewRunFolder(dir, shown);
  if (exists) return { created: false };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // a recursive mkdir reports ENOENT for some failures (a read-only file system): the plain one says why
    let why = err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      try {
        mkdirSync(dir);
      } catch (plain) {
        why = plain;
      }
    }
    throw folderProblem(dir, shown, why);
  }
  return { created: true };
}

function folderProblem(dir: string, shown: string, err: unknown): RunFolderError {
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    ENAMETOOLONG: 'the path is too long (ENAMETOOLONG)',
    ENOTDIR: 'a part of the path is a file, not a folder (ENOTDIR)',
    EEXIST: 'a part of the path exists as a file (EEXIST)',
    EACCES: 'permission denied (EACCES)',
    EPERM: 'permission denied (EPERM)',
    EROFS: 'the file system is read-only (EROFS)',
    ENOSPC: 'no space left on the device (ENOSPC)',
    ELOOP: 'the path has a symbolic link loop (ELOOP)',
  };
  return new RunFolderError(dir, `--out ${shown} cannot be used as a run folder: ${why[code ?? ''] ?? (err as Error).message}; choose another --out`, { cause: err });
}

/** Every difference between two JSON values, by recipe path (`stages[0].steps`). */
export function recipeChanges(before: unknown, after: unknown, path: PropertyKey[] = []): RecipeChange[] {
  if (Object.is(before, after)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(before) && Array.isArray(after)) {
    const out: RecipeChange[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) out.push(...recipeChanges(before[i], after[i], [...path, i]));
    return out;
  }
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => recipeChanges(before[k], after[k], [...path, k]));
  }
  return [{ path: formatPath(path), before, after }];
}
