// Helpers shared by the reference kernels: BLAS-style scaling of C, which never reads C when beta is 0.

/** C[rows, n] = beta * C, writing exact zeros when beta === 0 so NaN or Inf in C does not survive. */
export function scaleOutput(c: Float32Array, cOffset: number, ldc: number, rows: number, n: number, beta: number): void {
  if (beta === 1) return;
  for (let i = 0; i < rows; i++) {
    const row = cOffset + i * ldc;
    if (beta === 0) c.fill(0, row, row + n);
    else for (let j = 0; j < n; j++) c[row + j] = beta * c[row + j]!;
  }
}

/** Row i of C = alpha * acc + beta * C (acc accumulated in float64, rounded once on store). */
export function storeRow(c: Float32Array, row: number, acc: Float64Array, accStart: number, n: number, alpha: number, beta: number): void {
  if (beta === 0) {
    for (let j = 0; j < n; j++) c[row + j] = alpha * acc[accStart + j]!;
  } else {
    for (let j = 0; j < n; j++) c[row + j] = alpha * acc[accStart + j]! + beta * c[row + j]!;
  }
}
