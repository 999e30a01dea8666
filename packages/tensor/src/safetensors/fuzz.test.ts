import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DType } from '../dtype.js';
import { SafetensorsError, SparseError } from '../errors.js';
import type { CSRLayout } from '../layouts/types.js';
import { slice, tensor, toArray, transpose, zeros, type Tensor } from '../tensor.js';
import { safetensorsBits } from './codec.js';
import { parseSafetensors, serializeSafetensors } from './format.js';

const csr: CSRLayout<'float32'> = {
  format: 'csr',
  shape: [3, 4],
  dtype: 'float32',
  indptr: new Int32Array([0, 2, 2, 3]),
  indices: new Int32Array([1, 3, 0]),
  values: new Float32Array([5, 6, 7]),
};

const VALID = serializeSafetensors(
  {
    a: tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
    b: tensor(new Int8Array([1, -2, 3, -4, 5]), [5]),
    c: tensor(new Uint16Array([0x3f80]), [], { dtype: 'bfloat16' }),
    z: zeros([0, 2]),
    big: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, -1n]) },
    w: csr,
  },
  { note: 'fuzz' },
);
const N = Number(new DataView(VALID.buffer).getBigUint64(0, true));
const HEADER = new TextDecoder().decode(VALID.subarray(8, 8 + N));
const DATA = VALID.subarray(8 + N);

function withHeader(text: string): Uint8Array {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + DATA.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(DATA, 8 + json.length);
  return out;
}

type Mutation = (bytes: Uint8Array) => Uint8Array;

const flip: fc.Arbitrary<Mutation> = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([pos, val]) => (bytes) => {
  const out = bytes.slice();
  if (out.length > 0) out[pos % out.length] = val;
  return out;
});

// Printable edits inside the header keep it UTF-8 and often JSON, reaching the semantic checks.
const headerEdit: fc.Arbitrary<Mutation> = fc.tuple(fc.nat(), fc.constantFrom(...'0123456789[]{},:"-. eE')).map(([pos, ch]) => (bytes) => {
  const out = bytes.slice();
  if (out.length > 8 + N) out[8 + (pos % N)] = ch.charCodeAt(0);
  return out;
});

const truncate: fc.Arbitrary<Mutation> = fc.nat().map((cut) => (bytes) => bytes.slice(0, cut % (bytes.length + 1)));

const prefix: fc.Arbitrary<Mutation> = fc
  .oneof(
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    fc.integer({ min: -16, max: 16 }).map((d) => BigInt(Math.max(0, N + d))),
    fc.constantFrom(0n, 2n ** 63n, 2n ** 64n - 1n, 100_000_000n, 100_000_001n, 2n ** 32n),
  )
  .map((n) => (bytes) => {
    const out = bytes.length >= 8 ? bytes.slice() : new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, n, true);
    return out;
  });

const TOKENS = [
  '"F64"', '"I64"', '"F4"', '"U32"', '"BOOL"', '"XYZ"', '[1,2]', '[]', '-1', '1e400', '0.5', '{}', 'null', 'true', '"__metadata__"',
  '"data_offsets":[0,0]', '"shape":[0]', '"dtype":"U8"', ',', ':', '{', '}', '[', ']', '"', '\\', '\\u12', '"sparse.w"', '"{\\"format\\":\\"coo\\"}"',
];

const splice: fc.Arbitrary<Mutation> = fc
  .tuple(fc.nat(), fc.nat({ max: 40 }), fc.oneof(fc.constantFrom(...TOKENS), fc.json({ maxDepth: 3 }), fc.string({ maxLength: 12 })))
  .map(([at, len, text]) => () => {
    const i = at % (HEADER.length + 1);
    return withHeader(HEADER.slice(0, i) + text + HEADER.slice(i + len));
  });

const mutations = fc.array(fc.oneof(flip, headerEdit, headerEdit, truncate, prefix, splice), { minLength: 1, maxLength: 4 });

function check(bytes: Uint8Array): void {
  let f;
  try {
    f = parseSafetensors(bytes, { file: 'fuzz.safetensors' });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    expect(e.message.startsWith('fuzz.safetensors: ')).toBe(true);
    return;
  }
  const { header } = f;
  expect(header.dataOffset + header.dataLength).toBe(bytes.length);
  let cursor = 0;
  for (const t of header.tensors) {
    expect(t.begin).toBe(cursor);
    expect(t.end).toBeGreaterThanOrEqual(t.begin);
    expect(t.end).toBeLessThanOrEqual(header.dataLength);
    cursor = t.end;
    expect(f.tensorBytes(t.name).length).toBe(t.end - t.begin);
    const numel = t.shape.reduce((x, y) => x * y, 1);
    expect((numel * safetensorsBits(t.dtype)) / 8).toBe(t.end - t.begin);
    try {
      f.raw(t.name);
      f.tensor(t.name);
    } catch (e) {
      // Reading a valid file may still meet a dtype without storage (DTypeError): a typed error.
      if (!SparseError.isInstance(e)) throw e;
    }
  }
  expect(cursor).toBe(header.dataLength);
  for (const name of f.names) {
    try {
      f.read(name);
    } catch (e) {
      if (!SparseError.isInstance(e)) throw e;
    }
  }
}

describe('fuzzing the reader', () => {
  it('the unmutated file is valid', () => {
    const f = parseSafetensors(VALID, { wideInts: 'int32' });
    expect(f.names).toEqual(['a', 'b', 'big', 'c', 'w', 'z']);
    expect(toArray(f.tensor('big'))).toEqual([1, -1]);
    expect(f.readLayout('w')).toEqual(csr);
  });

  it('corrupted files either parse to in-bounds tensors or throw SafetensorsError, never anything else', () => {
    fc.assert(
      fc.property(mutations, (ms) => {
        let bytes: Uint8Array = VALID;
        for (const m of ms) bytes = m(bytes);
        check(bytes);
      }),
      { numRuns: 1500 },
    );
  });

  it('random bytes behind a plausible prefix', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 220 }), (body, n) => {
        const bytes = new Uint8Array(8 + body.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
        bytes.set(body, 8);
        check(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

const DTYPES: DType[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'bool', 'float16', 'bfloat16'];

function fill(dtype: DType, n: number, seed: number): Tensor['data'] {
  const v = (i: number) => ((i * 2654435761 + seed) >>> 0) % 251;
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, (_, i) => v(i) / 8 - 10);
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => v(i) / 3 - 40);
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => v(i) * 100_000 - 9_000_000);
    case 'int8':
      return Int8Array.from({ length: n }, (_, i) => v(i) - 125);
    case 'uint8':
      return Uint8Array.from({ length: n }, (_, i) => v(i));
    case 'bool':
      return Uint8Array.from({ length: n }, (_, i) => v(i) & 1);
    default:
      return Uint16Array.from({ length: n }, (_, i) => v(i) * 257);
  }
}

describe('round-trip property', () => {
  const view = fc.record({
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    seed: fc.nat(),
    op: fc.constantFrom('plain', 'transpose', 'step', 'reverse'),
  });

  it('any set of (strided) tensors reads back equal, in any name order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s !== '__metadata__' && !/[\uD800-\uDFFF]/.test(s)), view, { maxKeys: 5 }), (spec) => {
        const inputs: Record<string, Tensor> = {};
        for (const [name, { dtype, shape, seed, op }] of Object.entries(spec)) {
          let t: Tensor = tensor(fill(dtype, shape.reduce((a, b) => a * b, 1), seed), shape, { dtype });
          if (op === 'transpose') t = transpose(t);
          if (op === 'step' && shape.length > 0) t = slice(t, { step: 2 });
          if (op === 'reverse' && shape.length > 0) t = slice(t, { step: -1 });
          inputs[name] = t;
        }
        const f = parseSafetensors(serializeSafetensors(inputs));
        expect([...f.names].sort()).toEqual(Object.keys(inputs).sort());
        for (const [name, t] of Object.entries(inputs)) {
          const back = f.tensor(name);
          expect(back.dtype).toBe(t.dtype);
          expect(back.shape).toEqual(t.shape);
          expect(toArray(back)).toEqual(toArray(t));
        }
      }),
      { numRuns: 300 },
    );
  });
});
