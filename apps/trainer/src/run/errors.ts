// Typed failures of a run, each naming the file or field at fault and what to do, so the CLI can
// print one line (or one JSON object) and pick the exit status: 2 for what the user asked wrongly
// (a folder that is not a run, a changed recipe), 1 for a run that could not go on.

import { ArgumentError } from '@sparse/tensor';

/** The run folder cannot be used: not a run, not a folder, not empty, or not creatable. Exit 2. */
export class RunFolderError extends ArgumentError {
  readonly dir: string;
  constructor(dir: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunFolderError';
    this.dir = dir;
  }
}

/** Another live process holds the run folder's lock. Exit 1 (waiting may help). */
export class RunLockedError extends ArgumentError {
  readonly dir: string;
  readonly pid: number;
  readonly lockFile: string;
  constructor(dir: string, lockFile: string, pid: number, host: string | undefined) {
    super(
      `run folder ${dir} is in use by process ${pid}${host ? ` on ${host}` : ''} (lock file ${lockFile}); wait for it to finish or stop it first${host ? `; if no such process runs on ${host}, delete the lock file` : ''}`,
    );
    this.name = 'RunLockedError';
    this.dir = dir;
    this.pid = pid;
    this.lockFile = lockFile;
  }
}

/** One difference between the recipe a run started with and its recipe.json now. */
export interface RecipeChange {
  path: string;
  before: unknown;
  after: unknown;
}

/** recipe.json was edited after the run started and resume was not told to accept it. Exit 2. */
export class RecipeChangedError extends ArgumentError {
  readonly file: string;
  readonly changes: readonly RecipeChange[];
  constructor(file: string, changes: readonly RecipeChange[], resumeCommand: string) {
    super(`${file} was changed after the run started (${describeChanges(changes)}); restore it, or accept the change with '${resumeCommand} --allow-recipe-change'`);
    this.name = 'RecipeChangedError';
    this.file = file;
    this.changes = changes;
  }
}

const shown = (v: unknown): string => {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** "stages[0].steps: 150 -> 300; name: ..." (at most 8 changes, then a count). */
export function describeChanges(changes: readonly RecipeChange[]): string {
  const head = changes.slice(0, 8).map((c) => `${c.path || '(recipe)'}: ${shown(c.before)} -> ${shown(c.after)}`);
  if (changes.length > 8) head.push(`and ${changes.length - 8} more`);
  return head.join('; ');
}

/** The checkpoint of a run cannot be read back (cut short, damaged, or of another version). Exit 1. */
export class CheckpointDamagedError extends ArgumentError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`checkpoint ${file} cannot be read (${reason}); the run cannot continue from it: restore the run folder from a copy, or start the run again with another --out`, options);
    this.name = 'CheckpointDamagedError';
    this.file = file;
  }
}

/** What an errno code means for a file that could not be written, and what to do about it. */
export function writeFailureText(code: string | undefined): { what: string; fix: string } | undefined {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return { what: `no space left on the device (${code})`, fix: 'free some space' };
    case 'EROFS':
      return { what: 'the file system is read-only (EROFS)', fix: 'make it writable' };
    case 'EACCES':
    case 'EPERM':
      return { what: `permission denied (${code})`, fix: 'make the folder writable' };
    case 'EIO':
      return { what: 'an I/O error of the device (EIO)', fix: 'check the disk' };
    case 'EMFILE':
    case 'ENFILE':
      return { what: `too many open files (${code})`, fix: 'close other programs or raise the limit' };
    default:
      return undefined;
  }
}

/** A file of the run could not be written (disk full, read-only, permissions). Exit 1. */
export class RunWriteError extends Error {
  readonly path: string;
  readonly code: string;
  readonly dir: string;
  /** Whether the run folder holds a checkpoint to resume from. */
  readonly resumable: boolean;
  constructor(path: string, code: string, dir: string, resumable: boolean, options?: { cause?: unknown }) {
    const text = writeFailureText(code) ?? { what: code, fix: 'fix the cause' };
    super(
      `cannot write ${path}: ${text.what}. ${resumable ? `The last checkpoint is intact: ${text.fix}, then continue with 'sparse-train resume ${dir}'` : `Nothing was kept: ${text.fix}, then start the run again`}`,
      options,
    );
    this.name = 'RunWriteError';
    this.path = path;
    this.code = code;
    this.dir = dir;
    this.resumable = resumable;
  }
}

/** The loss became NaN or infinite. Exit 1. */
export class RunDivergedError extends Error {
  readonly stage: number;
  readonly step: number;
  readonly loss: number;
  constructor(message: string, stage: number, step: number, loss: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunDivergedError';
    this.stage = stage;
    this.step = step;
    this.loss = loss;
  }
}

/** The run was asked to stop (Ctrl-C, SIGTERM): it finished its step and wrote a checkpoint there. */
export class RunInterrupted extends Error {
  readonly signal: string;
  readonly dir: string;
  /** Where the checkpoint continues: stage index, steps of it done. */
  readonly next: { stage: number; step: number };
  constructor(signal: string, dir: string, next: { stage: number; step: number }, stages: number) {
    super(`stopped by ${signal} at stage ${Math.min(next.stage + 1, stages)}/${stages}${next.step ? ` after step ${next.step}` : next.stage >= stages ? ' (finished)' : ' (before it started)'}; a checkpoint is written there`);
    this.name = 'RunInterrupted';
    this.signal = signal;
    this.dir = dir;
    this.next = next;
  }
}

/** Exit status of a process stopped by a signal, as a shell reports it: 128 + the signal number. */
export function signalExitCode(signal: string): number {
  return signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 130;
}

/** An errno error (ENOSPC, EACCES, ...) from node:fs. */
export function isErrnoError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z]+$/.test((err as NodeJS.ErrnoException).code!);
}
