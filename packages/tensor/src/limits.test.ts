// Claimed sizes fail with typed errors before anything is allocated: constructors, layout
// densification (a small CSR file that densifies to gigabytes), safetensors headers.
import { describe, expect, it } from 'vitest';
import { allocStorage } from './dtype.js';
import { SafetensorsError, ShapeError } from './errors.js';
import { fromCSR, toDense } from './layouts/index.js';
import type { CSRLayout } from './layouts/types.js';
import { checkAllocation, MAX_TENSOR_BYTES, MAX_TENSOR_ELEMENTS } from './limits.js';
import { parseSafetensors, serializeSafetensors } from './safetensors/index.js';
import { zeros } from './tensor.js';

function safetensorsWithHeader(header: Record<string, unknown>, dataBytes: number): Uint8Array {
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

describe('allocation limits', () => {
  it('are 2^31 - 1 elements and 2 GiB', () => {
    expect(MAX_TENSOR_ELEMENTS).toBe(2147483647);
    expect(MAX_TENSOR_BYTES).toBe(2 ** 31);
  });

  it('zeros([1e10]) and zeros([1, 2^31]) throw ShapeError naming the claim', () => {
    expect(() => zeros([1e10])).toThrow(ShapeError);
    expect(() => zeros([1e10])).toThrow(/shape \[10000000000\] of float32 claims 10000000000 elements/);
    expect(() => zeros([1, 2 ** 31], 'uint8')).toThrow(/claims 2147483648 elements, above the limit of 2147483647/);
    // Under the element limit but over the byte budget: 2^30 float32 values are 4 GiB.
    expect(() => zeros([2 ** 15, 2 ** 15])).toThrow(/claims 1073741824 elements = 4294967296 bytes \(4\.00 GiB\), above the budget of MAX_TENSOR_BYTES/);
    expect(() => allocStorage('float64', 2 ** 29)).toThrow(ShapeError);
  });

  it('allows sizes at the limits (checked without allocating)', () => {
    expect(() => checkAllocation('t', 'x', MAX_TENSOR_ELEMENTS, 1)).not.toThrow();
    expect(() => checkAllocation('t', 'x', MAX_TENSOR_BYTES / 4, 4)).not.toThrow();
    expect(() => checkAllocation('t', 'x', MAX_TENSOR_BYTES / 4 + 1, 4)).toThrow(ShapeError);
    expect(zeros([3, 4]).data.length).toBe(12);
  });

  it('a ~120 KB CSR file that densifies to 3.6 GB fails with ShapeError before allocating', () => {
    const rows = 30_000;
    const cols = 30_000;
    const indptr = new Int32Array(rows + 1);
    for (let r = 0; r < rows; r++) indptr[r + 1] = indptr[r]! + (r % 5 === 0 ? 1 : 0);
    const nnz = indptr[rows]!;
    const layout: CSRLayout<'float32'> = {
      format: 'csr',
      shape: [rows, cols],
      dtype: 'float32',
      indptr,
      indices: Int32Array.from({ length: nnz }, (_, i) => (i * 7) % cols),
      values: new Float32Array(nnz).fill(1),
    };
    const bytes = serializeSafetensors({ w: layout });
    expect(bytes.length).toBeLessThan(200_000);
    const read = parseSafetensors(bytes).readLayout('w');
    expect(() => toDense(read)).toThrow(ShapeError);
    expect(() => fromCSR(read as CSRLayout<'float32'>)).toThrow(/shape \[30000, 30000\] of float32 claims 900000000 elements = 3600000000 bytes/);
  });

  it('a safetensors header claiming [1, 2^31] elements is a SafetensorsError', () => {
    const file = safetensorsWithHeader({ x: { dtype: 'U8', shape: [1, 2 ** 31], data_offsets: [0, 8] } }, 8);
    expect(() => parseSafetensors(file)).toThrow(SafetensorsError);
    expect(() => parseSafetensors(file)).toThrow(/shape \[1, 2147483648\] claims 2147483648 elements, above the limit/);
  });

  it('a sparse layout whose metadata claims more than 2^31 - 1 dense elements is a SafetensorsError', () => {
    const rows = 2 ** 16;
    const indptrBytes = (rows + 1) * 4;
    const header = {
      __metadata__: { 'sparse.w': JSON.stringify({ format: 'csr', shape: [rows, rows], dtype: 'float32' }) },
      'w.indptr': { dtype: 'I32', shape: [rows + 1], data_offsets: [0, indptrBytes] },
      'w.indices': { dtype: 'I32', shape: [0], data_offsets: [indptrBytes, indptrBytes] },
      'w.values': { dtype: 'F32', shape: [0], data_offsets: [indptrBytes, indptrBytes] },
    };
    const bytes = safetensorsWithHeader(header, indptrBytes);
    expect(() => parseSafetensors(bytes)).toThrow(SafetensorsError);
    expect(() => parseSafetensors(bytes)).toThrow(/metadata "sparse.w": shape \[65536, 65536\] claims 4294967296 elements, above the limit/);
  });
});
