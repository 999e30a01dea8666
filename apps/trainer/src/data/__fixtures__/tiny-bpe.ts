// A tiny byte-level BPE tokenizer.json for tests (GPT-2's byte symbols, five merges).

/** GPT-2's byte-to-symbol table: printable bytes stand for themselves, the rest map to U+0100 onwards. */
export function byteSymbols(): string[] {
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return out;
}

/** A tiny byte-level BPE tokenizer.json: id 0 a special token, ids 1..256 the bytes, then five merges. */
export function tinyBpe(): object {
  const vocab: Record<string, number> = { '<|endoftext|>': 0 };
  byteSymbols().forEach((s, i) => (vocab[s] = i + 1));
  const merges = ['h e', 't he', 'Ġ c', 'Ġc a', 'Ġca t'];
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] = 257 + i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}
