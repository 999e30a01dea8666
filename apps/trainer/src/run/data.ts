// The token streams of a run, from the recipe's data section.

import { CharTokenizer } from '../data/tokenizer.js';
import { embeddedData, prepareTokens, type TextData } from '../data/dataset.js';
import { loadTextFile, DataFileError } from '../data/files.js';
import type { DataRef } from '../recipe/schema.js';
import type { RunData } from './context.js';
import { readFileSync } from 'node:fs';

export function loadRunData(ref: DataRef): RunData {
  let main: TextData;
  if (ref.source === 'embedded') {
    main = embeddedData();
  } else if (ref.source === 'text') {
    const path = ref.path!;
    if (ref.tokenizer === 'char') {
      const text = readFileSync(path, 'utf8');
      const tok = CharTokenizer.fromText(text);
      main = prepareTokens(tok.encode(text), path, tok);
    } else main = loadTextFile(path);
  } else {
    throw new DataFileError(ref.path ?? '', `data source '${ref.source}' is not supported yet`);
  }
  let shifted: TextData | undefined;
  return {
    main,
    shifted: () => {
      if (shifted) return shifted;
      throw new DataFileError('', 'the shifted task is not available for this data');
    },
  };
}
