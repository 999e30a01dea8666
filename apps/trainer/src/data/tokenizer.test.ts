import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateCorpus } from './corpus.js';
import { ByteTokenizer, CharTokenizer } from './tokenizer.js';

describe('CharTokenizer', () => {
  it('round trips the corpus over a small sorted alphabet', () => {
    const text = generateCorpus({ seed: 2, chars: 50_000 });
    const tok = CharTokenizer.fromText(text);
    expect(tok.vocabSize).toBeGreaterThan(30);
    expect(tok.vocabSize).toBeLessThan(80);
    expect([...tok.chars]).toEqual([...tok.chars].sort());
    const ids = tok.encode(text);
    expect(ids.length).toBe(text.length);
    expect(tok.decode(ids)).toBe(text);
  });

  it('treats astral characters as one token', () => {
    const tok = CharTokenizer.fromText('a😀b');
    expect(tok.vocabSize).toBe(3);
    expect(tok.decode(tok.encode('😀ab😀'))).toBe('😀ab😀');
  });

  it('rejects characters outside the alphabet and ids outside the vocabulary', () => {
    const tok = CharTokenizer.fromText('abc');
    expect(() => tok.encode('abz')).toThrow(/U\+007A at position 2/);
    expect(() => tok.decode([3])).toThrow(/outside 0\.\.2/);
  });
});

// a lone UTF-16 surrogate has no UTF-8 encoding
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('round trips any well-formed string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), (s) => {
        fc.pre(!loneSurrogate.test(s));
        const ids = tok.encode(s);
        expect(ids.every((b) => b >= 0 && b < 256)).toBe(true);
        expect(tok.decode(ids)).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('has vocabulary 256 and encodes UTF-8', () => {
    expect(tok.vocabSize).toBe(256);
    expect(Array.from(tok.encode('é€'))).toEqual([0xc3, 0xa9, 0xe2, 0x82, 0xac]);
  });

  it('replaces a lone surrogate with U+FFFD and rejects ids above 255', () => {
    expect(tok.decode(tok.encode('a\ud800b'))).toBe('a\ufffdb');
    expect(() => tok.decode([256])).toThrow(/outside 0\.\.255/);
  });
});
