import { describe, expect, it } from 'vitest';
import { ArgumentError, LayoutError, SafetensorsError } from '../errors.js';
import { readPacked } from '../layouts/packed.js';
import type { BitmaskLayout, BSRLayout, COOLayout, CSRLayout, NMLayout, SparseLayout } from '../layouts/types.js';
import { toBitmask } from '../layouts/bitmask.js';
import { toBSR } from '../layouts/bsr.js';
import { toCOO } from '../layouts/coo.js';
import { toCSR } from '../layouts/csr.js';
import { layoutByteLength, toDense } from '../layouts/generic.js';
import { toNM } from '../layouts/nm.js';
import { tensor, toArray, transpose } from '../tensor.js';
import { parseSafetensors, serializeSafetensors } from './format.js';
import { sparseToTensors, tensorsToSparse } from './sparse.js';

// Small layouts written out by hand (the layout constructors are another module's job).

// [[1, 0, 0, 2, 0], [0, 0, 3, 0, 4]]: kept flat indices 0, 3, 7, 9.
const bitmask = (): BitmaskLayout<'float32'> => ({
  format: 'bitmask',
  shape: [2, 5],
  dtype: 'float32',
  bits: new Uint8Array([0b1000_1001, 0b0000_0010]),
  values: new Float32Array([1, 2, 3, 4]),
});

// [[0, 5, 0, 6], [0, 0, 0, 0], [7, 0, 0, 0]]
const csr = (): CSRLayout<'float16'> => ({
  format: 'csr',
  shape: [3, 4],
  dtype: 'float16',
  indptr: new Int32Array([0, 2, 2, 3]),
  indices: new Int32Array([1, 3, 0]),
  values: new Uint16Array([0x4500, 0x4600, 0x4700]), // 5, 6, 7 as float16 bits
});

// 3x5 matrix in 2x2 blocks (2 block rows, 3 block columns; edge blocks padded with zeros).
const bsr = (): BSRLayout<'int8'> => ({
  format: 'bsr',
  shape: [3, 5],
  blockShape: [2, 2],
  dtype: 'int8',
  indptr: new Int32Array([0, 1, 2]),
  indices: new Int32Array([2, 0]),
  values: new Int8Array([1, 0, 2, 0, 3, 4, 0, 0]),
});

// 2:4 on a 2x8 matrix; group positions [0,2] [1,3] | [0,1] [2,3], 2 bits each, LSB-first.
const nm = (): NMLayout<'float32'> => ({
  format: 'nm',
  shape: [2, 8],
  n: 2,
  m: 4,
  dtype: 'float32',
  indexBits: 2,
  values: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]),
  indices: new Uint8Array([0 | (2 << 2) | (1 << 4) | (3 << 6), 0 | (1 << 2) | (2 << 4) | (3 << 6)]),
});

// 4x4 with kept flat indices 1, 5, 15.
const coo = (): COOLayout<'bool'> => ({
  format: 'coo',
  shape: [4, 4],
  dtype: 'bool',
  deltas: new Uint32Array([1, 4, 10]),
  values: new Uint8Array([1, 1, 1]),
});

const layouts: Record<string, () => SparseLayout> = { bitmask, csr, bsr, nm, coo };

describe('sparse layouts as named parts', () => {
  it('the hand-packed N:M indices decode to the intended positions', () => {
    const l = nm();
    expect([...Array(8).keys()].map((k) => readPacked(l.indices, 2, k))).toEqual([0, 2, 1, 3, 0, 1, 2, 3]);
  });

  it('sparseToTensors names the parts and writes the metadata entry', () => {
    const c = sparseToTensors('layer.w', csr());
    expect(Object.keys(c.tensors)).toEqual(['layer.w.indptr', 'layer.w.indices', 'layer.w.values']);
    expect(c.tensors['layer.w.values']).toMatchObject({ dtype: 'F16', shape: [3] });
    expect(c.tensors['layer.w.indptr']).toMatchObject({ dtype: 'I32', shape: [4] });
    expect(c.metadata).toEqual({ 'sparse.layer.w': '{"format":"csr","shape":[3,4],"dtype":"float16"}' });

    const n = sparseToTensors('w', nm());
    // N:M leaves out what its values part says (shape, dtype) and what m fixes (indexBits)
    expect(n.metadata['sparse.w']).toBe('{"format":"nm","n":2,"m":4}');
    expect(n.tensors['w.values']!.shape).toEqual([2, 4]);
    expect(n.tensors['w.indices']).toMatchObject({ dtype: 'U8', shape: [2] });

    const b = sparseToTensors('w', bsr());
    expect(b.metadata['sparse.w']).toBe('{"format":"bsr","shape":[3,5],"dtype":"int8","blockShape":[2,2]}');
    expect(b.tensors['w.values']!.shape).toEqual([2, 2, 2]);

    const d = sparseToTensors('w', coo());
    expect(d.tensors['w.deltas']).toMatchObject({ dtype: 'U32', shape: [3] });
    expect(d.tensors['w.values']!.dtype).toBe('BOOL');
    expect(Object.keys(sparseToTensors('w', bitmask()).tensors)).toEqual(['w.bits', 'w.values']);
  });

  it.each(Object.keys(layouts))('%s round-trips through a file, mixed with dense tensors', (format) => {
    const layout = layouts[format]!();
    const dense = tensor(new Float32Array([1, 2, 3]), [3]);
    const f = parseSafetensors(serializeSafetensors({ dense, w: layout, 'w2.x': layouts[format]!() }, { step: '12' }));
    expect(f.names).toEqual(['dense', 'w', 'w2.x']);
    expect(f.isSparse('w')).toBe(true);
    expect(f.isSparse('dense')).toBe(false);
    expect(f.metadata.step).toBe('12');
    const back = f.readLayout('w');
    expect(back).toEqual(layout);
    expect(f.read('w')).toEqual(layout);
    expect(toArray(f.read('dense') as ReturnType<typeof tensor>)).toEqual([1, 2, 3]);
    expect(tensorsToSparse('w2.x', f)).toEqual(layout);
    // The parts remain ordinary tensors for any other reader.
    expect(f.tensorNames.filter((n) => n.startsWith('w.')).length).toBeGreaterThan(1);
  });

  it('zero-size layouts round-trip', () => {
    const empty: CSRLayout<'float32'> = {
      format: 'csr',
      shape: [0, 3],
      dtype: 'float32',
      indptr: new Int32Array([0]),
      indices: new Int32Array(0),
      values: new Float32Array(0),
    };
    const mask: BitmaskLayout<'float32'> = { format: 'bitmask', shape: [0], dtype: 'float32', bits: new Uint8Array(0), values: new Float32Array(0) };
    const f = parseSafetensors(serializeSafetensors({ empty, mask }));
    expect(f.readLayout('empty')).toEqual(empty);
    expect(f.readLayout('mask')).toEqual(mask);
  });

  it('the writer rejects inconsistent layouts with LayoutError and name collisions with ArgumentError', () => {
    const bad = csr();
    bad.indices[0] = 4;
    expect(() => serializeSafetensors({ w: bad })).toThrowError(LayoutError);
    expect(() => serializeSafetensors({ w: bad })).toThrowError(/sparse layout "w": .*indices\[0\] = 4 is outside \[0, 4\)/);
    expect(() => serializeSafetensors({ w: csr(), 'w.values': tensor(new Float32Array(1), [1]) })).toThrowError(ArgumentError);
    expect(() => serializeSafetensors({ w: { ...csr(), indices: new Int32Array([3, 1, 0]) } })).toThrowError(/sparse layout "w": .*indices\[1\]/);
    expect(() => serializeSafetensors({ w: { ...nm(), n: 5 } })).toThrowError(/sparse layout "w": .*n = 5/);
    expect(() => serializeSafetensors({ w: { ...bitmask(), values: new Float64Array(4) } as never })).toThrowError(/sparse layout "w": .*values/);
  });

  it('sparse bytes on disk are smaller than dense for a sparse matrix', () => {
    const rows = 64;
    const cols = 64;
    const indptr = new Int32Array(rows + 1);
    const indices: number[] = [];
    for (let r = 0; r < rows; r++) {
      indices.push(r % 32, 32 + ((r * 7) % 32)); // two sorted, distinct columns per row
      indptr[r + 1] = indices.length;
    }
    const sparse: CSRLayout<'float32'> = {
      format: 'csr',
      shape: [rows, cols],
      dtype: 'float32',
      indptr,
      indices: Int32Array.from(indices),
      values: new Float32Array(indices.length).fill(1),
    };
    const sparseFile = serializeSafetensors({ w: sparse });
    const denseFile = serializeSafetensors({ w: tensor(new Float32Array(rows * cols), [rows, cols]) });
    expect(sparseFile.length).toBeLessThan(denseFile.length / 4);
  });
});

describe('with the layout constructors', () => {
  it('layouts built from a dense matrix read back to the same dense matrix', () => {
    // 6x8, about half zeros, given as a transposed view so the constructors see strides.
    const base = Float32Array.from({ length: 48 }, (_, i) => ((i * 37) % 11 < 5 ? 0 : i - 20));
    const dense = transpose(tensor(base, [8, 6]));
    const entries = {
      bitmask: toBitmask(dense),
      csr: toCSR(dense),
      bsr: toBSR(dense, { blockShape: [4, 3] }),
      nm: toNM(dense, { n: 2, m: 4 }),
      coo: toCOO(dense),
    };
    const f = parseSafetensors(serializeSafetensors(entries));
    for (const [name, layout] of Object.entries(entries)) {
      const back = f.readLayout(name);
      expect(back, name).toEqual(layout);
      expect(toArray(toDense(back)), name).toEqual(toArray(toDense(layout)));
      // The stored parts are exactly the layout's arrays.
      const stored = f.tensorNames.filter((n) => n.startsWith(`${name}.`)).reduce((sum, n) => sum + f.tensorBytes(n).length, 0);
      expect(stored, name).toBe(layoutByteLength(layout));
    }
    expect(toArray(toDense(f.readLayout('csr')))).toEqual(toArray(dense));
  });
});

/** Rewrites a layout's file with one part or metadata entry replaced, bypassing the writer's checks. */
function tamper(layout: SparseLayout, edit: (parts: Record<string, unknown>, meta: Record<string, string>) => void): Uint8Array {
  const { tensors, metadata } = sparseToTensors('w', layout);
  const parts: Record<string, unknown> = { ...tensors };
  const meta: Record<string, string> = { ...metadata };
  edit(parts, meta);
  // Write the parts as raw tensors and the (possibly broken) metadata through a renamed key, then patch it in.
  const bytes = serializeSafetensors(parts as never, Object.fromEntries(Object.entries(meta).map(([k, v]) => [k.replace('sparse.', 'xparse.'), v])));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  for (let i = 8; i < 8 + n - 7; i++) {
    if (String.fromCharCode(...bytes.subarray(i, i + 7)) === 'xparse.') bytes[i] = 's'.charCodeAt(0);
  }
  return bytes;
}

function expectBad(bytes: Uint8Array, fragment: string | RegExp, read = true): void {
  const go = () => {
    const f = parseSafetensors(bytes, { file: 'pruned.safetensors' });
    if (read) f.readLayout('w');
  };
  expect(go).toThrowError(SafetensorsError);
  expect(go).toThrowError(fragment);
  expect(go).toThrowError(/^pruned\.safetensors: /);
}

describe('malformed sparse entries', () => {
  it('the tamper helper reproduces a valid file when nothing is changed', () => {
    expect(parseSafetensors(tamper(csr(), () => {})).readLayout('w')).toEqual(csr());
  });

  it('bad metadata: JSON, format, shape, dtype, N:M parameters', () => {
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '{nope')), 'metadata "sparse.w" is not valid JSON');
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '[1]')), 'must be a JSON object');
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '{"format":"dia","shape":[3,4],"dtype":"float16"}')), 'format must be one of');
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '{"format":"csr","shape":[3,-4],"dtype":"float16"}')), 'shape must be an array');
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '{"format":"csr","shape":[12],"dtype":"float16"}')), 'csr needs a 2-D shape');
    expectBad(tamper(csr(), (_, m) => (m['sparse.w'] = '{"format":"csr","shape":[3,4],"dtype":"half"}')), 'dtype must be one of');
    expectBad(tamper(bsr(), (_, m) => (m['sparse.w'] = '{"format":"bsr","shape":[3,5],"dtype":"int8","blockShape":[0,2]}')), 'blockShape');
    expectBad(
      tamper(nm(), (_, m) => (m['sparse.w'] = '{"format":"nm","shape":[2,8],"dtype":"float32","n":2,"m":4,"indexBits":1}')),
      'indexBits must be',
    );
    expectBad(tamper(nm(), (_, m) => (m['sparse.w'] = '{"format":"nm","shape":[2,8],"dtype":"float32","n":2,"m":3,"indexBits":2}')), 'not a multiple of m=3');
    // the compact entry: its n and m are checked, and its values part must fit them
    expectBad(tamper(nm(), (_, m) => (m['sparse.w'] = '{"format":"nm","n":5,"m":4}')), 'n must be an integer in [1, m=4]');
    expectBad(tamper(nm(), (_, m) => (m['sparse.w'] = '{"format":"nm","n":3,"m":4}')), '4 values per row, not a multiple of n=3');
    expectBad(tamper(nm(), (_, m) => (m['sparse.w'] = '{"format":"nm","n":2}')), 'm must be a positive integer');
    expectBad(tamper(nm(), (p) => (p['w.values'] = { dtype: 'F32', shape: [8], data: new Float32Array(8) })), 'expected rank 2', false);
    expectBad(tamper(nm(), (p) => delete p['w.values']), 'missing its part "w.values"', false);
  });

  it('N:M entries written in full (files from before the compact entry) still read, and must agree with the parts', () => {
    const full = '{"format":"nm","shape":[2,8],"dtype":"float32","n":2,"m":4,"indexBits":2}';
    expect(parseSafetensors(tamper(nm(), (_, m) => (m['sparse.w'] = full))).readLayout('w')).toEqual(nm());
    // a shape the values part contradicts is refused
    expectBad(tamper(nm(), (_, m) => (m['sparse.w'] = full.replace('[2,8]', '[2,12]'))), /values/);
    // the compact and the full entry give the same layout, and the compact header is the shorter
    const compact = tamper(nm(), () => {});
    expect(parseSafetensors(compact).readLayout('w')).toEqual(nm());
    expect(compact.length).toBeLessThan(tamper(nm(), (_, m) => (m['sparse.w'] = full)).length);
  });

  it('missing parts or parts of the wrong dtype or rank fail at open', () => {
    expectBad(tamper(csr(), (p) => delete p['w.indptr']), 'missing its part "w.indptr"', false);
    expectBad(
      tamper(csr(), (p) => (p['w.indptr'] = { dtype: 'I64', shape: [4], data: new BigInt64Array(4) })),
      'sparse part "w.indptr" has dtype I64, expected I32',
      false,
    );
    expectBad(tamper(csr(), (p) => (p['w.values'] = { dtype: 'F32', shape: [3], data: new Float32Array(3) })), 'has dtype F32, expected F16', false);
    expectBad(tamper(nm(), (p) => (p['w.values'] = { dtype: 'F32', shape: [8], data: new Float32Array(8) })), 'expected rank 2', false);
  });

  it('inconsistent contents fail on readLayout', () => {
    const i32 = (xs: number[]) => ({ dtype: 'I32', shape: [xs.length], data: Int32Array.from(xs) });
    expectBad(tamper(csr(), (p) => (p['w.indptr'] = i32([0, 2, 1, 3]))), /sparse layout "w" \(csr\): .*indptr\[2\]/);
    expectBad(tamper(csr(), (p) => (p['w.indptr'] = i32([1, 2, 2, 3]))), /indptr\[0\]/);
    expectBad(tamper(csr(), (p) => (p['w.indptr'] = i32([0, 2, 3]))), /indptr has 3 entries/);
    expectBad(tamper(csr(), (p) => (p['w.indices'] = i32([3, 1, 0]))), /indices\[1\] = 1/);
    expectBad(tamper(csr(), (p) => (p['w.indices'] = i32([1, 3, -1]))), /indices\[2\] = -1 is outside \[0, 4\)/);
    expectBad(tamper(bsr(), (p) => (p['w.indices'] = i32([3, 0]))), /indices\[0\] = 3 is outside \[0, 3\)/);
    expectBad(
      tamper(bsr(), (p) => (p['w.values'] = { dtype: 'I8', shape: [1, 2, 4], data: new Int8Array(8) })),
      'sparse part "w.values" has shape [1, 2, 4], expected [2, 2, 2]',
    );
    expectBad(tamper(bitmask(), (p) => (p['w.bits'] = { dtype: 'U8', shape: [2], data: new Uint8Array([0b1000_1001, 0]) })), /values has 4/);
    expectBad(tamper(bitmask(), (p) => (p['w.bits'] = { dtype: 'U8', shape: [2], data: new Uint8Array([0b1000_1001, 0b0100_0010]) })), /padding/);
    expectBad(tamper(bitmask(), (p) => (p['w.bits'] = { dtype: 'U8', shape: [1], data: new Uint8Array([0b1000_1001]) })), /bits has 1 bytes/);
    expectBad(tamper(nm(), (p) => (p['w.indices'] = { dtype: 'U8', shape: [1], data: new Uint8Array(1) })), /indices has 1 bytes/);
    const u32 = (xs: number[]) => ({ dtype: 'U32', shape: [xs.length], data: Uint32Array.from(xs) });
    expectBad(tamper(coo(), (p) => (p['w.deltas'] = u32([1, 4, 11]))), /flat index 16/);
    expectBad(tamper(coo(), (p) => (p['w.deltas'] = u32([1, 0, 10]))), /deltas\[1\] is 0/);
    expectBad(tamper(coo(), (p) => (p['w.deltas'] = u32([1, 4]))), /deltas has 2 entries/);
  });

  it('N:M group positions at or past m are rejected', () => {
    // 1:3 with 2-bit positions: a stored 3 is out of range.
    const l: NMLayout<'float32'> = { format: 'nm', shape: [1, 3], n: 1, m: 3, dtype: 'float32', indexBits: 2, values: new Float32Array([1]), indices: new Uint8Array([2]) };
    expect(parseSafetensors(serializeSafetensors({ w: l })).readLayout('w')).toEqual(l);
    expectBad(tamper(l, (p) => (p['w.indices'] = { dtype: 'U8', shape: [1], data: new Uint8Array([3]) })), /= 3 is not below m = 3/);
  });

  it('a layout name that is also a dense tensor fails at open', () => {
    expectBad(
      tamper(coo(), (p, m) => {
        p.w = { dtype: 'U8', shape: [1], data: new Uint8Array(1) };
        m['sparse.w'] = m['sparse.w']!;
      }),
      '"w" is both a tensor and a sparse layout',
      false,
    );
  });
});
