// Safetensors files on disk (Node). Opening reads only the 8-byte prefix and the header; each tensor
// is then read on demand from its own byte range, so loading one tensor of a 10 GB checkpoint reads
// that tensor. Writing streams tensor data in chunks into an atomically renamed temporary file.

import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ArgumentError, SafetensorsError } from '../errors.js';
import type { SparseLayout } from '../layouts/types.js';
import { atomicWriteFile } from '../node/atomic.js';
import type { Tensor } from '../tensor.js';
import { decodeSafetensorsArray, SafetensorsWideInts } from './codec.js';
import {
  decodeSafetensorsHeader,
  entryToTensor,
  parseSafetensors,
  planSafetensors,
  readSafetensorsHeaderLength,
  SafetensorsBuffer,
  SafetensorsEntry,
  SafetensorsHeader,
  SafetensorsIndex,
  SafetensorsInput,
  SafetensorsLayoutOptions,
  SafetensorsReadOptions,
  safetensorsChunks,
} from './format.js';
import { SafetensorsRawTensor, tensorsToSparse } from './sparse.js';

// Node reads into one Buffer at most ~2 GiB at a time; larger ranges are read in pieces.
const MAX_READ = 1 << 30;

export type SafetensorsOpenOptions = Omit<SafetensorsReadOptions, 'file' | 'copy'>;

/** An open safetensors file. Call close() when done (reads after close fail). */
export class SafetensorsFileReader {
  readonly path: string;
  readonly header: SafetensorsHeader;
  readonly metadata: Readonly<Record<string, string>>;
  /** Logical names, sorted: dense tensors and sparse layouts (parts hidden). */
  readonly names: readonly string[];
  /** Every stored tensor, in data order. */
  readonly tensorNames: readonly string[];
  /** Size of the file when opened. */
  readonly fileSize: number;
  #bytesRead: number;
  readonly #handle: FileHandle;
  readonly #index: SafetensorsIndex;
  readonly #wide: SafetensorsWideInts;
  #closed = false;

  /** Use openSafetensors. */
  constructor(path: string, handle: FileHandle, header: SafetensorsHeader, fileSize: number, headerBytesRead: number, wide: SafetensorsWideInts) {
    this.path = path;
    this.#handle = handle;
    this.header = header;
    this.fileSize = fileSize;
    this.#bytesRead = headerBytesRead;
    this.#wide = wide;
    this.#index = new SafetensorsIndex(header, path);
    this.metadata = header.metadata;
    this.names = this.#index.names;
    this.tensorNames = this.#index.tensorNames;
  }

  /** Bytes read from disk so far, header included. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  has(name: string): boolean {
    return this.#index.has(name);
  }

  isSparse(name: string): boolean {
    return this.#index.isSparse(name);
  }

  entry(name: string): SafetensorsEntry {
    return this.#index.entry(name);
  }

  /** Reads exactly one tensor's bytes from disk into a fresh (so aligned) buffer. */
  async readTensorBytes(name: string): Promise<Uint8Array> {
    const e = this.#index.entry(name);
    const out = new Uint8Array(e.end - e.begin);
    await this.#readAt(out, this.header.dataOffset + e.begin);
    return out;
  }

  /** A tensor in its natural JS array, whatever its code (I64 as BigInt64Array, F8 as bytes...). */
  async readRaw(name: string): Promise<SafetensorsRawTensor> {
    const e = this.#index.entry(name);
    const bytes = await this.readTensorBytes(name);
    return { dtype: e.dtype, shape: [...e.shape], data: decodeSafetensorsArray(e.dtype, bytes) };
  }

  /** A stored tensor as our Tensor; reads only its byte range. */
  async readTensor(name: string): Promise<Tensor> {
    const e = this.#index.entry(name);
    return entryToTensor(e, (await this.readRaw(name)).data, this.#wide, this.path);
  }

  /** The sparse layout stored under `name`; reads only its parts. */
  async readLayout(name: string): Promise<SparseLayout> {
    const parts = new Map<string, SafetensorsRawTensor>();
    for (const p of this.#index.partNames(name)) parts.set(p, await this.readRaw(p));
    return tensorsToSparse(name, {
      file: this.path,
      metadata: this.metadata,
      has: (p) => parts.has(p),
      raw: (p) => parts.get(p)!,
    });
  }

  /** A logical name: the sparse layout when it is one, else the tensor. */
  async read(name: string): Promise<Tensor | SparseLayout> {
    return this.#index.isSparse(name) ? this.readLayout(name) : this.readTensor(name);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }

  async #readAt(dst: Uint8Array, position: number): Promise<void> {
    if (this.#closed) throw new ArgumentError(`${this.path}: read after close()`);
    for (let at = 0; at < dst.length; ) {
      const want = Math.min(MAX_READ, dst.length - at);
      const { bytesRead } = await this.#handle.read(dst, at, want, position + at);
      if (bytesRead === 0) {
        throw new SafetensorsError(this.path, `file ended at byte ${position + at} while reading bytes [${position}, ${position + dst.length}); was it truncated after opening?`);
      }
      at += bytesRead;
      this.#bytesRead += bytesRead;
    }
  }
}

async function readExactly(handle: FileHandle, length: number, position: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; ) {
    const { bytesRead } = await handle.read(out, at, Math.min(MAX_READ, length - at), position + at);
    if (bytesRead === 0) throw new SafetensorsError(path, `truncated: file ended at byte ${position + at}, expected ${position + length}`);
    at += bytesRead;
  }
  return out;
}

/**
 * Opens a safetensors file lazily: reads the 8-byte prefix and the header only, and validates them
 * against the real file size (a truncated file fails here, not at first read).
 */
export async function openSafetensors(path: string, opts: SafetensorsOpenOptions = {}): Promise<SafetensorsFileReader> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const hopts = { ...opts, file: path };
    const prefix = await readExactly(handle, Math.min(8, size), 0, path);
    const n = readSafetensorsHeaderLength(prefix, size, hopts);
    const headerBytes = await readExactly(handle, n, 8, path);
    const header = decodeSafetensorsHeader(headerBytes, size - 8 - n, hopts);
    return new SafetensorsFileReader(path, handle, header, size, prefix.length + n, opts.wideInts ?? 'error');
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/** Reads a whole safetensors file into memory and parses it (tensors view the file's bytes). */
export async function readSafetensorsFile(path: string, opts: Omit<SafetensorsReadOptions, 'file'> = {}): Promise<SafetensorsBuffer> {
  const bytes = await readFile(path);
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), { ...opts, file: path });
}

export interface SafetensorsWriteOptions extends SafetensorsLayoutOptions {
  /** Largest piece handed to the file system at once (default 4 MiB). */
  chunkBytes?: number;
  /** Aborting stops the write; the temporary file is removed and an existing file is left intact. */
  signal?: AbortSignal;
  /** Called after each piece with (bytes written, total bytes). Throwing aborts like the signal. */
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
  /** Mode of a newly created file. */
  mode?: number;
}

/**
 * Writes tensors, sparse layouts and raw coded arrays as a safetensors file, atomically (temporary
 * file, fsync, rename). Tensor data is streamed in chunks: contiguous tensors are written straight
 * from their memory, strided ones are packed one chunk at a time. Returns the file's size.
 */
export async function writeSafetensorsFile(
  path: string,
  entries: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
  options: SafetensorsWriteOptions = {},
): Promise<number> {
  const plan = planSafetensors(entries, metadata, { order: options.order });
  const { onProgress } = options;
  return atomicWriteFile(path, safetensorsChunks(plan, options.chunkBytes), {
    signal: options.signal,
    mode: options.mode,
    onProgress: onProgress ? (written) => onProgress(written, plan.byteLength) : undefined,
  });
}
