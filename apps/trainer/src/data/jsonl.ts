// Prompt/response data as JSON Lines: one object per line, each becoming the text
// prompt + response + separator. Blank lines are skipped; every error names the line.

import { prepareText, type TextData } from './dataset.js';
import { checkSplit, DataFileError, MIN_DATA_BYTES, readDataBytes } from './files.js';
import { ByteTokenizer, type Tokenizer } from './tokenizer.js';

export interface JSONLOptions {
  /** Field holding the prompt (default 'prompt'). */
  prompt?: string;
  /** Field holding the response (default 'response'). */
  response?: string;
  /** Appended after each example so the model sees where one ends (default '\n'). */
  separator?: string;
}

/**
 * The objects of a JSONL text, one per non-blank line, each with every field of `fields` a string;
 * `where` names the line in errors (`<source> line N`). Errors are DataFileErrors naming the file.
 */
export function jsonlRecords(text: string, source: string, fields: readonly string[]): { rec: Record<string, string>; where: string }[] {
  const out: { rec: Record<string, string>; where: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (cause) {
      throw new DataFileError(source, `${where}: not valid JSON (${(cause as Error).message})`, { cause });
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new DataFileError(source, `${where}: expected a JSON object, got ${Array.isArray(obj) ? 'an array' : typeof obj}`);
    const rec = obj as Record<string, unknown>;
    for (const f of fields) {
      if (!(f in rec)) throw new DataFileError(source, `${where}: missing field "${f}"`);
      if (typeof rec[f] !== 'string') throw new DataFileError(source, `${where}: field "${f}" must be a string, got ${rec[f] === null ? 'null' : typeof rec[f]}`);
    }
    out.push({ rec: rec as Record<string, string>, where });
  }
  return out;
}

/** The examples' texts (prompt + response + separator), in file order. `source` names the file in errors. */
export function parseJSONL(text: string, source: string, options: JSONLOptions = {}): string[] {
  const pf = options.prompt ?? 'prompt';
  const rf = options.response ?? 'response';
  const sep = options.separator ?? '\n';
  const out = jsonlRecords(text, source, [pf, rf]).map(({ rec }) => `${rec[pf]}${rec[rf]}${sep}`);
  if (out.length === 0) throw new DataFileError(source, `${source} has no examples (every line is blank)`);
  return out;
}

/** Reads a JSONL file (or `bytes` already read from it) into a token stream (byte-level unless `tokenizer` is given) with a held-out tail. */
export function loadJSONLFile(path: string, options: JSONLOptions & { tokenizer?: Tokenizer; heldOut?: number; bytes?: Uint8Array } = {}): TextData {
  const text = new TextDecoder().decode(options.bytes ?? readDataBytes(path));
  const joined = parseJSONL(text, path, options).join('');
  const heldOut = options.heldOut ?? 0.1;
  const data = prepareText(joined, path, options.tokenizer ?? new ByteTokenizer(), heldOut);
  if (data.tokens.length < MIN_DATA_BYTES) throw new DataFileError(path, `data file ${path} is too small (${data.tokens.length} tokens); need at least ${MIN_DATA_BYTES}`);
  return checkSplit(data, path, heldOut);
}
