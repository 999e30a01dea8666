// Tokenizers. The embedded corpus uses a character-level tokenizer over its own character set
// (a small vocabulary, ~60 symbols, so the output layer is cheap on a CPU). User text files
// (`--data`) use a byte-level tokenizer: vocabulary 256 over UTF-8 bytes, so any file is
// representable and the held-out split never meets an unknown symbol.

import { ArgumentError } from '@sparse/tensor';

export interface Tokenizer {
  /** char and byte are built in; hf is a Hugging Face tokenizer.json (hf-tokenizer.ts). */
  readonly kind: 'char' | 'byte' | 'hf';
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

/** One token per Unicode code point, over a fixed alphabet. */
export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly chars: readonly string[];
  private readonly index: Map<string, number>;

  constructor(chars: readonly string[]) {
    if (chars.length === 0) throw new ArgumentError('CharTokenizer: the alphabet is empty');
    this.chars = [...chars];
    this.index = new Map(this.chars.map((c, i) => [c, i]));
    if (this.index.size !== this.chars.length) throw new ArgumentError('CharTokenizer: the alphabet has duplicates');
  }

  /** The alphabet of `text`, sorted by code point so the ids do not depend on text order. */
  static fromText(text: string): CharTokenizer {
    const set = new Set<string>(Array.from(text));
    return new CharTokenizer([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string): Int32Array {
    const cps = Array.from(text);
    const out = new Int32Array(cps.length);
    for (let i = 0; i < cps.length; i++) {
      const id = this.index.get(cps[i]);
      if (id === undefined) {
        const cp = cps[i].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
        throw new ArgumentError(`CharTokenizer: character U+${cp} at position ${i} is not in the alphabet`);
      }
      out[i] = id;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]];
      if (c === undefined) throw new ArgumentError(`CharTokenizer: id ${ids[i]} is outside 0..${this.chars.length - 1}`);
      s += c;
    }
    return s;
  }
}

/**
 * One token per UTF-8 byte. Round trips every well-formed string; a lone surrogate (not
 * representable in UTF-8) is encoded as U+FFFD, as TextEncoder does.
 */
export class ByteTokenizer implements Tokenizer {
  readonly kind = 'byte' as const;
  readonly vocabSize = 256;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8');

  encode(text: string): Int32Array {
    return Int32Array.from(this.encoder.encode(text));
  }

  /** Invalid byte sequences (e.g. a sampled byte string cut mid-character) decode to U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const b = ids[i];
      if (!(b >= 0 && b < 256) || !Number.isInteger(b)) throw new ArgumentError(`ByteTokenizer: id ${b} is outside 0..255`);
      bytes[i] = b;
    }
    return this.decoder.decode(bytes);
  }
}
