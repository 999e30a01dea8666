import { count, isKept, keepCount, maskFromBooleans, maskFromPredicate, sparsity } from '@sparse/masks';
import { ArgumentError, cholesky, choleskyInverse, Random, ShapeError, tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { correlatedInputs, errorOf, hessianOf, isNM, leastSquaresRow, normalMatrix } from '../../__fixtures__/layers.js';
import { sparseGPTInverseFactor, sparseGPTPrune } from './sparsegpt.js';

/** Independent reference of SparseGPT's sequential semantics on one row: prune the masked columns left to
 * right; after pruning column i, the columns after i are re-solved by least squares with columns <= i frozen. */
function sequentialObs(x: ReturnType<typeof correlatedInputs>, w: number[], pruned: boolean[]): number[] {
  const f = w.length;
  let cur = [...w];
  for (let i = 0; i < f; i++) {
    if (!pruned[i]) continue;
    const fixed = new Map<number, number>();
    for (let j = 0; j < i; j++) fixed.set(j, cur[j]!);
    fixed.set(i, 0);
    if (fixed.size === f) {
      cur[i] = 0;
      continue;
    }
    // Target is the original dense row's output; the free columns absorb what the frozen ones miss.
    cur = leastSquaresRow(x, w, fixed);
  }
  return cur;
}

describe('sparsegpt on a tiny layer with zero dampening', () => {
  it('keeps the least-squares optimum when the pruned columns come first', () => {
    const rng = new Random(11);
    const x = correlatedInputs(rng, 24, 6);
    const w = normalMatrix(rng, 1, 6);
    const mask = maskFromBooleans([0, 0, 1, 1, 1, 1], [1, 6]);
    const r = sparseGPTPrune({ name: 'tiny', weight: w, stats: { hessian: hessianOf(x) }, mask, config: { percdamp: 0, blocksize: 8 } });
    const ref = leastSquaresRow(x, w.data, new Map([[0, 0], [1, 0]]));
    Array.from(r.weight.data).forEach((v, j) => expect(v).toBeCloseTo(ref[j]!, 4));
  });

  it('equals the sequential least-squares reference for any mask, in one block or many', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), fc.integer({ min: 1, max: 8 }), (seed, prunedFlags, blocksize) => {
        const rng = new Random(seed);
        const x = correlatedInputs(rng, 30, 6, { spread: 0.5 });
        const w = normalMatrix(rng, 1, 6);
        const mask = maskFromBooleans(prunedFlags.map((p) => !p), [1, 6]);
        const r = sparseGPTPrune({ name: 'tiny', weight: w, stats: { hessian: hessianOf(x) }, mask, config: { percdamp: 0, blocksize } });
        const ref = sequentialObs(x, Array.from(w.data), prunedFlags);
        const scale = Math.max(1, ...ref.map(Math.abs));
        Array.from(r.weight.data).forEach((v, j) => expect(Math.abs(v - ref[j]!)).toBeLessThan(2e-4 * scale));
      }),
      { numRuns: 40 },
    );
  });

  it('single-step OBS: picks the column whose removal costs least (brute force over all six masks) and reconstructs optimally', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), (seed) => {
        const rng = new Random(seed);
        const x0 = correlatedInputs(rng, 30, 6, { spread: 0.5 });
        const w0 = Array.from(normalMatrix(rng, 1, 6).data);
        // Brute force: the least-squares error of every single-column mask.
        const costs = w0.map((_, q) => {
          const opt = leastSquaresRow(x0, w0, new Map([[q, 0]]));
          return errorOf(tensor(Float32Array.from(w0), [1, 6]), tensor(Float32Array.from(opt), [1, 6]), x0) ** 2;
        });
        const best = costs.indexOf(Math.min(...costs));
        // Put the best column first: SparseGPT's first saliency is exactly the OBS one, and every later column's
        // saliency is at least its OBS cost, so SparseGPT must choose it too.
        const perm = [best, ...[0, 1, 2, 3, 4, 5].filter((j) => j !== best)];
        const x = tensor(Float32Array.from({ length: 30 * 6 }, (_, k) => x0.data[Math.floor(k / 6) * 6 + perm[k % 6]!]!), [30, 6]);
        const w = tensor(Float32Array.from(perm.map((j) => w0[j]!)), [1, 6]);
        const r = sparseGPTPrune({ name: 'obs', weight: w, stats: { hessian: hessianOf(x) }, config: { sparsity: 1 / 6, percdamp: 0 } });
        expect(isKept(r.mask, 0)).toBe(false);
        expect(count(r.mask)).toBe(5);
        const opt = leastSquaresRow(x, Array.from(w.data), new Map([[0, 0]]));
        const scale = Math.max(1, ...opt.map(Math.abs));
        Array.from(r.weight.data).forEach((v, j) => expect(Math.abs(v - opt[j]!)).toBeLessThan(2e-4 * scale));
        // The reported error is the brute-force minimum, in units of ||ΔW X^T||^2 / tokens.
        expect(r.error!.total).toBeCloseTo(Math.min(...costs) / 30, 4);
      }),
      { numRuns: 30 },
    );
  });
});

describe('sparsegpt patterns and bookkeeping', () => {
  const rng = new Random(5);
  const x = correlatedInputs(rng, 96, 32);
  const w = normalMatrix(rng, 12, 32);
  const stats = { hessian: hessianOf(x) };

  it('prunes exactly size - keepCount(size, s) entries, over several blocks', () => {
    for (const s of [0.1, 0.5, 0.73]) {
      for (const blocksize of [5, 8, 128]) {
        const r = sparseGPTPrune({ name: 'l', weight: w, stats, config: { sparsity: s, blocksize } });
        expect(count(r.mask)).toBe(keepCount(12 * 32, s));
        r.weight.data.forEach((v, k) => isKept(r.mask, k) || expect(v).toBe(0));
      }
    }
  });

  it('produces exact N:M masks (2:4, 4:8, 1:4), with the pruned weights zero', () => {
    for (const [n, m] of [[2, 4], [4, 8], [1, 4]] as const) {
      const r = sparseGPTPrune({ name: 'l', weight: w, stats, config: { n, m, blocksize: 16 } });
      expect(isNM(r.mask, n, m)).toBe(true);
      r.weight.data.forEach((v, k) => isKept(r.mask, k) || expect(v).toBe(0));
    }
  });

  it('reports the error of its result exactly (zero dampening)', () => {
    const r = sparseGPTPrune({ name: 'l', weight: w, stats, config: { sparsity: 0.5, percdamp: 0, blocksize: 8 } });
    expect(r.error!.total).toBeCloseTo(errorOf(w, r.weight, x) ** 2 / 96, 3);
    expect(r.error!.perRow).toHaveLength(12);
  });

  it('gives the same weights for a fixed mask whatever the blocksize (lazy batch updates are exact)', () => {
    const mask = maskFromPredicate([12, 32], (k) => (k * 7919) % 5 < 2);
    const one = sparseGPTPrune({ name: 'l', weight: w, stats, mask, config: { blocksize: 32 } });
    const many = sparseGPTPrune({ name: 'l', weight: w, stats, mask, config: { blocksize: 3 } });
    expect(Array.from(one.mask.bits)).toEqual(Array.from(mask.bits));
    one.weight.data.forEach((v, k) => expect(Math.abs(v - many.weight.data[k]!)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
  });

  it('lowers the error of the same mask compared with plain masking', () => {
    const mask = maskFromPredicate([12, 32], (k) => k % 2 === 0);
    const r = sparseGPTPrune({ name: 'l', weight: w, stats, mask });
    const masked = tensor(w.data.map((v, k) => (k % 2 === 0 ? v : 0)), [12, 32]);
    expect(errorOf(w, r.weight, x)).toBeLessThan(errorOf(w, masked, x));
  });

  it('handles dead inputs: a never-active input gets zero weights and no error', () => {
    const xd = tensor(x.data.map((v, k) => (k % 32 === 3 ? 0 : v)), [96, 32]);
    const r = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: hessianOf(xd) }, config: { sparsity: 0.5, percdamp: 0 } });
    for (let i = 0; i < 12; i++) expect(r.weight.data[i * 32 + 3]).toBe(0);
    expect(sparsity(r.mask)).toBe(0.5);
  });

  it('rejects missing, misshapen, non-finite or singular statistics, naming the layer', () => {
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, config: {} })).toThrow(/blk\.0\.fc1.*stats\.hessian/);
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, stats: { hessian: hessianOf(correlatedInputs(rng, 40, 16)) }, config: {} })).toThrow(ShapeError);
    const bad = hessianOf(x);
    bad.data[5] = NaN;
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, stats: { hessian: bad }, config: {} })).toThrow(/blk\.0\.fc1.*NaN/);
    const fewTokens = correlatedInputs(rng, 8, 32); // rank 8 < 32: singular without dampening
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, stats: { hessian: hessianOf(fewTokens) }, config: { percdamp: 0 } })).toThrow(/blk\.0\.fc1.*percdamp/);
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, stats, config: { n: 2, m: 4, blocksize: 6 } })).toThrow(/blk\.0\.fc1.*blocksize/);
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: normalMatrix(rng, 2, 30), stats: { hessian: hessianOf(correlatedInputs(rng, 60, 30)) }, config: { n: 2, m: 4 } })).toThrow(ShapeError);
    expect(() => sparseGPTPrune({ name: 'blk.0.fc1', weight: w, stats, config: { sparsity: 1 } })).toThrow(ArgumentError);
  });
});

describe('sparseGPTInverseFactor', () => {
  it("equals the reference's route: the upper Cholesky factor of the inverse of the dampened Hessian", () => {
    const rng = new Random(21);
    const n = 12;
    const h = hessianOf(correlatedInputs(rng, 40, n));
    const trace = Array.from({ length: n }, (_, j) => h.data[j * n + j]!).reduce((a, b) => a + b, 0);
    const damped = tensor(Float64Array.from(h.data, (v, k) => (k % (n + 1) === 0 ? v + (0.01 * trace) / n : v)), [n, n]);
    const ref = cholesky(choleskyInverse(cholesky(damped)), { upper: true }).data;
    const { u, dead } = sparseGPTInverseFactor('l', Float64Array.from(h.data), n, 0.01);
    expect(Array.from(dead)).toEqual(new Array(n).fill(0));
    const scale = Math.max(...Array.from(ref, Math.abs));
    u.forEach((v, k) => expect(Math.abs(v - ref[k]!)).toBeLessThan(1e-9 * scale));
  });
});
