// Reading a user's text file for `--data`. Byte-level tokens straight from the file's bytes, so
// any file works (UTF-8 or not) and nothing is lost to decoding.

import { readFileSync, statSync } from 'node:fs';
import { ArgumentError } from '@sparse/tensor';
import { prepareTokens, type TextData } from './dataset.js';
import { ByteTokenizer } from './tokenizer.js';

/** A data file is missing, unreadable, empty or too small to split. `path` is as given. */
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

export function loadTextFile(path: string): TextData {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new DataFileError(path, `data file ${path} is a directory, not a text file`);
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof DataFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${(err as Error).message})`;
    throw new DataFileError(path, `data file ${path} ${why}`, { cause: err });
  }
  if (bytes.length === 0) throw new DataFileError(path, `data file ${path} is empty`);
  if (bytes.length < MIN_DATA_BYTES) {
    throw new DataFileError(path, `data file ${path} is too small (${bytes.length} bytes); need at least ${MIN_DATA_BYTES}`);
  }
  return prepareTokens(Int32Array.from(bytes), path, new ByteTokenizer());
}
