// Hugging Face tokenizer.json files (BPE, WordPiece, Unigram with their normalizers,
// pre-tokenizers and decoders) through @huggingface/tokenizers, a pure-JS implementation.
// Training streams are plain text: no special tokens are added on encode, none dropped on decode.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HFTokenizerImpl } from '@huggingface/tokenizers';
import { ArgumentError } from '@sparse/tensor';
import { DataFileError, readDataBytes } from './files.js';
import type { Tokenizer } from './tokenizer.js';

export class HFTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  /** One more than the largest id of the vocabulary (added tokens included). */
  readonly vocabSize: number;
  /** Where it came from (a path, or '<json>'). */
  readonly source: string;
  readonly #tok: HFTokenizerImpl;

  /** From a parsed tokenizer.json and (optionally) tokenizer_config.json. */
  constructor(tokenizerJSON: object, config: object = {}, source = '<json>') {
    this.source = source;
    try {
      this.#tok = new HFTokenizerImpl(tokenizerJSON, config);
    } catch (cause) {
      throw new ArgumentError(`${source}: not a usable tokenizer.json (${(cause as Error).message})`, { cause });
    }
    let max = -1;
    for (const id of this.#tok.get_vocab(true).values()) if (id > max) max = id;
    if (max < 0) throw new ArgumentError(`${source}: the tokenizer has an empty vocabulary`);
    this.vocabSize = max + 1;
  }

  /** Reads tokenizer.json, and tokenizer_config.json beside it when there is one. */
  static fromFile(path: string): HFTokenizer {
    const read = (p: string): object => {
      const text = new TextDecoder().decode(readDataBytes(p, 'tokenizer file'));
      try {
        return JSON.parse(text) as object;
      } catch (cause) {
        throw new DataFileError(p, `tokenizer file ${p} is not valid JSON (${(cause as Error).message})`, { cause });
      }
    };
    const json = read(path);
    const cfgPath = join(dirname(path), 'tokenizer_config.json');
    return new HFTokenizer(json, existsSync(cfgPath) ? read(cfgPath) : {}, path);
  }

  encode(text: string): Int32Array {
    return Int32Array.from(this.#tok.encode(text, { add_special_tokens: false }).ids);
  }

  decode(ids: ArrayLike<number>): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.#tok.id_to_token(id) === undefined) {
        throw new ArgumentError(`HFTokenizer: id ${id} is not in the vocabulary of ${this.source}`);
      }
      list.push(id);
    }
    return this.#tok.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The id of a token string, if the vocabulary has it. */
  tokenId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }
}
