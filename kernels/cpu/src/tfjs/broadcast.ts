// Broadcasting helpers for the sparse-cpu kernels, following tfjs (NumPy) rules: shapes are aligned
// at their last axis, a missing or size-1 axis repeats.

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * For each flat index of `outShape`, the flat index into an operand of `shape` broadcast to it,
 * times `unit` (the size of one item when the shapes are batch shapes of matrices). `shape` must
 * broadcast to `outShape` (the caller checked it).
 */
export function broadcastOffsets(shape: readonly number[], outShape: readonly number[], unit: number): Float64Array {
  const count = sizeOf(outShape);
  const out = new Float64Array(count);
  const rank = outShape.length;
  const pad = rank - shape.length;
  // Stride of each output axis in the operand: 0 where the operand repeats.
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  let same = pad === 0;
  for (let d = rank - 1; d >= pad; d--) {
    const size = shape[d - pad]!;
    if (size !== outShape[d]) same = false;
    strides[d] = size === 1 ? 0 : s;
    s *= size;
  }
  if (same) {
    for (let i = 0; i < count; i++) out[i] = i * unit;
    return out;
  }
  for (let i = 0; i < count; i++) {
    let rem = i;
    let at = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const size = outShape[d]!;
      const c = rem % size;
      rem = (rem - c) / size;
      at += c * strides[d]!;
    }
    out[i] = at * unit;
  }
  return out;
}

/** The broadcast shape of two shapes, or undefined when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** Whether two shapes are equal. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
