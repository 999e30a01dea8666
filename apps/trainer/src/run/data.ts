// The token streams of a run, from the recipe's data section: the embedded corpus, a text file or a
// JSONL file of prompt/response pairs (or standard input, `-`), with a char, byte or Hugging Face
// tokenizer, the recipe's `heldOut` fraction held out whichever the source; and the embedded shifted
// task (for fine-tuning and forgetting), tokenized the same way.

import { embeddedData, embeddedShiftedData, prepareText, type TextData } from '../data/dataset.js';
import { checkSplit, isStdinPath, loadTextFile, readDataBytes, readStdinBytes } from '../data/files.js';
import { HFTokenizer } from '../data/hf-tokenizer.js';
import { loadJSONLFile } from '../data/jsonl.js';
import { ByteTokenizer, CharTokenizer, type Tokenizer } from '../data/tokenizer.js';
import type { DataRef } from '../recipe/schema.js';
import type { RunData } from './context.js';

export interface LoadDataOptions {
  /** The bytes of standard input, when data.path is `-` and the caller has read them already. */
  stdin?: Uint8Array;
}

export function loadRunData(ref: DataRef, opts: LoadDataOptions = {}): RunData {
  const hf = typeof ref.tokenizer === 'object' ? HFTokenizer.fromFile(ref.tokenizer.file) : undefined;
  const heldOut = ref.heldOut;
  // a file's bytes, read once (standard input from the caller when it has them)
  const bytesOf = (path: string): Uint8Array => (isStdinPath(path) ? (opts.stdin ?? readStdinBytes()) : readDataBytes(path));
  let main: TextData;
  if (ref.source === 'embedded') {
    if (ref.tokenizer === 'auto' || ref.tokenizer === 'char') main = embeddedData({ heldOut });
    else {
      const base = embeddedData();
      const text = base.tokenizer.decode(base.tokens);
      main = prepareText(text, base.source, hf ?? new ByteTokenizer(), heldOut);
    }
  } else if (ref.source === 'text') {
    const path = ref.path!;
    const bytes = bytesOf(path);
    if (ref.tokenizer === 'auto' || ref.tokenizer === 'byte') {
      main = loadTextFile(path, { heldOut, bytes });
    } else {
      const text = new TextDecoder().decode(bytes);
      const tok: Tokenizer = hf ?? CharTokenizer.fromText(text);
      main = prepareText(text, path, tok, heldOut);
    }
  } else {
    const path = ref.path!;
    const bytes = bytesOf(path);
    const tokenizer: Tokenizer | undefined = hf ?? (ref.tokenizer === 'char' ? CharTokenizer.fromText(new TextDecoder().decode(bytes)) : undefined);
    main = loadJSONLFile(path, { prompt: ref.prompt, response: ref.response, heldOut, bytes, ...(tokenizer ? { tokenizer } : {}) });
  }
  checkSplit(main, ref.path ?? 'embedded corpus', heldOut);
  let shifted: TextData | undefined;
  return {
    main,
    shifted: () => (shifted ??= embeddedShiftedData({ tokenizer: main.tokenizer })),
  };
}
