// The sparse kernels on layouts built by the layout constructors (toCSR, toNM, toBSR), against matmul
// on the same matrix read back densely: the two halves of @sparse/tensor agree on the formats.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBSR, toBSR } from '../layouts/bsr.js';
import { fromCSR, toCSR } from '../layouts/csr.js';
import { fromNM, toNM } from '../layouts/nm.js';
import { tensor, toArray, type Float32Tensor } from '../tensor.js';
import { randomArray, rng } from './__fixtures__/dense.js';
import { matmul, spmm } from './ops.js';

function sparseMatrix(rows: number, cols: number, density: number, next: () => number): Float32Tensor {
  const data = randomArray(rows * cols, next);
  for (let i = 0; i < data.length; i++) if (next() >= density) data[i] = 0;
  return tensor<'float32'>(data, [rows, cols]);
}

function expectSame(got: Float32Tensor, want: Float32Tensor): void {
  expect(got.shape).toEqual(want.shape);
  const g = toArray(got);
  const w = toArray(want);
  for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - w[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(w[i]!)));
}

describe('spmm on layouts from the layout constructors', () => {
  const sizes = fc.record({
    rows: fc.integer({ min: 0, max: 9 }),
    groups: fc.integer({ min: 0, max: 4 }),
    n: fc.integer({ min: 0, max: 6 }),
    density: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer(),
  });

  it('toCSR, toNM (2:4 and 3:8) and toBSR (several block shapes)', () => {
    fc.assert(
      fc.property(sizes, ({ rows, groups, n, density, seed }) => {
        const next = rng(seed);
        for (const m of [4, 8]) {
          const cols = groups * m;
          const dense = sparseMatrix(rows, cols, density, next);
          const b = tensor<'float32'>(randomArray(cols * n, next), [cols, n]);

          const csr = toCSR(dense);
          expectSame(spmm(csr, b), matmul(fromCSR(csr), b));

          const nm = toNM(dense, m === 4 ? { n: 2, m: 4 } : { n: 3, m: 8 });
          expectSame(spmm(nm, b), matmul(fromNM(nm), b));

          for (const blockShape of [[1, 1], [2, 3], [4, 4]] as const) {
            const bsr = toBSR(dense, { blockShape });
            expectSame(spmm(bsr, b), matmul(fromBSR(bsr), b));
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
