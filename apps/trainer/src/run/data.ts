// The token streams of a run, from the recipe's data section: the embedded corpus, a text file or a
// JSONL file of prompt/response pairs, with a char, byte or Hugging Face tokenizer; and the
// embedded shifted task (for fine-tuning and forgetting), tokenized the same way.

import { readFileSync } from 'node:fs';
import { embeddedData, embeddedShiftedData, prepareText, type TextData } from '../data/dataset.js';
import { DataFileError, loadTextFile } from '../data/files.js';
import { HFTokenizer } from '../data/hf-tokenizer.js';
import { loadJSONLFile } from '../data/jsonl.js';
import { ByteTokenizer, CharTokenizer, type Tokenizer } from '../data/tokenizer.js';
import type { DataRef } from '../recipe/schema.js';
import type { RunData } from './context.js';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataFileError(path, `data file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`}`, { cause: err });
  }
}

export function loadRunData(ref: DataRef): RunData {
  const hf = typeof ref.tokenizer === 'object' ? HFTokenizer.fromFile(ref.tokenizer.file) : undefined;
  let main: TextData;
  if (ref.source === 'embedded') {
    main = ref.tokenizer === 'auto' || ref.tokenizer === 'char' ? embeddedData() : (() => {
      const base = embeddedData();
      const text = base.tokenizer.decode(base.tokens);
      return prepareText(text, base.source, hf ?? new ByteTokenizer(), ref.heldOut);
    })();
  } else if (ref.source === 'text') {
    const path = ref.path!;
    if (ref.tokenizer === 'auto' || ref.tokenizer === 'byte') {
      main = loadTextFile(path);
    } else {
      const text = readText(path);
      const tok: Tokenizer = hf ?? CharTokenizer.fromText(text);
      main = prepareText(text, path, tok, ref.heldOut);
    }
  } else {
    const path = ref.path!;
    const tokenizer: Tokenizer | undefined = hf ?? (ref.tokenizer === 'char' ? CharTokenizer.fromText(readText(path)) : undefined);
    main = loadJSONLFile(path, { prompt: ref.prompt, response: ref.response, heldOut: ref.heldOut, ...(tokenizer ? { tokenizer } : {}) });
  }
  let shifted: TextData | undefined;
  return {
    main,
    shifted: () => (shifted ??= embeddedShiftedData({ tokenizer: main.tokenizer })),
  };
}
