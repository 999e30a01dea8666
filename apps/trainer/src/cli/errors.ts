// How sparse-train reports a failure: every expected one as one line (a recipe's problems one line
// each) naming the file or field and what to do, with exit status 2 for what was asked wrongly
// (flags, recipes, run folders) and 1 for a run that failed; anything unexpected as a short message
// and where its full trace is (a file, or --debug / SPARSE_TRAIN_DEBUG=1 to print it).

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseError } from '@sparse/tensor';
import { DataFileError } from '../data/files.js';
import { CheckpointError, ModelSpecError } from '../model/errors.js';
import { RecipeError, type RecipeProblem } from '../recipe/errors.js';
import {
  CheckpointDamagedError,
  isErrnoError,
  RecipeChangedError,
  RunDivergedError,
  RunFolderError,
  RunLockedError,
  RunWriteError,
  writeFailureText,
  type RecipeChange,
} from '../run/errors.js';
import { FlagError } from './args.js';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

export interface Failure {
  exit: number;
  /** usage | recipe | recipe-changed | run-folder | locked | write | checkpoint | diverged | data | failed | internal */
  kind: string;
  /** One line (a recipe error: its header, the problems follow). */
  message: string;
  problems?: readonly RecipeProblem[];
  changes?: readonly RecipeChange[];
  /** The file at fault, when one is. */
  file?: string;
  /** Unexpected errors: where the full trace was written. */
  traceFile?: string;
  stack?: string;
}

const firstLine = (s: string) => s.split('\n')[0]!;

/** Writes an unexpected error's trace to a file in the temporary folder; undefined when that fails too. */
function saveTrace(err: unknown): string | undefined {
  const path = join(tmpdir(), `sparse-train-error-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}-${process.pid}.log`);
  try {
    const text = err instanceof Error ? `${err.stack ?? `${err.name}: ${err.message}`}${err.cause instanceof Error ? `\nCaused by: ${err.cause.stack ?? err.cause.message}` : ''}` : String(err);
    writeFileSync(path, `sparse-train ${process.argv.slice(2).join(' ')}\n${text}\n`);
    return path;
  } catch {
    return undefined;
  }
}

/** What to print and which exit status, for an error that reached main. */
export function describeError(err: unknown, opts: { saveTrace?: boolean } = {}): Failure {
  const stack = err instanceof Error ? err.stack : undefined;
  const base = stack ? { stack } : {};
  if (err instanceof FlagError) return { ...base, exit: EXIT_USAGE, kind: 'usage', message: err.message };
  if (err instanceof RecipeError) {
    // one problem: one line; several: the header, then a line each
    const message = err.problems.length === 1 ? `invalid recipe ${err.source}: ${err.problems[0]!.path ? `${err.problems[0]!.path}: ` : ''}${err.problems[0]!.message}` : err.message;
    return { ...base, exit: EXIT_USAGE, kind: 'recipe', message, problems: err.problems, file: err.source };
  }
  if (err instanceof RecipeChangedError) return { ...base, exit: EXIT_USAGE, kind: 'recipe-changed', message: err.message, changes: err.changes, file: err.file };
  if (err instanceof RunFolderError) return { ...base, exit: EXIT_USAGE, kind: 'run-folder', message: err.message, file: err.dir };
  if (err instanceof ModelSpecError) return { ...base, exit: EXIT_USAGE, kind: 'recipe', message: `${err.message} (in the recipe's model section)` };
  if (err instanceof RunLockedError) return { ...base, exit: EXIT_FAILURE, kind: 'locked', message: err.message, file: err.lockFile };
  if (err instanceof RunWriteError) return { ...base, exit: EXIT_FAILURE, kind: 'write', message: err.message, file: err.path };
  if (err instanceof CheckpointDamagedError) return { ...base, exit: EXIT_FAILURE, kind: 'checkpoint', message: err.message, file: err.file };
  if (err instanceof CheckpointError) return { ...base, exit: EXIT_FAILURE, kind: 'checkpoint', message: firstLine(err.message), file: err.file };
  if (err instanceof RunDivergedError) return { ...base, exit: EXIT_FAILURE, kind: 'diverged', message: err.message };
  if (err instanceof DataFileError) return { ...base, exit: EXIT_FAILURE, kind: 'data', message: firstLine(err.message), file: err.path };
  if (isErrnoError(err)) {
    const text = writeFailureText(err.code);
    const path = err.path ?? (err as { dest?: string }).dest;
    if (text) return { ...base, exit: EXIT_FAILURE, kind: 'write', message: `cannot write ${path ?? 'a file'}: ${text.what}; ${text.fix} and try again`, ...(path ? { file: path } : {}) };
    return { ...base, exit: EXIT_FAILURE, kind: 'failed', message: firstLine(err.message), ...(path ? { file: path } : {}) };
  }
  // the project's own typed errors carry a message meant for people
  if (err instanceof SparseError) return { ...base, exit: EXIT_FAILURE, kind: 'failed', message: firstLine(err.message) };
  const what = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${firstLine(err.message)}` : String(err);
  const traceFile = opts.saveTrace === false ? undefined : saveTrace(err);
  return {
    ...base,
    exit: EXIT_FAILURE,
    kind: 'internal',
    message: `${what} (an unexpected error: ${traceFile ? `the full trace is in ${traceFile}; ` : ''}run again with --debug or SPARSE_TRAIN_DEBUG=1 to print it)`,
    ...(traceFile ? { traceFile } : {}),
  };
}

/** The failure as the CLI prints it: text for people (with the trace when debugging), or one JSON line. */
export function formatFailure(f: Failure, opts: { json: boolean; debug: boolean }): { stdout: string; stderr: string } {
  if (opts.json) {
    const { stack, ...rest } = f;
    return { stdout: `${JSON.stringify({ event: 'error', time: new Date().toISOString(), ...rest, ...(opts.debug && stack ? { stack } : {}) })}\n`, stderr: '' };
  }
  let text = `sparse-train: ${f.message}\n`;
  if (f.kind === 'usage') text += "Run 'sparse-train --help' for usage.\n";
  if (opts.debug && f.stack) text += `${f.stack}\n`;
  return { stdout: '', stderr: text };
}
