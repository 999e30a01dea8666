import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError } from '@sparse/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFileError } from './files.js';
import { HFTokenizer } from './hf-tokenizer.js';
import { tinyBpe } from './__fixtures__/tiny-bpe.js';

const dir = mkdtempSync(join(tmpdir(), 'sparse-hftok-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('HFTokenizer (tokenizer.json through @huggingface/tokenizers)', () => {
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(tinyBpe()));

  it('applies the BPE merges: known ids', () => {
    const tok = HFTokenizer.fromFile(path);
    expect(tok.kind).toBe('hf');
    expect(tok.vocabSize).toBe(262);
    expect(Array.from(tok.encode('the cat'))).toEqual([258, 261]); // 'the' (merge 2), 'Ġcat' (merge 5)
    // 's' is byte 115 -> id 116; ' ' is 'Ġ' (byte 32 -> the 33rd unprintable symbol's id)
    const space = tok.tokenId('Ġ')!;
    expect(Array.from(tok.encode('the sat'))).toEqual([258, space, 116, 98, 117]);
    expect(Array.from(tok.encode('<|endoftext|>the'))).toEqual([0, 258]);
  });

  it('round-trips any text, multi-byte characters included', () => {
    const tok = HFTokenizer.fromFile(path);
    for (const s of ['the cat sat on the mat.\n', 'héllo ✓ 日本 🙂', '  two  spaces\tand tab', 'the<|endoftext|>cat']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('reports bad files and ids', () => {
    expect(() => HFTokenizer.fromFile(join(dir, 'none.json'))).toThrow(DataFileError);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"model": ');
    expect(() => HFTokenizer.fromFile(bad)).toThrow(/is not valid JSON/);
    const tok = HFTokenizer.fromFile(path);
    expect(() => tok.decode([5, 262])).toThrow(ArgumentError);
    expect(() => tok.decode([-1])).toThrow(/not in the vocabulary/);
  });
});
