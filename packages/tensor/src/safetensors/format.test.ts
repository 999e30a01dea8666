import { describe, expect, it } from 'vitest';
import { DTypeError, SafetensorsError, SparseError, ArgumentError } from '../errors.js';
import { slice, tensor, toArray, transpose, zeros, type Tensor } from '../tensor.js';
import { dtypeToSafetensors, safetensorsToDType, SAFETENSORS_DTYPES } from './codec.js';
import { parseSafetensors, parseSafetensorsHeader, serializeSafetensors } from './format.js';

const enc = new TextEncoder();

/** A file from a header string and data bytes; pads the header with spaces to 8 bytes unless told the length. */
function build(header: string, data: Uint8Array = new Uint8Array(0), opts: { length?: bigint; pad?: boolean } = {}): Uint8Array {
  let json = enc.encode(header);
  if (opts.pad !== false) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

function expectMalformed(bytes: Uint8Array, ...fragments: string[]): SafetensorsError {
  let caught: unknown;
  try {
    parseSafetensors(bytes, { file: 'model.safetensors' });
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const err = caught as SafetensorsError;
  expect(err.file).toBe('model.safetensors');
  expect(err.message.startsWith('model.safetensors: ')).toBe(true);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

describe('hand-built fixture', () => {
  // Header written out by hand: __metadata__ first, tensors in name order, HF's compact JSON.
  const headerJSON =
    '{"__metadata__":{"format":"pt","note":"x"},' +
    '"bias":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},' +
    '"mask":{"dtype":"BOOL","shape":[],"data_offsets":[3,4]},' +
    '"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}}';

  function expectedBytes(): Uint8Array {
    expect(headerJSON.length).toBe(215); // ASCII only, so characters = bytes
    const header = headerJSON + ' '; // one space pads 215 to 216, a multiple of 8
    const out = new Uint8Array(8 + 216 + 20);
    const view = new DataView(out.buffer);
    view.setUint32(0, 216, true); // u64 little-endian: low word 216, high word 0
    view.setUint32(4, 0, true);
    for (let i = 0; i < header.length; i++) out[8 + i] = header.charCodeAt(i);
    const data = 8 + 216;
    view.setInt8(data + 0, -1); // bias
    view.setInt8(data + 1, 0);
    view.setInt8(data + 2, 5);
    view.setUint8(data + 3, 1); // mask (scalar true)
    [1, 2, 3, 4].forEach((v, i) => view.setFloat32(data + 4 + 4 * i, v, true)); // weight, row-major
    return out;
  }

  it('the writer produces exactly the hand-built bytes (strided weight packed, keys sorted)', () => {
    // weight is a transposed view over [1, 3, 2, 4]: logical rows [1, 2], [3, 4].
    const weight = transpose(tensor(new Float32Array([1, 3, 2, 4]), [2, 2]));
    const bytes = serializeSafetensors(
      { weight, mask: tensor(new Uint8Array([1]), [], { dtype: 'bool' }), bias: tensor(new Int8Array([-1, 0, 5]), [3]) },
      { note: 'x', format: 'pt' },
    );
    expect(bytes).toEqual(expectedBytes());
  });

  it('the reader decodes the hand-built bytes', () => {
    const f = parseSafetensors(expectedBytes());
    expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(f.names).toEqual(['bias', 'mask', 'weight']);
    expect(f.header.headerLength).toBe(216);
    expect(f.header.dataOffset).toBe(224);
    const w = f.tensor('weight');
    expect(w.dtype).toBe('float32');
    expect(w.shape).toEqual([2, 2]);
    expect(toArray(w)).toEqual([1, 2, 3, 4]);
    expect(toArray(f.tensor('bias'))).toEqual([-1, 0, 5]);
    const mask = f.tensor('mask');
    expect(mask.dtype).toBe('bool');
    expect(mask.shape).toEqual([]);
    expect(toArray(mask)).toEqual([1]);
  });

  it('reads an HF-ordered file (alignment first, JSON keys out of data order, no metadata)', () => {
    const header = '{"b":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}';
    const data = new Uint8Array(10);
    new DataView(data.buffer).setFloat64(0, -0.25, true);
    data.set([7, 9], 8);
    const f = parseSafetensors(build(header, data));
    expect(f.tensorNames).toEqual(['a', 'b']);
    expect(toArray(f.tensor('a'))).toEqual([-0.25]);
    expect(toArray(f.tensor('b'))).toEqual([7, 9]);
    expect(Object.keys(f.metadata)).toEqual([]);
  });

  it("order: 'alignment' lays tensors out as the HF writer does: dtype (descending Rust enum order), then name", () => {
    const entries = {
      'w.bitmask': { dtype: 'U8' as const, shape: [2], data: new Uint8Array([5, 6]) },
      'w.shape': { dtype: 'I64' as const, shape: [1], data: new BigInt64Array([3n]) },
      'a.compressed': tensor(new Uint16Array([0x3c00]), [1], { dtype: 'float16' }),
      'b.compressed': tensor(new Uint16Array([0x3f80]), [1], { dtype: 'bfloat16' }),
      'a.shape': { dtype: 'I64' as const, shape: [1], data: new BigInt64Array([4n]) },
      z: tensor(new Float32Array([1]), [1]),
    };
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"a.shape":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"w.shape":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},' +
      '"z":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"b.compressed":{"dtype":"BF16","shape":[1],"data_offsets":[20,22]},' +
      '"a.compressed":{"dtype":"F16","shape":[1],"data_offsets":[22,24]},"w.bitmask":{"dtype":"U8","shape":[2],"data_offsets":[24,26]}}';
    const data = new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0x80, 0x3f, 0x00, 0x3c, 5, 6]);
    expect(serializeSafetensors(entries, { format: 'pt' }, { order: 'alignment' })).toEqual(build(header, data));
    // the default stays name order
    expect(parseSafetensors(serializeSafetensors(entries)).header.tensors.map((t) => t.name)).toEqual(['a.compressed', 'a.shape', 'b.compressed', 'w.bitmask', 'w.shape', 'z']);
  });

  it('accepts an unpadded header, trailing whitespace padding and "__metadata__": null', () => {
    const header = '{"__metadata__":null,"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    expect(toArray(parseSafetensors(build(header, new Uint8Array([3]), { pad: false })).tensor('a'))).toEqual([3]);
    expect(toArray(parseSafetensors(build(header + '\n\t   ', new Uint8Array([3]), { pad: false })).tensor('a'))).toEqual([3]);
  });

  it('"__proto__" and "constructor" are ordinary names and metadata keys', () => {
    const entries: Record<string, Tensor> = Object.create(null);
    entries['__proto__'] = tensor(new Uint8Array([1]), [1]);
    entries['constructor'] = tensor(new Uint8Array([2]), [1]);
    const meta: Record<string, string> = Object.create(null);
    meta['__proto__'] = 'p';
    const f = parseSafetensors(serializeSafetensors(entries, meta));
    expect(f.names).toEqual(['__proto__', 'constructor']);
    expect(toArray(f.tensor('__proto__'))).toEqual([1]);
    expect(Object.getOwnPropertyDescriptor(f.metadata, '__proto__')?.value).toBe('p');
    expect(({} as Record<string, unknown>).p).toBeUndefined();
  });

  it('writes an empty file as {} padded to 8 bytes', () => {
    expect(serializeSafetensors({})).toEqual(build('{}      ', undefined, { pad: false }));
    expect(parseSafetensors(serializeSafetensors({})).names).toEqual([]);
  });

  it('sorts names by code point and keeps integer-like names in that order', () => {
    const one = () => tensor(new Uint8Array([1]), [1]);
    const bytes = serializeSafetensors({ b: one(), '10': one(), '2': one(), 'é': one(), '\u{1F600}': one(), '\uFFFD': one(), A: one() });
    const f = parseSafetensors(bytes);
    expect(f.tensorNames).toEqual(['10', '2', 'A', 'b', 'é', '\uFFFD', '\u{1F600}']);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const json = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(json.indexOf('"10"')).toBeLessThan(json.indexOf('"2"'));
  });
});

function randomStorage(dtype: Tensor['dtype'], n: number, seed: number): Tensor['data'] {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, () => next() * 200 - 100);
    case 'float64':
      return Float64Array.from({ length: n }, () => (next() - 0.5) * 1e300);
    case 'int32':
      return Int32Array.from({ length: n }, () => Math.floor(next() * 2 ** 32) - 2 ** 31);
    case 'int8':
      return Int8Array.from({ length: n }, () => Math.floor(next() * 256) - 128);
    case 'uint8':
      return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
    case 'bool':
      return Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
    case 'float16':
    case 'bfloat16':
      return Uint16Array.from({ length: n }, () => Math.floor(next() * 65536));
  }
}

describe('round trips', () => {
  const dtypes: Tensor['dtype'][] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'bool', 'float16', 'bfloat16'];

  it.each(dtypes)('%s: values, shape and dtype survive; the code is the HF one', (dtype) => {
    const t = tensor(randomStorage(dtype, 24, 7), [2, 3, 4], { dtype });
    const f = parseSafetensors(serializeSafetensors({ t, s: tensor(randomStorage(dtype, 1, 3), [], { dtype }) }));
    const back = f.tensor('t');
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual([2, 3, 4]);
    expect(back.data).toEqual(t.data);
    expect(f.entry('t').dtype).toBe(dtypeToSafetensors(dtype));
    expect(toArray(f.tensor('s'))).toEqual(toArray(tensor(randomStorage(dtype, 1, 3), [], { dtype })));
  });

  it('maps our dtypes to the HF codes', () => {
    expect(dtypes.map(dtypeToSafetensors)).toEqual(['F32', 'F64', 'I32', 'I8', 'U8', 'BOOL', 'F16', 'BF16']);
    for (const code of SAFETENSORS_DTYPES) {
      const d = safetensorsToDType(code);
      if (d) expect(dtypeToSafetensors(d)).toBe(code);
    }
  });

  it('packs strided views: transposes, steps, negative steps, offsets', () => {
    const base = tensor(Float64Array.from({ length: 60 }, (_, i) => i * 1.5), [3, 4, 5]);
    const views: Record<string, Tensor> = {
      transposed: transpose(base, [2, 0, 1]),
      stepped: slice(base, { step: 2 }, { start: 1, step: 2 }, { start: 4, step: -3 }),
      row: slice(base, 1, 2),
      column: slice(base, null, 3, 0),
      offset: tensor(new Float64Array([9, 9, 1, 2, 3, 4, 9]), [2, 2], { offset: 2 }),
    };
    const f = parseSafetensors(serializeSafetensors(views));
    for (const [name, v] of Object.entries(views)) {
      const back = f.tensor(name);
      expect(back.shape, name).toEqual(v.shape);
      expect(toArray(back), name).toEqual(toArray(v));
    }
  });

  it('zero-size tensors take no bytes but keep their shape', () => {
    const f = parseSafetensors(
      serializeSafetensors({ a: zeros([0]), b: zeros([3, 0, 2], 'int8'), c: tensor(new Float32Array([5]), [1]), d: zeros([0, 4], 'bfloat16') }),
    );
    expect(f.tensor('a').shape).toEqual([0]);
    expect(f.tensor('b').shape).toEqual([3, 0, 2]);
    expect(f.tensor('b').dtype).toBe('int8');
    expect(f.tensor('d').dtype).toBe('bfloat16');
    expect(f.entry('a')).toMatchObject({ begin: 0, end: 0 });
    expect(toArray(f.tensor('c'))).toEqual([5]);
    expect(f.header.dataLength).toBe(4);
  });

  it('views the source when aligned and copies when not (or when asked)', () => {
    // "a" is 3 bytes of U8, so "b" (F32) starts at data offset 3: misaligned.
    const bytes = serializeSafetensors({ a: tensor(new Uint8Array([1, 2, 3]), [3]), b: tensor(new Float32Array([1.25, -2]), [2]), c: tensor(new Float32Array([4]), [1]) });
    const f = parseSafetensors(bytes);
    expect(f.tensor('a').data.buffer).toBe(bytes.buffer);
    const b = f.tensor('b');
    expect(b.data.buffer).not.toBe(bytes.buffer);
    expect(toArray(b)).toEqual([1.25, -2]);
    expect(f.entry('c').begin).toBe(11);
    const copied = parseSafetensors(bytes, { copy: true }).tensor('a');
    expect(copied.data.buffer).not.toBe(bytes.buffer);
    // An aligned F32 shares memory: writing through it changes the bytes.
    const aligned = serializeSafetensors({ x: tensor(new Float32Array([1, 2]), [2]) });
    const x = parseSafetensors(aligned).tensor('x');
    expect(x.data.buffer).toBe(aligned.buffer);
  });

  it('copes with a source Uint8Array at an odd byteOffset', () => {
    const bytes = serializeSafetensors({ x: tensor(new Float32Array([1, 2, 3]), [3]) });
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(toArray(parseSafetensors(shifted.subarray(1)).tensor('x'))).toEqual([1, 2, 3]);
  });

  it('I16 and U16 widen to int32; U32, I64 and U64 need wideInts and are range checked', () => {
    const bytes = serializeSafetensors({
      i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 7]) },
      u16: { dtype: 'U16', shape: [2], data: new Uint16Array([65535, 1]) },
      u32: { dtype: 'U32', shape: [2], data: new Uint32Array([4294967295, 3]) },
      i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-5n, 0n, 2147483647n]) },
      big: { dtype: 'I64', shape: [1], data: new BigInt64Array([2n ** 40n]) },
      u64: { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 63n]) },
      f8: { dtype: 'F8_E4M3', shape: [2], data: new Uint8Array([0x38, 0xb8]) },
      f4: { dtype: 'F4', shape: [4], data: new Uint8Array([0x21, 0x43]) },
    });
    const f = parseSafetensors(bytes);
    expect(f.tensor('i16')).toMatchObject({ dtype: 'int32', data: new Int32Array([-32768, 7]) });
    expect(f.tensor('u16')).toMatchObject({ dtype: 'int32', data: new Int32Array([65535, 1]) });
    for (const name of ['u32', 'i64', 'u64']) {
      expect(() => f.tensor(name)).toThrowError(DTypeError);
      expect(() => f.tensor(name)).toThrowError(/wideInts/);
    }
    expect(f.raw('i64').data).toEqual(new BigInt64Array([-5n, 0n, 2147483647n]));
    expect(f.raw('u32').data).toEqual(new Uint32Array([4294967295, 3]));

    const as32 = parseSafetensors(bytes, { wideInts: 'int32' });
    expect(as32.tensor('i64')).toMatchObject({ dtype: 'int32', data: new Int32Array([-5, 0, 2147483647]) });
    expect(() => as32.tensor('big')).toThrowError(/element 0 = 1099511627776 does not fit exactly in int32/);
    expect(() => as32.tensor('u32')).toThrowError(DTypeError);

    const as64 = parseSafetensors(bytes, { wideInts: 'float64' });
    expect(as64.tensor('big')).toMatchObject({ dtype: 'float64', data: new Float64Array([2 ** 40]) });
    expect(as64.tensor('u32').data).toEqual(new Float64Array([4294967295, 3]));
    expect(() => as64.tensor('u64')).toThrowError(/does not fit exactly in float64/);

    expect(() => f.tensor('f8')).toThrowError(/no numeric storage/);
    expect(f.raw('f8').data).toEqual(new Uint8Array([0x38, 0xb8]));
    expect(f.tensorBytes('f4')).toEqual(new Uint8Array([0x21, 0x43]));
    expect(f.entry('f4')).toMatchObject({ shape: [4], begin: expect.any(Number) });
  });

  it('raw input may also be given as little-endian bytes', () => {
    const le = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
    const f = parseSafetensors(serializeSafetensors({ x: { dtype: 'I64', shape: [], data: le } }));
    expect(f.raw('x').data).toEqual(new BigInt64Array([1n]));
  });

  it('unknown names, bad inputs and reserved names are typed errors', () => {
    const f = parseSafetensors(serializeSafetensors({ a: zeros([1]) }));
    expect(() => f.tensor('nope')).toThrowError(ArgumentError);
    expect(() => f.tensor('nope')).toThrowError(/no tensor named "nope" \(it holds "a"\)/);
    expect(() => f.readLayout('a')).toThrowError(/is a dense tensor, not a sparse layout/);
    expect(() => serializeSafetensors({ __metadata__: zeros([1]) })).toThrowError(/reserved/);
    expect(() => serializeSafetensors({ a: { nope: 1 } as never })).toThrowError(ArgumentError);
    expect(() => serializeSafetensors({ a: { data: new Float32Array(2), shape: [3], stride: [1], offset: 0, dtype: 'float32' } })).toThrowError(
      /tensor "a":.*outside data/,
    );
    expect(() => serializeSafetensors({ a: { data: new Float32Array(2), shape: [2], stride: [1], offset: 0, dtype: 'int32' } })).toThrowError(ArgumentError);
    expect(() => serializeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrowError(/needs 12/);
    expect(() => serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Int32Array(2) } })).toThrowError(/must be a Float32Array/);
    expect(() => serializeSafetensors({ a: zeros([1]) }, { k: 5 as never })).toThrowError(/must be a string/);
    expect(() => serializeSafetensors({ a: zeros([1]) }, { 'sparse.a': '{}' })).toThrowError(/reserved for sparse layouts/);
    expect(() => serializeSafetensors({ ['bad\uD800']: zeros([1]) })).toThrowError(/lone surrogate/);
  });

  it('reads the tensors of a header-only view (parseSafetensorsHeader)', () => {
    const bytes = serializeSafetensors({ a: zeros([2, 2]), b: zeros([3], 'int8') }, { k: 'v' });
    const h = parseSafetensorsHeader(bytes);
    expect(h.tensors.map((t) => [t.name, t.dtype, t.shape, t.begin, t.end])).toEqual([
      ['a', 'F32', [2, 2], 0, 16],
      ['b', 'I8', [3], 16, 19],
    ]);
    expect(h.metadata.k).toBe('v');
    expect(h.dataOffset + h.dataLength).toBe(bytes.length);
  });
});

describe('malformed input', () => {
  const t = (dtype: string, shape: unknown, offsets: unknown) =>
    `{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
  const four = f32Bytes([1]);

  it('truncated before the length prefix', () => {
    expectMalformed(new Uint8Array(5), 'truncated', '5 bytes');
    expectMalformed(new Uint8Array(0), 'truncated');
  });

  it('header length over the cap, including huge u64 values', () => {
    expectMalformed(build('{}', undefined, { length: 2n ** 64n - 1n }), 'header length 18446744073709551615 exceeds the limit');
    expectMalformed(build('{}', undefined, { length: 100_000_001n }), 'exceeds the limit of 100000000');
    const ok = build(`{"a":${t('F32', [1], [0, 4])}}`, four);
    expect(() => parseSafetensors(ok, { maxHeaderBytes: 16 })).toThrowError(/exceeds the limit of 16 bytes/);
  });

  it('header length past the end of the file', () => {
    expectMalformed(build('{}', undefined, { length: 64n }), 'header length 64 runs past the end of the file (16 bytes');
  });

  it('truncated file: data cut short', () => {
    const full = build(`{"a":${t('F32', [2], [0, 8])}}`, f32Bytes([1, 2]));
    expectMalformed(full.subarray(0, full.length - 3), 'tensor "a"', 'data_offsets [0, 8] run past the end of the data buffer (5 bytes)');
  });

  it('invalid UTF-8, invalid JSON, non-object JSON', () => {
    const bad = build('{}');
    bad[9] = 0xff;
    expectMalformed(bad, 'not valid UTF-8');
    expectMalformed(build('{"a": '), 'not valid JSON', 'unexpected end of input');
    expectMalformed(build('{"a":1,}'), 'not valid JSON');
    expectMalformed(build('{} x'), 'not valid JSON', 'unexpected text after the JSON value');
    expectMalformed(build('[1, 2]'), "header must start with '{'", '"[1, 2]');
    expectMalformed(build('"str"'), "must start with '{'");
    expectMalformed(build(' {}'), "must start with '{'");
    expectMalformed(build('{"a":' + '['.repeat(100) + ']'.repeat(100) + '}'), 'nesting deeper than', 'tensor "a"');
  });

  it('tensor entry not an object, missing or mistyped fields', () => {
    expectMalformed(build('{"w":[1,2]}'), 'tensor "w"', 'expected an object');
    expectMalformed(build('{"w":{"shape":[1],"data_offsets":[0,4]}}', four), 'tensor "w"', 'dtype must be a string');
    expectMalformed(build(`{"w":${t('F33', [1], [0, 4])}}`, four), 'tensor "w"', 'unknown dtype "F33"');
    expectMalformed(build(`{"w":${t('f32', [1], [0, 4])}}`, four), 'tensor "w"', 'unknown dtype "f32"');
    expectMalformed(build('{"w":{"dtype":"F32","data_offsets":[0,4]}}', four), 'tensor "w"', 'shape must be an array');
  });

  it('shape not an array of non-negative integers', () => {
    for (const shape of [1, [-1], [1.5], ['1'], [null], [2 ** 60], 'x']) {
      expectMalformed(build(`{"w":${t('F32', shape, [0, 4])}}`, four), 'tensor "w"', 'shape must be an array of non-negative integers');
    }
  });

  it('data_offsets of the wrong type', () => {
    for (const offsets of [[0], [0, 4, 8], '0,4', [0, '4'], [-4, 0], [0, 4.5], null]) {
      expectMalformed(build(`{"w":${t('F32', [1], offsets)}}`, four), 'tensor "w"', 'data_offsets must be [begin, end]');
    }
  });

  it('begin after end', () => {
    expectMalformed(build(`{"w":${t('F32', [1], [4, 0])}}`, four), 'tensor "w"', 'begin 4 is after end 0');
  });

  it('byte size that does not match shape x itemsize', () => {
    expectMalformed(build(`{"w":${t('F32', [2], [0, 4])}}`, four), 'tensor "w"', 'hold 4 bytes but dtype F32 with shape [2] needs 8');
    expectMalformed(build(`{"w":${t('F32', [2 ** 40, 2 ** 40, 0], [0, 4])}}`, four), 'tensor "w"', 'needs 0');
    expectMalformed(build(`{"w":${t('F4', [3], [0, 1])}}`, four.subarray(0, 1)), 'tensor "w"', 'not a whole number of bytes');
  });

  it('offsets outside the data buffer', () => {
    expectMalformed(build(`{"w":${t('F32', [1], [4, 8])}}`, four), 'tensor "w"', 'run past the end of the data buffer (4 bytes)');
  });

  it('overlapping, gapped and out-of-order regions, and trailing bytes', () => {
    const eight = f32Bytes([1, 2]);
    expectMalformed(build(`{"a":${t('F32', [2], [0, 8])},"b":${t('F32', [1], [4, 8])}}`, eight), 'tensor "b"', 'overlap tensor "a" [0, 8]');
    expectMalformed(build(`{"a":${t('F32', [1], [4, 8])}}`, eight), 'bytes [0, 4) belong to no tensor', 'gap before tensor "a"');
    expectMalformed(build(`{"a":${t('F32', [1], [0, 4])},"b":${t('U8', [2], [6, 8])}}`, eight), 'bytes [4, 6) belong to no tensor', 'tensor "b"');
    expectMalformed(build(`{"a":${t('F32', [1], [0, 4])}}`, eight), 'last 4 bytes of the data buffer');
    expectMalformed(build('{}', eight), 'last 8 bytes');
    expectMalformed(build(`{"a":${t('F32', [2], [0, 8])},"z":${t('F32', [0], [4, 4])}}`, eight), 'tensor "z"', 'overlap');
    // Out of order in the JSON but tiling the buffer: valid, as in the reference implementation.
    const f = parseSafetensors(build(`{"b":${t('F32', [1], [4, 8])},"a":${t('F32', [1], [0, 4])}}`, eight));
    expect(toArray(f.tensor('b'))).toEqual([2]);
  });

  it('__metadata__ that is not a map of strings', () => {
    expectMalformed(build('{"__metadata__":{"a":1}}'), '__metadata__', 'value of "a" must be a string');
    expectMalformed(build('{"__metadata__":{"a":{"b":"c"}}}'), '__metadata__', 'value of "a"');
    expectMalformed(build('{"__metadata__":["a"]}'), '__metadata__ must be an object of strings');
  });

  it('duplicate tensor names, fields and metadata keys', () => {
    expectMalformed(build(`{"a":${t('F32', [1], [0, 4])},"a":${t('F32', [1], [0, 4])}}`, four), 'duplicate tensor name "a"');
    expectMalformed(build('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four), 'tensor "a"', 'duplicate key "dtype"');
    expectMalformed(build('{"__metadata__":{"k":"1","k":"2"}}'), '__metadata__', 'duplicate key "k"');
    expectMalformed(build('{"__metadata__":{},"__metadata__":{}}'), 'duplicate tensor name "__metadata__"');
  });

  it('every malformed case is a SafetensorsError that SparseError.isInstance recognizes', () => {
    const e = expectMalformed(build('{'), 'not valid JSON');
    expect(SparseError.isInstance(e)).toBe(true);
    expect(e.code).toBe('SAFETENSORS');
  });
});
