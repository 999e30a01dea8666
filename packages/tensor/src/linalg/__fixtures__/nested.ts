// Plain nested-array matrix helpers for the linear-algebra tests, written independently of the library's
// internals (no Mat, no kernels), so the references they compute do not share code with what is tested.
import type { Random } from '../../random.js';
import { tensor, type Tensor } from '../../tensor.js';

export type M = number[][];

/** A 2-D tensor (any strides) as rows of numbers. */
export function toM(t: Tensor): M {
  const [r, c] = t.shape as [number, number];
  return Array.from({ length: r }, (_, i) => Array.from({ length: c }, (_, j) => Number(t.data[t.offset + i * t.stride[0]! + j * t.stride[1]!]!)));
}

/** A float64 tensor of the rows (cols given for a matrix with no rows). */
export function fromM(a: M, cols = a[0]?.length ?? 0): Tensor<'float64'> {
  return tensor(Float64Array.from(a.flat()), [a.length, cols]);
}

export function mul(a: M, b: M): M {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
}

export function tr(a: M): M {
  return a[0]!.map((_, j) => a.map((row) => row[j]!));
}

export function maxAbsDiff(a: M, b: M): number {
  let d = 0;
  a.forEach((row, i) => row.forEach((x, j) => (d = Math.max(d, Math.abs(x - b[i]![j]!)))));
  return d;
}

export function identity(n: number): M {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

/** Standard normal entries. */
export function randomM(rows: number, cols: number, rng: Random): M {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.normal()));
}
