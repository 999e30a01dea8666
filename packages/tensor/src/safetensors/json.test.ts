import { describe, expect, it } from 'vitest';
import { JSONSyntaxError, parseStrictJSON } from './json.js';

const obj = (entries: Array<[string, unknown]>) => new Map(entries);

describe('parseStrictJSON', () => {
  it('parses what JSON.parse parses, with objects as Maps in key order', () => {
    expect(parseStrictJSON(' {"b": [1, -2.5e3, true, false, null], "a": {"x": "y"}} ')).toEqual(
      obj([
        ['b', [1, -2500, true, false, null]],
        ['a', obj([['x', 'y']])],
      ]),
    );
    const text = '"q\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 é"';
    expect(parseStrictJSON(text)).toBe(JSON.parse(text));
    expect(parseStrictJSON('{"__proto__": 1}')).toEqual(obj([['__proto__', 1]]));
    expect(parseStrictJSON('[]')).toEqual([]);
    expect(parseStrictJSON('{}')).toEqual(new Map());
  });

  it('rejects duplicate keys at any depth and reports the path', () => {
    const err = (() => {
      try {
        parseStrictJSON('{"t": {"a": 1, "b": {"c": 1, "c": 2}}}');
      } catch (e) {
        return e as JSONSyntaxError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(JSONSyntaxError);
    expect(err.duplicateKey).toBe('c');
    expect(err.path).toEqual(['t', 'b']);
    expect(() => parseStrictJSON('{"a": 1, "a": 1}')).toThrowError(/duplicate key "a" at character/);
  });

  it.each([
    ['', 'unexpected end of input'],
    ['{', 'unexpected end of input in object'],
    ['{"a" 1}', "expected ':'"],
    ['{"a": 1,}', 'expected a string key'],
    ['[1,]', 'unexpected character'],
    ['[1 2]', "expected ',' or ']'"],
    ['01', 'unexpected text'],
    ['+1', 'unexpected character'],
    ['1.', 'unexpected text'],
    ['"a\u0001"', 'unescaped control character'],
    ['"\\x"', 'invalid escape'],
    ['"\\u12"', 'invalid \\u escape'],
    ['"abc', 'unterminated string'],
    ['tru', 'invalid literal'],
    ['{} {}', 'unexpected text after the JSON value'],
    ["{'a': 1}", 'expected a string key'],
  ])('rejects %j (%s)', (text, message) => {
    expect(() => parseStrictJSON(text)).toThrowError(JSONSyntaxError);
    expect(() => parseStrictJSON(text)).toThrowError(message);
  });

  it('bounds nesting instead of overflowing the stack', () => {
    expect(() => parseStrictJSON('['.repeat(100_000))).toThrowError(/nesting deeper than 64/);
    expect(parseStrictJSON('[[[1]]]', 3)).toEqual([[[1]]]);
    expect(() => parseStrictJSON('[[[[1]]]]', 3)).toThrowError(/nesting deeper than 3/);
  });

  // quadratic behaviour would blow the test timeout; no wall-clock assertion (machines here are shared)
  it('parses a large header', () => {
    const big = `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":{"shape":[${i},2],"s":"${'x'.repeat(20)}"}`).join(',')}}`;
    const v = parseStrictJSON(big) as Map<string, unknown>;
    expect(v.size).toBe(100_000);
    expect(v.get('k99999')).toBeInstanceOf(Map);
  });
});
