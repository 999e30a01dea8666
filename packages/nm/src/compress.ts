// Compressed N:M storage through @sparse/tensor's 'nm' layout: per group the N kept values plus their
// in-group positions packed at ceil(log2 M) bits, the format sparse tensor cores consume.
import { maskToTensor, validateMask, type Mask } from '@sparse/masks';
import {
  ArgumentError,
  asTensor,
  bytesPerElement,
  fromNM,
  isDType,
  nmByteLength,
  toNM,
  type DType,
  type NMLayout,
  type Tensor,
} from '@sparse/tensor';
import { checkNM } from './internal.js';
import { isNM } from './mask.js';

export interface CompressNMOptions {
  n: number;
  m: number;
  /**
   * Which entries to keep (row-axis N:M, at most N per group). Without it each group keeps its N largest
   * |values| (the same choice as nmMask).
   */
  mask?: Mask | Tensor;
}

/** The N:M layout of a [rows, cols] weight; groups run along rows (cols must be a multiple of m). */
export function compressNM<D extends DType>(weight: Tensor<D>, opts: CompressNMOptions): NMLayout<D> {
  checkNM('compressNM', opts);
  const { n, m } = opts;
  let mask: Tensor | undefined;
  if (opts.mask !== undefined) {
    if ('bits' in opts.mask) {
      validateMask(opts.mask, 'compressNM');
      // A readable error naming the first bad group before toNM's generic one.
      const check = isNM(opts.mask, { n, m });
      if (!check.valid && check.violation) {
        const v = check.violation;
        throw new ArgumentError(`compressNM: mask keeps ${v.count} > n = ${n} entries in row ${v.line}, group at column ${v.start}`);
      }
      mask = maskToTensor(opts.mask, 'uint8');
    } else {
      mask = asTensor(opts.mask);
    }
  }
  return toNM(weight, mask === undefined ? { n, m } : { n, m, mask });
}

/** The dense matrix of an N:M layout (pruned entries zero). */
export function decompressNM<D extends DType>(layout: NMLayout<D>): Tensor<D> {
  return fromNM(layout);
}

export interface NMCompressionReport {
  n: number;
  m: number;
  dtype: DType;
  shape: [number, number];
  denseBytes: number;
  valueBytes: number;
  indexBytes: number;
  compressedBytes: number;
  /** compressedBytes / denseBytes (2:4 fp16: 0.5625). */
  ratio: number;
}

/**
 * Dense bytes against compressed bytes (values + packed indices) of an N:M layout, or of a layout that
 * would be built for { shape, n, m, dtype }. 2:4 in float16: 50% values + 6.25% 2-bit indices = 56.25%.
 */
export function nmCompressionReport(x: NMLayout | { shape: [number, number]; n: number; m: number; dtype: DType }): NMCompressionReport {
  const { n, m, dtype } = x;
  checkNM('nmCompressionReport', { n, m });
  if (!isDType(dtype)) throw new ArgumentError(`nmCompressionReport: unknown dtype ${JSON.stringify(dtype)}`);
  const [rows, cols] = x.shape;
  if (cols % m !== 0) throw new ArgumentError(`nmCompressionReport: ${cols} columns are not a multiple of m = ${m}`);
  const bpe = bytesPerElement(dtype);
  const kept = rows * (cols / m) * n;
  const bits = Math.ceil(Math.log2(m));
  const layout = 'format' in x ? (x as NMLayout) : undefined;
  const valueBytes = layout ? layout.values.byteLength : kept * bpe;
  const indexBytes = layout ? layout.indices.byteLength : Math.ceil((kept * bits) / 8);
  const compressedBytes = layout ? nmByteLength(layout) : valueBytes + indexBytes;
  const denseBytes = rows * cols * bpe;
  return { n, m, dtype, shape: [rows, cols], denseBytes, valueBytes, indexBytes, compressedBytes, ratio: denseBytes === 0 ? 0 : compressedBytes / denseBytes };
}
