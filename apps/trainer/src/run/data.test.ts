import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyBpe } from '../data/__fixtures__/tiny-bpe.js';
import { DataFileError } from '../data/files.js';
import { resolveRecipe } from '../recipe/load.js';
import { loadRunData } from './data.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-rundata-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dataOf = (data: Record<string, unknown>) => loadRunData(resolveRecipe({ data, stages: [{ stage: 'evaluate' }] }, { baseDir: dir }).data);

describe('run data from the recipe', () => {
  const text = 'the cat sat on the mat. '.repeat(40);
  writeFileSync(join(dir, 'a.txt'), text);
  writeFileSync(join(dir, 'a.jsonl'), Array.from({ length: 30 }, (_, i) => JSON.stringify({ q: `what is ${i}?`, a: `it is ${i}.` })).join('\n'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyBpe()));

  it('reads a text file with byte tokens by default and char tokens on request', () => {
    const byte = dataOf({ source: 'text', path: 'a.txt' });
    expect(byte.main.tokenizer.kind).toBe('byte');
    expect(byte.main.tokens.length).toBe(Buffer.byteLength(text));
    const char = dataOf({ source: 'text', path: 'a.txt', tokenizer: 'char' });
    expect(char.main.tokenizer.kind).toBe('char');
    expect(char.main.tokenizer.decode(char.main.tokens)).toBe(text);
  });

  it('reads JSONL prompt/response pairs with the field names given, and holds out the end', () => {
    const d = dataOf({ source: 'jsonl', path: 'a.jsonl', prompt: 'q', response: 'a', heldOut: 0.2 });
    const all = d.main.tokenizer.decode(d.main.tokens);
    expect(all).toContain('what is 7?');
    expect(all).toContain('it is 7.');
    expect(d.main.heldOut.length / d.main.tokens.length).toBeCloseTo(0.2, 1);
  });

  it('tokenizes with a Hugging Face tokenizer.json', () => {
    const d = dataOf({ source: 'text', path: 'a.txt', tokenizer: { file: 'tokenizer.json' } });
    expect(d.main.tokenizer.kind).toBe('hf');
    expect(d.main.tokens.length).toBeLessThan(Buffer.byteLength(text)); // merges like 'the' and ' cat' apply
    expect(d.main.tokenizer.decode(d.main.tokens)).toBe(text);
  });

  it('gives the shifted task in the same vocabulary', () => {
    const d = dataOf({});
    const s = d.shifted();
    expect(s.tokenizer).toBe(d.main.tokenizer);
    expect(Math.max(...s.tokens)).toBeLessThan(d.main.tokenizer.vocabSize);
  });

  it('names a missing file', () => {
    expect(() => dataOf({ source: 'jsonl', path: 'nope.jsonl' })).toThrow(DataFileError);
  });
});
