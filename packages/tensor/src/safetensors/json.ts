// A strict JSON parser for safetensors headers. JSON.parse cannot be used: it silently keeps the
// last of duplicate keys (the HF format forbids duplicates), it turns "__proto__" keys into
// prototype writes on plain objects, and a deeply nested 100 MB header would overflow its stack.
// Objects come back as Maps (insertion order, no prototype), arrays as arrays.

export type JSONValue = null | boolean | number | string | JSONValue[] | JSONObject;
export type JSONObject = Map<string, JSONValue>;

/** Malformed JSON. `path` is the chain of object keys leading to the problem (empty at top level). */
export class JSONSyntaxError extends Error {
  readonly position: number;
  readonly path: readonly string[];
  readonly duplicateKey: string | undefined;
  constructor(message: string, position: number, path: readonly string[], duplicateKey?: string) {
    super(message);
    this.name = 'JSONSyntaxError';
    this.position = position;
    this.path = path;
    this.duplicateKey = duplicateKey;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class Parser {
  private i = 0;
  private readonly path: string[] = [];

  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
  ) {}

  parseDocument(): JSONValue {
    const v = this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected text after the JSON value');
    return v;
  }

  private fail(what: string, duplicateKey?: string): never {
    throw new JSONSyntaxError(`${what} at character ${this.i}`, this.i, [...this.path], duplicateKey);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  private value(depth: number): JSONValue {
    this.ws();
    if (this.i >= this.s.length) this.fail('unexpected end of input');
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b /* { */:
        return this.object(depth + 1);
      case 0x5b /* [ */:
        return this.array(depth + 1);
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.literal('true', true);
      case 0x66 /* f */:
        return this.literal('false', false);
      case 0x6e /* n */:
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(`unexpected character ${JSON.stringify(this.s[this.i])}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail('invalid literal');
    this.i += word.length;
    return v;
  }

  private number(): number {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) return this.fail('invalid number');
    this.i += m[0].length;
    return Number(m[0]);
  }

  private string(): string {
    const s = this.s;
    this.i++; // opening quote
    let out = '';
    let run = this.i;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (c === 0x5c) {
        out += s.slice(run, this.i);
        out += this.escape();
        run = this.i;
        continue;
      }
      if (c < 0x20) this.fail('unescaped control character in string');
      this.i++;
    }
    return this.fail('unterminated string');
  }

  private escape(): string {
    const e = this.s[this.i + 1];
    this.i += 2;
    switch (e) {
      case '"':
        return '"';
      case '\\':
        return '\\';
      case '/':
        return '/';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'u': {
        const hex = this.s.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
        this.i += 4;
        return String.fromCharCode(parseInt(hex, 16));
      }
      default:
        this.i -= 2;
        return this.fail('invalid escape');
    }
  }

  private array(depth: number): JSONValue[] {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.i++;
    const out: JSONValue[] = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x5d) {
        this.i++;
        return out;
      }
      this.fail(this.i >= this.s.length ? 'unexpected end of input in array' : "expected ',' or ']'");
    }
  }

  private object(depth: number): JSONObject {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.i++;
    const out: JSONObject = new Map();
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail(this.i >= this.s.length ? 'unexpected end of input in object' : 'expected a string key');
      const key = this.string();
      if (out.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, key);
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x3a) this.fail("expected ':'");
      this.i++;
      this.path.push(key);
      out.set(key, this.value(depth));
      this.path.pop();
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x7d) {
        this.i++;
        return out;
      }
      this.fail(this.i >= this.s.length ? 'unexpected end of input in object' : "expected ',' or '}'");
    }
  }
}

/**
 * Parses JSON text strictly: duplicate keys and nesting deeper than `maxDepth` are errors.
 * Runs in time linear in the text and in bounded stack. Throws JSONSyntaxError.
 */
export function parseStrictJSON(text: string, maxDepth = 64): JSONValue {
  return new Parser(text, maxDepth).parseDocument();
}

export function isJSONObject(v: JSONValue | undefined): v is JSONObject {
  return v instanceof Map;
}
