// Reading a user's data files (`--data`, a recipe's data.path, a tokenizer.json). Only regular files
// are read, so a device (`/dev/zero`), a named pipe with no writer or a socket fails at once instead
// of filling memory or blocking forever; `-` (or /dev/stdin) reads standard input once, up to a cap.
// Byte-level tokens come straight from the file's bytes, so any file works (UTF-8 or not) and
// nothing is lost to decoding.

import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { isatty } from 'node:tty';
import { ArgumentError } from '@sparse/tensor';
import { prepareTokens, type TextData } from './dataset.js';
import { ByteTokenizer } from './tokenizer.js';

/** A data file is missing, unreadable, not a regular file, empty or too small to split. `path` is as given. */
export class DataFileError extends ArgumentError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataFileError';
    this.path = path;
  }
}

/** Smallest file that leaves at least two tokens on each side of the 90/10 split. */
export const MIN_DATA_BYTES = 20;

/** Standard input is read up to this many bytes (256 MiB); SPARSE_TRAIN_STDIN_MAX changes it. */
export const MAX_STDIN_BYTES = 256 * 1024 * 1024;

/** Paths that mean standard input. */
export function isStdinPath(path: string): boolean {
  return path === '-' || path === '/dev/stdin' || path === '/dev/fd/0' || path === '/proc/self/fd/0';
}

function stdinCap(): number {
  const env = Number(process.env.SPARSE_TRAIN_STDIN_MAX);
  return Number.isSafeInteger(env) && env > 0 ? env : MAX_STDIN_BYTES;
}

/**
 * Reads standard input to its end, once, with a cap (a run copies it into its folder, so a resumed run
 * reads the copy). A terminal or a device on stdin is refused: there is no end to read to.
 */
export function readStdinBytes(max = stdinCap()): Uint8Array {
  const fd = 0;
  let st;
  try {
    st = fstatSync(fd);
  } catch (err) {
    throw new DataFileError('-', `standard input cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); pipe the data in: cat notes.txt | sparse-train --data -`, { cause: err });
  }
  if (isatty(fd)) throw new DataFileError('-', 'standard input is a terminal; pipe the data in (cat notes.txt | sparse-train --data -) or give a file with --data <file>');
  if (st.isCharacterDevice() || st.isBlockDevice()) throw new DataFileError('-', 'standard input is a device, not data with an end; redirect a regular file or pipe the data in');
  if (st.isFile() && st.size > max) throw new DataFileError('-', `standard input holds ${st.size} bytes, more than the ${max} bytes read from it; give the file with --data <file> instead`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(1 << 16);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') {
        // a non-blocking pipe with nothing in it yet: wait a little for the writer
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (code === 'EOF') break;
      throw new DataFileError('-', `standard input cannot be read (${code ?? (err as Error).message})`, { cause: err });
    }
    if (n === 0) break;
    total += n;
    if (total > max) throw new DataFileError('-', `standard input holds more than the ${max} bytes read from it (SPARSE_TRAIN_STDIN_MAX); save it to a file and give it with --data <file>`);
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The bytes of a data file: a regular file (symbolic links followed), or standard input for `-`.
 * Anything else (a folder, a device, a named pipe, a socket) is a DataFileError naming it, raised
 * before the file is opened, so nothing blocks.
 */
export function readDataBytes(path: string, what = 'data file'): Uint8Array {
  if (isStdinPath(path)) return readStdinBytes();
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'ENOTDIR' ? 'does not exist (a part of its path is a file)' : `cannot be read (${(err as Error).message})`;
    throw new DataFileError(path, `${what} ${path} ${why}`, { cause: err });
  }
  if (st.isDirectory()) throw new DataFileError(path, `${what} ${path} is a directory, not a text file`);
  if (st.isFIFO()) throw new DataFileError(path, `${what} ${path} is a named pipe, not a regular file; to read a stream, pipe it to standard input: sparse-train --data - < ${path}`);
  if (!st.isFile()) throw new DataFileError(path, `${what} ${path} is a ${st.isCharacterDevice() || st.isBlockDevice() ? 'device' : st.isSocket() ? 'socket' : 'special file'}, not a regular file`);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    // the file itself, not what the path names by now
    if (!fstatSync(fd).isFile()) throw new DataFileError(path, `${what} ${path} is not a regular file`);
    return readFileSync(fd);
  } catch (err) {
    if (err instanceof DataFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataFileError(path, `${what} ${path} ${code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${(err as Error).message})`}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Checks a split leaves at least two tokens on each side. */
export function checkSplit(data: TextData, path: string, heldOut: number): TextData {
  if (data.train.length < 2 || data.heldOut.length < 2) {
    throw new DataFileError(path, `data ${path}: data.heldOut ${heldOut} leaves ${data.train.length} training and ${data.heldOut.length} held-out tokens of ${data.tokens.length}; need at least 2 on each side`);
  }
  return data;
}

/**
 * A text file (or `bytes` already read from it) as byte-level tokens, its last `heldOut` fraction
 * held out (default 0.1).
 */
export function loadTextFile(path: string, options: { heldOut?: number; bytes?: Uint8Array } = {}): TextData {
  const bytes = options.bytes ?? readDataBytes(path);
  const shown = isStdinPath(path) ? 'standard input' : `data file ${path}`;
  if (bytes.length === 0) throw new DataFileError(path, `${shown} is empty`);
  if (bytes.length < MIN_DATA_BYTES) {
    throw new DataFileError(path, `${shown} is too small (${bytes.length} bytes); need at least ${MIN_DATA_BYTES}`);
  }
  const heldOut = options.heldOut ?? 0.1;
  return checkSplit(prepareTokens(Int32Array.from(bytes), path, new ByteTokenizer(), heldOut), path, heldOut);
}
