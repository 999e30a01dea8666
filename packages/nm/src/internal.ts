// Shared argument checks and a decoded row-major read of 2-D tensors of any dtype and strides.
import { ArgumentError, asTensor, fromBFloat16, fromFloat16, selectNMGroup, ShapeError, type NMSelectAxis, type Tensor } from '@sparse/tensor';

/** Which way groups run: 'row' = M consecutive entries of a row (W[out, in] grouped along in); 'column' = along a column. The selector's own axis type. */
export type NMAxis = NMSelectAxis;

export interface NMParams {
  /** Entries kept per group. */
  n: number;
  /** Group size. */
  m: number;
  /** Group direction, 'row' by default. */
  axis?: NMAxis;
}

/** Throws typed errors for invalid N:M parameters; returns the resolved axis. */
export function checkNM(where: string, opts: NMParams): NMAxis {
  const { n, m } = opts ?? ({} as NMParams);
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m)) throw new ArgumentError(`${where}: n and m must be integers, got n = ${String(n)}, m = ${String(m)}`);
  if (n < 1) throw new ArgumentError(`${where}: n must be at least 1, got ${n}`);
  if (n >= m) throw new ArgumentError(`${where}: n must be below m, got n = ${n}, m = ${m}`);
  const axis = opts.axis ?? 'row';
  if (axis !== 'row' && axis !== 'column') throw new ArgumentError(`${where}: axis must be 'row' or 'column', got ${JSON.stringify(axis)}`);
  return axis;
}

/** Throws ShapeError unless the grouped dimension is a multiple of m. */
export function checkDivisible(where: string, rows: number, cols: number, m: number, axis: NMAxis): void {
  const dim = axis === 'row' ? cols : rows;
  if (dim % m !== 0) {
    throw new ShapeError(`${where}: ${axis === 'row' ? 'column' : 'row'} count ${dim} of shape [${rows}, ${cols}] is not a multiple of m = ${m}`);
  }
}

/** A 2-D tensor's values as float64 row-major (16-bit floats decoded), with its shape. */
export function readMatrix(value: Tensor, where: string): { rows: number; cols: number; data: Float64Array } {
  const t = asTensor(value);
  if (t.shape.length !== 2) throw new ShapeError(`${where}: expected a matrix, got shape [${t.shape.join(', ')}]`);
  const [rows, cols] = t.shape as [number, number];
  const data = new Float64Array(rows * cols);
  const [s0, s1] = t.stride as [number, number];
  // 16-bit floats are stored as raw bits, so decode them.
  const decode = t.dtype === 'float16' ? fromFloat16 : t.dtype === 'bfloat16' ? fromBFloat16 : (x: number) => x;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = decode(t.data[t.offset + i * s0 + j * s1]!);
  return { rows, cols, data };
}

/**
 * Sum of the n scores of vals[0..m) that N:M selection keeps (selectNMGroup's rule), added best first.
 * `kept` is scratch of at least n entries.
 */
export function keptSum(vals: Float64Array, n: number, m: number, kept: Int32Array): number {
  selectNMGroup(vals, n, m, kept);
  let s = 0;
  for (let i = 0; i < n; i++) s += vals[kept[i]!]!;
  return s;
}
