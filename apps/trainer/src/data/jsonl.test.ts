import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFileError } from './files.js';
import { loadJSONLFile, parseJSONL } from './jsonl.js';
import { CharTokenizer } from './tokenizer.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-jsonl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(fn: () => unknown): DataFileError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DataFileError);
    return e as DataFileError;
  }
  throw new Error('no error');
}

describe('JSONL prompt/response data', () => {
  it('turns each line into prompt + response + separator, skipping blank lines', () => {
    const text = '{"prompt": "Q: 2+2? ", "response": "4"}\n\n  \r\n{"response": "yes", "prompt": "ok? ", "extra": 1}\r\n';
    expect(parseJSONL(text, 'x.jsonl')).toEqual(['Q: 2+2? 4\n', 'ok? yes\n']);
    expect(parseJSONL('{"q": "a", "a": "b"}', 'x.jsonl', { prompt: 'q', response: 'a', separator: '|' })).toEqual(['ab|']);
  });

  it('names the line of each error', () => {
    const ok = '{"prompt": "a", "response": "b"}';
    expect(errorOf(() => parseJSONL(`${ok}\n{"prompt": "a"`, 'd.jsonl')).message).toMatch(/^d\.jsonl line 2: not valid JSON/);
    expect(errorOf(() => parseJSONL(`${ok}\n\n{"prompt": "a"}`, 'd.jsonl')).message).toBe('d.jsonl line 3: missing field "response"');
    expect(errorOf(() => parseJSONL(`{"prompt": 5, "response": "b"}`, 'd.jsonl')).message).toBe('d.jsonl line 1: field "prompt" must be a string, got number');
    expect(errorOf(() => parseJSONL(`${ok}\n[1, 2]`, 'd.jsonl')).message).toBe('d.jsonl line 2: expected a JSON object, got an array');
    expect(errorOf(() => parseJSONL(ok, 'd.jsonl', { response: 'answer' })).message).toBe('d.jsonl line 1: missing field "answer"');
    expect(errorOf(() => parseJSONL('\n\n', 'd.jsonl')).message).toMatch(/no examples/);
  });

  it('loads a file into a split token stream with the given tokenizer', () => {
    const path = join(dir, 'train.jsonl');
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ prompt: `add ${i} and 1: `, response: `${i + 1}` }));
    writeFileSync(path, lines.join('\n'));
    const bytes = loadJSONLFile(path);
    const want = Array.from({ length: 20 }, (_, i) => `add ${i} and 1: ${i + 1}\n`).join('');
    expect(bytes.tokenizer.decode(bytes.tokens)).toBe(want);
    expect(bytes.heldOut.length).toBe(Math.round(bytes.tokens.length * 0.1));
    const chars = CharTokenizer.fromText(want);
    const c = loadJSONLFile(path, { tokenizer: chars, heldOut: 0.25 });
    expect(c.tokens).toEqual(chars.encode(want));
    expect(c.heldOut.length).toBe(Math.round(c.tokens.length * 0.25));
    expect(errorOf(() => loadJSONLFile(join(dir, 'missing.jsonl'))).message).toMatch(/does not exist/);
    expect(errorOf(() => loadJSONLFile(dir)).message).toMatch(/is a directory/);
  });
});
