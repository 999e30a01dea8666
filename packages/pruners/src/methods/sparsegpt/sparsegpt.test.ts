import { count, isKept, keepCount, maskFromBooleans, maskFromPredicate, maskToBooleans, sparsity, type Mask } from '@sparse/masks';
import { ArgumentError, cholesky, choleskyInverse, ConfigError, Random, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { correlatedInputs, errorOf, hessianOf, isNM, leastSquaresRow, normalMatrix } from '../../__fixtures__/layers.js';
import { sparseGPTConfigSchema } from './config.js';
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

describe('sparsegpt reported error', () => {
  /** ||(W - W')X^T||^2 / tokens straight from the inputs, and the dampening term λ/2 ||W - W'||^2 over live inputs. */
  function direct(w: Float32Tensor, pruned: Float32Tensor, x: Float32Tensor, percdamp: number) {
    const [n, f] = x.shape as [number, number];
    const h = hessianOf(x).data;
    let trace = 0;
    for (let j = 0; j < f; j++) trace += h[j * f + j] === 0 ? 1 : h[j * f + j]!;
    const lambda = (percdamp * trace) / f;
    let sq = 0;
    for (let k = 0; k < w.data.length; k++) if (h[(k % f) * f + (k % f)] !== 0) sq += (w.data[k]! - pruned.data[k]!) ** 2;
    return { error: errorOf(w, pruned, x) ** 2 / n, dampTerm: (lambda / 2) * sq };
  }

  it('total is ||(W - W\')X^T||^2 / tokens of the result at percdamp > 0; dampened is the same against H + λI', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(0.01, 0.1, 1),
        fc.constantFrom<Record<string, unknown>>({ sparsity: 0.5 }, { sparsity: 0.7, blocksize: 4 }, { n: 2, m: 4, blocksize: 8 }, { sparsity: 0.6, actOrder: true, blocksize: 8 }),
        fc.boolean(),
        (seed, percdamp, pattern, deadInput) => {
          const rng = new Random(seed);
          let x = correlatedInputs(rng, 40, 16, { mean: 0.5 });
          if (deadInput) x = tensor(x.data.map((v, k) => (k % 16 === 5 ? 0 : v)), [40, 16]);
          const w = normalMatrix(rng, 5, 16);
          const r = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: hessianOf(x) }, config: { ...pattern, percdamp } });
          const { error, dampTerm } = direct(w, r.weight, x, percdamp);
          expect(Math.abs(r.error!.total - error)).toBeLessThan(1e-4 * error + 1e-9);
          expect(Math.abs(r.error!.dampened! - (error + dampTerm))).toBeLessThan(1e-4 * (error + dampTerm) + 1e-9);
          expect(r.error!.dampened!).toBeGreaterThan(r.error!.total);
          expect(r.error!.perRow.reduce((a, b) => a + b, 0)).toBeCloseTo(r.error!.total, 9);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('with a given mask too, and the dampened sum overstates the real error at the default percdamp', () => {
    const rng = new Random(31);
    const x = correlatedInputs(rng, 64, 24);
    const w = normalMatrix(rng, 8, 24);
    const mask = maskFromPredicate([8, 24], (k) => (k * 7919) % 3 === 0);
    const r = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: hessianOf(x) }, mask, config: {} });
    const { error } = direct(w, r.weight, x, 0.01);
    expect(r.error!.total).toBeCloseTo(error, 4);
    expect(r.error!.dampened! / r.error!.total).toBeGreaterThan(1.01);
  });
});

describe('sparsegpt actOrder', () => {
  /** The activation order written out: columns by descending diag(H), ties to the lower index. */
  function orderOf(h: Tensor, n: number): number[] {
    const idx = [...Array(n).keys()];
    for (let a = 1; a < n; a++) {
      // insertion sort: stable, so equal diagonals keep their index order
      const j = idx[a]!;
      let b = a - 1;
      while (b >= 0 && h.data[idx[b]! * n + idx[b]!]! < h.data[j * n + j]!) {
        idx[b + 1] = idx[b]!;
        b--;
      }
      idx[b + 1] = j;
    }
    return idx;
  }
  const cols = (t: Float32Tensor, order: number[]) => {
    const [r, c] = t.shape as [number, number];
    return tensor(Float32Array.from({ length: r * c }, (_, k) => t.data[Math.floor(k / c) * c + order[k % c]!]!), [r, c]);
  };
  const uncols = (t: Float32Tensor, order: number[]) => {
    const [r, c] = t.shape as [number, number];
    const out = new Float32Array(r * c);
    for (let i = 0; i < r; i++) for (let k = 0; k < c; k++) out[i * c + order[k]!] = t.data[i * c + k]!;
    return tensor(out, [r, c]);
  };
  const maskCols = (m: Mask, order: number[], inverse: boolean) => {
    const [r, c] = m.shape as [number, number];
    const b = maskToBooleans(m);
    const out = new Uint8Array(r * c);
    for (let i = 0; i < r; i++) for (let k = 0; k < c; k++) if (inverse) out[i * c + order[k]!] = b[i * c + k]!;
    else out[i * c + k] = b[i * c + order[k]!]!;
    return maskFromBooleans(out, [r, c]);
  };

  /** Inputs with a dead column and two identical columns (a tie in diag H), scaled so the order is far from the identity. */
  function layer(seed: number) {
    const rng = new Random(seed);
    const base = correlatedInputs(rng, 48, 12, { spread: 1 });
    const x = tensor(Float32Array.from(base.data, (v, k) => (k % 12 === 4 ? 0 : k % 12 === 9 ? base.data[k - 9 + 2]! : v)), [48, 12]);
    return { x, w: normalMatrix(rng, 6, 12), h: hessianOf(x) };
  }

  it('equals: permute W and H by descending diag(H), prune with actOrder off, un-permute (mask and weights)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(0.3, 0.5, 0.75), fc.constantFrom(3, 4, 12), (seed, s, blocksize) => {
        const { w, h } = layer(seed);
        const order = orderOf(h, 12);
        expect(order.indexOf(2)).toBeLessThan(order.indexOf(9)); // the tie goes to the lower index
        expect(order[11]).toBe(4); // the dead input comes last
        const hp = tensor(Float64Array.from({ length: 144 }, (_, k) => h.data[order[Math.floor(k / 12)]! * 12 + order[k % 12]!]!), [12, 12]);
        const viaPermutation = sparseGPTPrune({ name: 'l', weight: cols(w, order), stats: { hessian: hp }, config: { sparsity: s, blocksize } });
        const direct = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: h }, config: { sparsity: s, blocksize, actOrder: true } });
        expect(Array.from(maskToBooleans(direct.mask))).toEqual(Array.from(maskToBooleans(maskCols(viaPermutation.mask, order, true))));
        expect(Array.from(direct.weight.data)).toEqual(Array.from(uncols(viaPermutation.weight, order).data));
        expect(count(direct.mask)).toBe(keepCount(6 * 12, s));
        expect(direct.error!.total).toBeCloseTo(viaPermutation.error!.total, 12);
      }),
      { numRuns: 30 },
    );
  });

  it('equals the same construction with a given mask, which it keeps as given (an N:M mask stays N:M in the layer order)', () => {
    const { w, h } = layer(7);
    const order = orderOf(h, 12);
    const hp = tensor(Float64Array.from({ length: 144 }, (_, k) => h.data[order[Math.floor(k / 12)]! * 12 + order[k % 12]!]!), [12, 12]);
    const nm = maskFromPredicate([6, 12], (k) => (k % 4) % 2 === (Math.floor(k / 12) % 2)); // 2:4 along each row
    expect(isNM(nm, 2, 4)).toBe(true);
    const viaPermutation = sparseGPTPrune({ name: 'l', weight: cols(w, order), stats: { hessian: hp }, mask: maskCols(nm, order, false), config: { blocksize: 4 } });
    const direct = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: h }, mask: nm, config: { blocksize: 4, actOrder: true } });
    expect(Array.from(maskToBooleans(direct.mask))).toEqual(Array.from(maskToBooleans(nm)));
    expect(isNM(direct.mask, 2, 4)).toBe(true);
    expect(Array.from(direct.weight.data)).toEqual(Array.from(uncols(viaPermutation.weight, order).data));
    // The order matters: the same mask without act-order reconstructs differently.
    const plain = sparseGPTPrune({ name: 'l', weight: w, stats: { hessian: h }, mask: nm, config: { blocksize: 4 } });
    expect(Array.from(plain.weight.data)).not.toEqual(Array.from(direct.weight.data));
  });

  it('is off by default and refuses N:M with a ConfigError naming actOrder', () => {
    const { w, h } = layer(3);
    expect(sparseGPTConfigSchema.parse({})).toMatchObject({ actOrder: false });
    expect(() => sparseGPTPrune({ name: 'blk.1.fc2', weight: w, stats: { hessian: h }, config: { n: 2, m: 4, actOrder: true } })).toThrow(ConfigError);
    expect(() => sparseGPTPrune({ name: 'blk.1.fc2', weight: w, stats: { hessian: h }, config: { n: 2, m: 4, actOrder: true } })).toThrow(/blk\.1\.fc2.*actOrder.*N:M/);
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
