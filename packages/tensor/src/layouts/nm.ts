// N:M compressed matrices: every group of M consecutive columns in a row keeps exactly N values, with
// their in-group positions packed at ceil(log2 M) bits, the format of sparse tensor cores (2:4).

import { allocStorage, DType, Storage } from '../dtype.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { selectNM } from '../select-nm.js';
import { asTensor, Tensor, zeros } from '../tensor.js';
import { indexBitsFor, packedByteLength, readPacked, writePacked } from './packed.js';
import type { NMLayout } from './types.js';
import { checkArray, checkLayoutBase, isZeroRaw, layoutFail, matrixInput } from './util.js';

export interface ToNMOptions {
  /** Values kept per group. */
  n: number;
  /** Group size (consecutive columns); must divide the column count. */
  m: number;
  /**
   * Which entries to keep: a tensor of the matrix's shape, non-zero = keep, at most N per group.
   * Groups where it keeps fewer than N are filled up with the lowest unkept positions holding zeros.
   * Without it, each group keeps its N largest |values| by selectNM's rule (NaN above every number,
   * +Infinity included; ties to the lower position).
   */
  mask?: Tensor;
}

/** The largest group size whose positions fit the 24-bit limit of readPacked. */
const MAX_M = 1 << 24;

function nmParamsProblem(n: unknown, m: unknown): string | undefined {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || (n as number) < 1 || (m as number) <= (n as number) || (m as number) > MAX_M) {
    return `need integers 1 <= n < m <= 2^24, got n = ${String(n)}, m = ${String(m)}`;
  }
  return undefined;
}

/**
 * N:M layout of a 2-D dense tensor of any strides. Kept positions are stored in increasing order within
 * each group; a kept slot holding zero stores that zero. Entries outside the kept slots are dropped, so
 * this is exact only when every group has at most N non-zeros (or the mask keeps all of them).
 */
export function toNM<D extends DType>(dense: Tensor<D>, opts: ToNMOptions): NMLayout<D> {
  const [t, rows, cols] = matrixInput(dense, 'toNM');
  const { n, m } = opts ?? ({} as ToNMOptions);
  const problem = nmParamsProblem(n, m);
  if (problem) throw new ArgumentError(`toNM: ${problem}`);
  if (cols % m !== 0) throw new ShapeError(`toNM: ${cols} columns are not a multiple of m = ${m}`);
  let mask: Tensor | undefined;
  if (opts.mask !== undefined) {
    mask = asTensor(opts.mask);
    if (mask.shape.length !== 2 || mask.shape[0] !== rows || mask.shape[1] !== cols) {
      throw new ShapeError(`toNM: mask shape [${mask.shape.join(', ')}] differs from the matrix shape [${rows}, ${cols}]`);
    }
  }
  const { data: src, dtype, offset } = t;
  const [s0, s1] = t.stride as [number, number];
  const groupsPerRow = cols / m;
  const kept = rows * groupsPerRow * n;
  const indexBits = indexBitsFor(m);
  const values = allocStorage(dtype, kept) as Storage<D>;
  const indices = new Uint8Array(packedByteLength(kept, indexBits));
  const selected = mask ? undefined : selectNM(t, n, m, { rank: 'magnitude' }).bits;
  const take = new Uint8Array(m); // 1: kept with its value, 2: kept as a zero filler
  let k = 0;
  for (let i = 0; i < rows; i++) {
    const base = offset + i * s0;
    for (let g = 0; g < groupsPerRow; g++) {
      const c0 = g * m;
      take.fill(0);
      let chosen = 0;
      if (mask) {
        const md = mask.data;
        const mbase = mask.offset + i * mask.stride[0]!;
        const ms1 = mask.stride[1]!;
        for (let q = 0; q < m; q++) {
          if (isZeroRaw(mask.dtype, md[mbase + (c0 + q) * ms1]!)) continue;
          if (++chosen > n) {
            throw new ArgumentError(`toNM: mask keeps more than n = ${n} entries in row ${i}, group ${g} (columns ${c0}..${c0 + m - 1})`);
          }
          take[q] = 1;
        }
        for (let q = 0; q < m && chosen < n; q++) {
          if (!take[q]) {
            take[q] = 2;
            chosen++;
          }
        }
      } else {
        const first = i * cols + c0;
        for (let q = 0; q < m; q++) take[q] = (selected![(first + q) >>> 5]! >>> ((first + q) & 31)) & 1;
      }
      for (let q = 0; q < m; q++) {
        if (!take[q]) continue;
        values[k] = take[q] === 1 ? src[base + (c0 + q) * s1]! : 0;
        writePacked(indices, indexBits, k, q);
        k++;
      }
    }
  }
  return { format: 'nm', shape: [rows, cols], n, m, dtype, indexBits, values, indices };
}

/** Position (0..m-1) inside its group of the k-th stored value. */
export function nmGroupIndex(layout: NMLayout, k: number): number {
  const kept = layout.values.length;
  if (!Number.isInteger(k) || k < 0 || k >= kept) {
    throw new ArgumentError(`nmGroupIndex: k = ${k} is outside [0, ${kept})`);
  }
  return readPacked(layout.indices, layout.indexBits, k);
}

/**
 * Throws LayoutError naming the field and index unless the N:M layout is consistent: 1 <= n < m,
 * cols % m === 0, indexBits = ceil(log2 m), values of rows * cols / m * n entries, indices of exactly the
 * packed length with zero padding, and positions within each group below m and distinct.
 */
export function validateNM(layout: NMLayout): void {
  const where = 'validateNM';
  checkLayoutBase(layout, 'nm', where, 2);
  const { n, m } = layout;
  const problem = nmParamsProblem(n, m);
  if (problem) layoutFail(where, problem);
  const [rows, cols] = layout.shape;
  if (cols % m !== 0) layoutFail(where, `shape[1] = ${cols} is not a multiple of m = ${m}`);
  const bits = indexBitsFor(m);
  if (layout.indexBits !== bits) layoutFail(where, `indexBits must be ${bits} for m = ${m}, got ${layout.indexBits}`);
  checkArray(where, 'indices', layout.indices, Uint8Array);
  const kept = rows * (cols / m) * n;
  if (layout.values.length !== kept) {
    layoutFail(where, `values has ${layout.values.length} entries, expected rows * cols / m * n = ${kept}`);
  }
  const bytes = packedByteLength(kept, bits);
  if (layout.indices.length !== bytes) {
    layoutFail(where, `indices has ${layout.indices.length} bytes, expected ${bytes} for ${kept} positions of ${bits} bits`);
  }
  const used = (kept * bits) % 8;
  if (used !== 0 && layout.indices[bytes - 1]! >>> used !== 0) {
    layoutFail(where, `indices[${bytes - 1}] has bits set past the last position (padding must be zero)`);
  }
  const groupsPerRow = cols / m;
  const groupName = (g: number) => `row ${Math.floor(g / groupsPerRow)}, group at column ${(g % groupsPerRow) * m}`;
  const seen = new Int32Array(m).fill(-1); // seen[q] = last group that used position q
  for (let g = 0; g < kept / n; g++) {
    for (let t = 0; t < n; t++) {
      const k = g * n + t;
      const q = readPacked(layout.indices, bits, k);
      if (q >= m) layoutFail(where, `indices entry ${k} = ${q} is not below m = ${m} (${groupName(g)})`);
      if (seen[q] === g) layoutFail(where, `indices entry ${k} repeats position ${q} within its group (${groupName(g)})`);
      seen[q] = g;
    }
  }
}

/** Dense contiguous tensor of an N:M layout (validates first). */
export function fromNM<D extends DType>(layout: NMLayout<D>): Tensor<D> {
  validateNM(layout);
  const [rows, cols] = layout.shape;
  const { n, m, indexBits, indices, values } = layout;
  const out = zeros([rows, cols], layout.dtype);
  const dst = out.data;
  const groups = rows * (cols / m);
  for (let g = 0; g < groups; g++) {
    // Groups tile the row-major matrix in order, so group g starts at flat index g * m.
    for (let t = 0; t < n; t++) {
      const k = g * n + t;
      dst[g * m + readPacked(indices, indexBits, k)] = values[k]!;
    }
  }
  return out;
}

/** Bytes of the layout's arrays (values + packed indices). */
export function nmByteLength(layout: NMLayout): number {
  return layout.values.byteLength + layout.indices.byteLength;
}
