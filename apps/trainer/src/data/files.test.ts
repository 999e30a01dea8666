import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFileError, loadTextFile, MIN_DATA_BYTES } from './files.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-train-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function error(path: string): DataFileError {
  try {
    loadTextFile(path);
  } catch (err) {
    if (err instanceof DataFileError) return err;
    throw err;
  }
  throw new Error(`loadTextFile(${path}) did not throw`);
}

describe('loadTextFile', () => {
  it('reads any bytes as byte-level tokens, split 90/10', () => {
    const file = join(dir, 'latin1.txt');
    const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) % 256); // not valid UTF-8
    writeFileSync(file, bytes);
    const data = loadTextFile(file);
    expect(data.tokenizer.kind).toBe('byte');
    expect(Array.from(data.tokens)).toEqual(Array.from(bytes));
    expect(data.heldOut.length).toBe(20);
    expect(data.source).toBe(file);
  });

  it('names the path of a missing, empty, tiny or directory input', () => {
    expect(error(join(dir, 'missing.txt')).message).toMatch(/missing\.txt does not exist$/);
    writeFileSync(join(dir, 'empty.txt'), '');
    expect(error(join(dir, 'empty.txt')).message).toMatch(/empty\.txt is empty$/);
    writeFileSync(join(dir, 'tiny.txt'), 'hello');
    expect(error(join(dir, 'tiny.txt')).message).toMatch(new RegExp(`tiny\\.txt is too small \\(5 bytes\\); need at least ${MIN_DATA_BYTES}`));
    const e = error(dir);
    expect(e.path).toBe(dir);
    expect(e.message).toMatch(/is a directory/);
  });
});
