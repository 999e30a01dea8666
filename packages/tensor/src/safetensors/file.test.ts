import { mkdtemp, open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ArgumentError, SafetensorsError } from '../errors.js';
import type { CSRLayout } from '../layouts/types.js';
import { atomicTempPath, atomicWriteFile, openSafetensors, readSafetensorsFile, writeSafetensorsFile } from '../node.js';
import { tensor, toArray, transpose } from '../tensor.js';
import { serializeSafetensors } from './format.js';

let dir: string;
// FileHandle is not exported by Node; its prototype is reached through a real handle.
let handleProto: { read: (...a: unknown[]) => unknown; write: (...a: unknown[]) => unknown };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sparse-safetensors-'));
  const h = await open(join(dir, 'probe'), 'w');
  handleProto = Object.getPrototypeOf(h);
  await h.close();
  await rm(join(dir, 'probe'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

const ramp = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => i * scale);

const csr: CSRLayout<'float32'> = {
  format: 'csr',
  shape: [3, 4],
  dtype: 'float32',
  indptr: new Int32Array([0, 2, 2, 3]),
  indices: new Int32Array([1, 3, 0]),
  values: new Float32Array([5, 6, 7]),
};

const sameBytes = (x: ArrayBufferView, y: ArrayBufferView) =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));

/** Records every positioned read made through any FileHandle. */
function spyReads(): Array<{ length: number; position: number }> {
  const calls: Array<{ length: number; position: number }> = [];
  const original = handleProto.read;
  vi.spyOn(handleProto, 'read').mockImplementation(function (this: unknown, ...args: unknown[]) {
    calls.push({ length: args[2] as number, position: args[3] as number });
    return original.apply(this, args);
  });
  return calls;
}

describe('lazy reading', () => {
  const big = 65_536; // 256 KiB per float32 tensor
  let path: string;

  beforeAll(async () => {
    path = join(dir, 'lazy.safetensors');
    await writeSafetensorsFile(path, {
      a: tensor(ramp(big), [256, 256]),
      b: tensor(ramp(big, 2), [big]),
      c: tensor(ramp(big, 3), [big]),
      w: csr,
    });
  });

  it('open reads only the prefix and the header; readTensor only its own range', async () => {
    const calls = spyReads();
    const f = await openSafetensors(path);
    try {
      const headerEnd = f.header.dataOffset;
      expect(calls.every((c) => c.position + c.length <= headerEnd)).toBe(true);
      expect(f.bytesRead).toBe(headerEnd);
      expect(f.names).toEqual(['a', 'b', 'c', 'w']);

      calls.length = 0;
      const e = f.entry('b');
      const b = await f.readTensor('b');
      expect(toArray(b).slice(0, 4)).toEqual([0, 2, 4, 6]);
      expect(b.shape).toEqual([big]);
      const start = headerEnd + e.begin;
      const end = headerEnd + e.end;
      expect(calls.length).toBeGreaterThan(0);
      for (const c of calls) {
        expect(c.position).toBeGreaterThanOrEqual(start);
        expect(c.position + c.length).toBeLessThanOrEqual(end);
      }
      expect(calls.reduce((s, c) => s + c.length, 0)).toBe(end - start);
      expect(f.bytesRead).toBe(headerEnd + (e.end - e.begin));
      expect(f.bytesRead).toBeLessThan(f.fileSize / 2);
    } finally {
      await f.close();
    }
  });

  it('readLayout reads only the layout parts', async () => {
    const f = await openSafetensors(path);
    try {
      const before = f.bytesRead;
      expect(await f.readLayout('w')).toEqual(csr);
      const parts = ['w.indptr', 'w.indices', 'w.values'].map((n) => f.entry(n)).reduce((s, e) => s + e.end - e.begin, 0);
      expect(f.bytesRead - before).toBe(parts);
      expect(await f.read('w')).toEqual(csr);
      expect(toArray((await f.read('a')) as ReturnType<typeof tensor>).slice(0, 3)).toEqual([0, 1, 2]);
      expect((await f.readRaw('c')).dtype).toBe('F32');
      expect((await f.readTensorBytes('c')).length).toBe(big * 4);
    } finally {
      await f.close();
    }
  });

  it('readSafetensorsFile loads everything and matches the lazy reader', async () => {
    const whole = await readSafetensorsFile(path);
    const f = await openSafetensors(path);
    try {
      for (const name of ['a', 'b', 'c']) expect(sameBytes(whole.tensor(name).data, (await f.readTensor(name)).data)).toBe(true);
      expect(whole.readLayout('w')).toEqual(csr);
      expect(whole.file).toBe(path);
    } finally {
      await f.close();
    }
  });

  it('reads after close fail; close is idempotent', async () => {
    const f = await openSafetensors(path);
    await f.close();
    await f.close();
    await expect(f.readTensor('a')).rejects.toThrowError(ArgumentError);
  });
});

describe('validation against the real file', () => {
  it('a truncated file fails at open, naming the path', async () => {
    const path = join(dir, 'truncated.safetensors');
    const bytes = serializeSafetensors({ a: tensor(ramp(16), [16]) });
    await writeFile(path, bytes.subarray(0, bytes.length - 1));
    await expect(openSafetensors(path)).rejects.toThrowError(SafetensorsError);
    await expect(openSafetensors(path)).rejects.toThrowError(`${path}: tensor "a": data_offsets [0, 64] run past the end of the data buffer (63 bytes)`);
    await writeFile(path, bytes.subarray(0, 20));
    await expect(openSafetensors(path)).rejects.toThrowError(/runs past the end of the file \(20 bytes/);
    await writeFile(path, bytes.subarray(0, 3));
    await expect(openSafetensors(path)).rejects.toThrowError(/truncated: 3 bytes/);
    await writeFile(path, new Uint8Array(0));
    await expect(openSafetensors(path)).rejects.toThrowError(/truncated: 0 bytes/);
  });

  it('a file truncated after opening fails on read with SafetensorsError', async () => {
    const path = join(dir, 'shrinks.safetensors');
    await writeSafetensorsFile(path, { a: tensor(ramp(16), [16]), b: tensor(ramp(16), [16]) });
    const f = await openSafetensors(path);
    try {
      await truncate(path, f.header.dataOffset + 70);
      await expect(f.readTensor('b')).rejects.toThrowError(/file ended at byte .* was it truncated after opening/);
    } finally {
      await f.close();
    }
  });

  it('the header cap is configurable', async () => {
    const path = join(dir, 'cap.safetensors');
    await writeSafetensorsFile(path, { a: tensor(ramp(4), [4]) }, { note: 'x'.repeat(100) });
    await expect(openSafetensors(path, { maxHeaderBytes: 64 })).rejects.toThrowError(/exceeds the limit of 64 bytes/);
    await (await openSafetensors(path)).close();
  });
});

describe('atomic, streamed writing', () => {
  it('writes exactly the serialized bytes, streaming in chunks and leaving no temporary file', async () => {
    const sub = await mkdtemp(join(dir, 'stream-'));
    const path = join(sub, 'model.safetensors');
    // A large strided tensor: packed one chunk at a time, never as a whole.
    const t = transpose(tensor(ramp(512 * 256), [512, 256]));
    const entries = { t, small: tensor(new Int8Array([1, 2, 3]), [3]), w: csr };
    const writes: number[] = [];
    const originalWrite = handleProto.write;
    vi.spyOn(handleProto, 'write').mockImplementation(function (this: unknown, ...args: unknown[]) {
      writes.push((args[0] as Uint8Array).length);
      return originalWrite.apply(this, args);
    });
    const progress: Array<[number, number]> = [];
    const size = await writeSafetensorsFile(path, entries, { step: '3' }, { chunkBytes: 64 * 1024, onProgress: (w, total) => progress.push([w, total]) });
    vi.restoreAllMocks();
    const expected = serializeSafetensors(entries, { step: '3' });
    expect(size).toBe(expected.length);
    expect(Buffer.from(expected).equals(await readFile(path))).toBe(true);
    expect(await readdir(sub)).toEqual(['model.safetensors']);
    expect(progress.length).toBeGreaterThan(8);
    expect(progress.at(-1)).toEqual([expected.length, expected.length]);
    expect(Math.max(...writes)).toBeLessThanOrEqual(64 * 1024);
  });

  it('an interrupted write (throwing mid-stream) leaves the previous file intact and no temporary file', async () => {
    const sub = await mkdtemp(join(dir, 'interrupt-'));
    const path = join(sub, 'model.safetensors');
    await writeSafetensorsFile(path, { old: tensor(ramp(8), [8]) });
    const before = await readFile(path);
    let calls = 0;
    const boom = new Error('disk on fire');
    await expect(
      writeSafetensorsFile(path, { big: tensor(ramp(100_000), [100_000]) }, undefined, {
        chunkBytes: 4096,
        onProgress: () => {
          if (++calls === 3) throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(calls).toBe(3);
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(sub)).toEqual(['model.safetensors']);

    const controller = new AbortController();
    await expect(
      writeSafetensorsFile(path, { big: tensor(ramp(100_000), [100_000]) }, undefined, {
        chunkBytes: 4096,
        signal: controller.signal,
        onProgress: (w) => {
          if (w > 10_000) controller.abort();
        },
      }),
    ).rejects.toThrowError(/abort/i);
    expect(await readFile(path)).toEqual(before);
    expect(await readdir(sub)).toEqual(['model.safetensors']);
    const f = await openSafetensors(path);
    expect(f.names).toEqual(['old']);
    await f.close();
  });

  it('an invalid entry fails before any file is created', async () => {
    const sub = await mkdtemp(join(dir, 'invalid-'));
    await expect(writeSafetensorsFile(join(sub, 'x.safetensors'), { a: { nope: true } as never })).rejects.toThrowError(ArgumentError);
    expect(await readdir(sub)).toEqual([]);
  });

  it('atomicWriteFile: strings, typed arrays, iterables; failures keep the old file', async () => {
    const sub = await mkdtemp(join(dir, 'atomic-'));
    const path = join(sub, 'state.json');
    expect(await atomicWriteFile(path, '{"step":1}')).toBe(10);
    expect(await readFile(path, 'utf8')).toBe('{"step":1}');
    await atomicWriteFile(path, new Uint16Array([0x6968])); // "hi" little-endian
    expect(await readFile(path, 'utf8')).toBe('hi');
    async function* gen() {
      yield new TextEncoder().encode('a');
      yield new TextEncoder().encode('b');
    }
    await atomicWriteFile(path, gen());
    expect(await readFile(path, 'utf8')).toBe('ab');
    function* failing() {
      yield new TextEncoder().encode('partial');
      throw new Error('interrupted');
    }
    await expect(atomicWriteFile(path, failing())).rejects.toThrowError('interrupted');
    expect(await readFile(path, 'utf8')).toBe('ab');
    await expect(atomicWriteFile(path, [1, 2] as never)).rejects.toThrowError(ArgumentError);
    expect(await readdir(sub)).toEqual(['state.json']);
    const aborted = new AbortController();
    aborted.abort();
    await expect(atomicWriteFile(path, 'x', { signal: aborted.signal })).rejects.toThrowError(/abort/i);
    expect(await readdir(sub)).toEqual(['state.json']);
    expect(atomicTempPath(path)).toMatch(new RegExp(`^${sub.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/state\\.json\\.tmp-${process.pid}-[0-9a-f]{12}$`));
  });
});
