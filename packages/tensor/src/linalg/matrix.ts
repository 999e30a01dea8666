// Dense float64 matrices used inside the linear-algebra routines (internal; not re-exported).
// Everything is computed in float64 so float32 inputs lose nothing to the algorithm itself.

import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { decodeValue } from '../float16.js';
import { forEachIndex, tensor, type Tensor } from '../tensor.js';

/** A row-major float64 matrix: element (i, j) at data[i * cols + j]. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function mat(rows: number, cols: number, data = new Float64Array(rows * cols)): Mat {
  return { rows, cols, data };
}

/** The output dtype of a routine: float64 in, float64 out; every other dtype gives float32. */
export type LinalgDType = 'float32' | 'float64';

export function outDType(t: Tensor): LinalgDType {
  return t.dtype === 'float64' ? 'float64' : 'float32';
}

/** Copies a rank-2 tensor of any real dtype and any strides into a float64 matrix. */
export function matFromTensor(t: Tensor, where: string, name: string): Mat {
  if (t.shape.length !== 2) throw new ShapeError(`${where}: ${name} must be a matrix, got shape [${t.shape.join(', ')}]`);
  if (t.dtype === 'bool') throw new DTypeError(`${where}: ${name} must be numeric, got dtype bool`);
  const [rows, cols] = t.shape as [number, number];
  const out = mat(rows, cols);
  const src = t.data;
  const dtype = t.dtype;
  let k = 0;
  forEachIndex(t, (pos) => {
    out.data[k++] = decodeValue(dtype, src[pos]!);
  });
  for (let i = 0; i < out.data.length; i++) {
    if (!Number.isFinite(out.data[i]!)) {
      throw new ArgumentError(`${where}: ${name}[${Math.floor(i / Math.max(1, cols))}, ${i % Math.max(1, cols)}] is ${out.data[i]}; entries must be finite`);
    }
  }
  return out;
}

export function matToTensor(m: Mat, dtype: LinalgDType): Tensor<LinalgDType> {
  const data = dtype === 'float64' ? Float64Array.from(m.data) : Float32Array.from(m.data);
  return tensor(data, [m.rows, m.cols]) as Tensor<LinalgDType>;
}

export function vecToTensor(v: Float64Array, dtype: LinalgDType): Tensor<LinalgDType> {
  const data = dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
  return tensor(data, [v.length]) as Tensor<LinalgDType>;
}

export function transposeMat(a: Mat): Mat {
  const out = mat(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j]!;
  }
  return out;
}

/** a @ b (i-k-j loop order so the inner loop walks both b and the output row contiguously). */
export function mulMat(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new ShapeError(`matrix product: [${a.rows}, ${a.cols}] @ [${b.rows}, ${b.cols}]`);
  const out = mat(a.rows, b.cols);
  const n = b.cols;
  for (let i = 0; i < a.rows; i++) {
    const oi = i * n;
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k]!;
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) out.data[oi + j]! += aik * b.data[bk + j]!;
    }
  }
  return out;
}

/** a^T @ b without forming the transpose. */
export function mulMatTA(a: Mat, b: Mat): Mat {
  if (a.rows !== b.rows) throw new ShapeError(`matrix product: [${a.cols}, ${a.rows}] @ [${b.rows}, ${b.cols}]`);
  const out = mat(a.cols, b.cols);
  const n = b.cols;
  for (let k = 0; k < a.rows; k++) {
    const bk = k * n;
    for (let i = 0; i < a.cols; i++) {
      const aki = a.data[k * a.cols + i]!;
      if (aki === 0) continue;
      const oi = i * n;
      for (let j = 0; j < n; j++) out.data[oi + j]! += aki * b.data[bk + j]!;
    }
  }
  return out;
}
