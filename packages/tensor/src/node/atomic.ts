// Atomic file replacement: write a sibling temporary file, fsync it, rename it over the target,
// then fsync the directory. A reader (or a crash) sees either the old file or the complete new one.

import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ArgumentError } from '../errors.js';

export type AtomicWriteData = string | ArrayBufferView | Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>;

export interface AtomicWriteOptions {
  /** File mode of a newly created file (default 0o666, less the umask). */
  mode?: number;
  /** Aborting stops the write, removes the temporary file and leaves the target untouched. */
  signal?: AbortSignal;
  /** Called after each piece is written, with the bytes written so far. Throwing aborts the write the same way. */
  onProgress?: (bytesWritten: number) => void;
}

/** The temporary name used for `path`: `${path}.tmp-<pid>-<random>`, in the same directory so rename is atomic. */
export function atomicTempPath(path: string): string {
  return join(dirname(path), `${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function* pieces(data: AtomicWriteData): AsyncGenerator<Uint8Array> {
  if (typeof data === 'string') yield new TextEncoder().encode(data);
  else if (ArrayBuffer.isView(data)) yield asBytes(data);
  else if (typeof data === 'object' && data !== null && (Symbol.asyncIterator in data || Symbol.iterator in data)) {
    for await (const piece of data as AsyncIterable<ArrayBufferView>) {
      if (!ArrayBuffer.isView(piece)) throw new ArgumentError(`atomicWriteFile: pieces must be typed arrays, got ${typeof piece}`);
      yield asBytes(piece);
    }
  } else throw new ArgumentError('atomicWriteFile: data must be a string, a typed array, or an iterable of typed arrays');
}

/**
 * Writes `data` to `path` atomically (temporary file, fsync, rename, directory fsync). Pieces of an
 * iterable are written as they come, so large outputs never sit in memory whole. On any error
 * (including an abort, or a throwing iterable or onProgress) the temporary file is removed and an
 * existing file at `path` is left as it was. Returns the number of bytes written.
 */
export async function atomicWriteFile(path: string, data: AtomicWriteData, options: AtomicWriteOptions = {}): Promise<number> {
  options.signal?.throwIfAborted();
  const temp = atomicTempPath(path);
  // 'wx': never follow or clobber something already at the temporary name.
  const handle = await open(temp, 'wx', options.mode ?? 0o666);
  let written = 0;
  let closed = false;
  try {
    for await (const piece of pieces(data)) {
      options.signal?.throwIfAborted();
      for (let at = 0; at < piece.length; ) {
        const { bytesWritten } = await handle.write(piece, at, piece.length - at);
        at += bytesWritten;
      }
      written += piece.length;
      options.onProgress?.(written);
    }
    options.signal?.throwIfAborted();
    await handle.sync();
    closed = true;
    await handle.close();
    await rename(temp, path);
  } catch (error) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
  return written;
}

// Makes the rename itself durable. Some platforms (Windows) cannot open or fsync a directory; the
// rename has still happened there, so those errors are ignored.
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort, see above
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
