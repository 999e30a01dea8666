import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activationFunction, denseProduct, estimateScores, exactScores, lowRankFactors, lowRankProduct, svdEstimator } from './estimator.js';
import { fitLinearProbe, headNorms, probeOutputs } from './probe.js';
import { keepCount, recall, selectionMask, topRows, type TopSet } from './select.js';

const normals = (rng: Random, n: number) => rng.fillNormal(new Float32Array(n));

/** W [out, in] whose column j is scaled by decay^j: a spectrum that falls off, as trained weights' do. */
function decayingWeight(rng: Random, out: number, inDim: number, decay: number): Float32Array {
  const w = normals(rng, out * inDim);
  for (let i = 0; i < out; i++) for (let j = 0; j < inDim; j++) w[i * inDim + j]! *= decay ** j;
  return w;
}

describe('topRows and recall', () => {
  it('selects the k largest of each row, ties to the lower index, listed in index order (sort-based brute force)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 5 }), (seed, n, tokens) => {
        const rng = new Random(seed);
        // few distinct values, so ties are common
        const scores = Array.from({ length: tokens * n }, () => rng.int(0, 6));
        const k = rng.int(0, n + 1);
        const got = topRows(scores, tokens, n, k);
        for (let t = 0; t < tokens; t++) {
          const ref = [...Array(n).keys()].sort((a, b) => scores[t * n + b]! - scores[t * n + a]! || a - b).slice(0, k).sort((a, b) => a - b);
          expect(Array.from(got.indices.subarray(t * k, (t + 1) * k))).toEqual(ref);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('recall counts the true entries that were predicted, over all tokens', () => {
    const truth: TopSet = { tokens: 2, n: 5, k: 2, indices: Int32Array.from([0, 1, 3, 4]) };
    const pred: TopSet = { tokens: 2, n: 5, k: 3, indices: Int32Array.from([1, 2, 3, 4, 3, 0]) };
    // token 0 recovers {1} of {0, 1}; token 1 recovers {3, 4} of {3, 4}
    expect(recall(pred, truth)).toBe(3 / 4);
    expect(recall(truth, truth)).toBe(1);
    expect(Array.from(selectionMask(truth))).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
    expect(() => recall({ ...pred, n: 6 }, truth)).toThrow(ShapeError);
    expect(keepCount(0.5, 7)).toBe(4);
    expect(keepCount(0.01, 7)).toBe(1);
    expect(() => keepCount(0, 7)).toThrow(ArgumentError);
  });
});

describe('SVD estimator (SparseLoRA)', () => {
  const d = 24;
  const hidden = 64;
  const tokens = 96;
  const rng = new Random(11);
  const gate = decayingWeight(rng, hidden, d, 0.85);
  const up = decayingWeight(rng, hidden, d, 0.85);
  const h = normals(rng, tokens * d);
  const k = keepCount(0.25, hidden);

  it('full-rank factors reproduce the dense product', () => {
    const f = lowRankFactors(gate, hidden, d, d);
    const a = lowRankProduct(f, h, tokens);
    const b = denseProduct(gate, hidden, d, h, tokens);
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 9));
  });

  it('the rank-r product error is the Eckart–Young bound: the energy of the dropped directions', () => {
    // with h the identity, the product is W itself, and ‖W - W_r‖_F² = Σ_{j>r} s_j² = ‖W‖_F² - ‖W_r‖_F²
    const eye = new Float32Array(d * d);
    for (let i = 0; i < d; i++) eye[i * d + i] = 1;
    const full = denseProduct(gate, hidden, d, eye, d);
    const total = full.reduce((s, v) => s + v * v, 0);
    for (const r of [2, 6, 12]) {
      const wr = lowRankProduct(lowRankFactors(gate, hidden, d, r), eye, d);
      const err = wr.reduce((s, v, i) => s + (v - full[i]!) ** 2, 0);
      const kept = wr.reduce((s, v) => s + v * v, 0);
      expect(err).toBeCloseTo(total - kept, 6);
    }
  });

  it('recall rises with rank and is exactly 1 at full rank (gated and plain MLPs)', () => {
    for (const gated of [true, false]) {
      const weights = { activation: 'silu' as const, up, ...(gated ? { gate } : {}), hidden, d };
      const truth = topRows(exactScores(weights, h, tokens), tokens, hidden, k);
      const recalls = [1, 4, 12, d].map((rank) => recall(topRows(estimateScores(svdEstimator({ ...weights, rank }), h, tokens), tokens, hidden, k), truth));
      for (let i = 1; i < recalls.length; i++) expect(recalls[i]!).toBeGreaterThan(recalls[i - 1]!);
      expect(recalls[recalls.length - 1]).toBe(1);
      expect(recalls[0]!).toBeLessThan(0.9);
    }
  });

  it('scores are |act(g)·u| (gated) and |act(u)| (plain), computed densely', () => {
    const t = 3;
    const x = h.subarray(0, t * d);
    const g = denseProduct(gate, hidden, d, x, t);
    const u = denseProduct(up, hidden, d, x, t);
    const silu = (v: number) => v / (1 + Math.exp(-v));
    const gated = exactScores({ activation: 'silu', up, gate, hidden, d }, x, t);
    const plain = exactScores({ activation: 'relu', up, hidden, d }, x, t);
    gated.forEach((v, i) => expect(v).toBeCloseTo(Math.abs(silu(g[i]!) * u[i]!), 12));
    plain.forEach((v, i) => expect(v).toBe(Math.max(0, u[i]!)));
    expect(activationFunction('relu2')(-1)).toBe(0);
    expect(activationFunction('relu2')(3)).toBe(9);
    expect(activationFunction('gelu')(1)).toBeCloseTo(0.8411919906, 8);
  });

  it('rejects bad ranks and shapes', () => {
    expect(() => lowRankFactors(gate, hidden, d, 0)).toThrow(ArgumentError);
    expect(() => lowRankFactors(gate, hidden, d, d + 1)).toThrow(ArgumentError);
    expect(() => lowRankFactors(gate, hidden, d + 1, 2)).toThrow(ShapeError);
    expect(() => lowRankProduct(lowRankFactors(gate, hidden, d, 2), h, tokens + 1)).toThrow(ShapeError);
  });
});

describe('linear probes (Polar Sparsity routers)', () => {
  it('recover an exact linear map (least-squares closed form)', () => {
    const rng = new Random(5);
    const [n, d, m] = [50, 6, 3];
    const x = normals(rng, n * d);
    const a = normals(rng, d * m);
    const c = [0.5, -1, 2];
    const y = new Float64Array(n * m);
    for (let t = 0; t < n; t++) for (let j = 0; j < m; j++) {
      let s = c[j]!;
      for (let i = 0; i < d; i++) s += x[t * d + i]! * a[i * m + j]!;
      y[t * m + j] = s;
    }
    const p = fitLinearProbe(x, y, n, d, m, 0);
    for (let i = 0; i < d; i++) for (let j = 0; j < m; j++) expect(p.weights[i * m + j]!).toBeCloseTo(a[i * m + j]!, 6);
    for (let j = 0; j < m; j++) expect(p.weights[d * m + j]!).toBeCloseTo(c[j]!, 6);
    probeOutputs(p, x, n).forEach((v, i) => expect(v).toBeCloseTo(y[i]!, 6));
  });

  it('head norms are the L2 norms of each head slice', () => {
    const x = Float32Array.from([3, 4, 0, 1, 1, 1, 2, 2]);
    expect(Array.from(headNorms(x, 2, 2))).toEqual([5, 1, Math.sqrt(2), Math.sqrt(8)]);
    expect(() => headNorms(x, 2, 3)).toThrow(ShapeError);
  });

  it('beat a random choice of heads and neurons on data with structure', () => {
    const rng = new Random(8);
    const [n, d, heads, hd] = [400, 16, 8, 4];
    const x = normals(rng, n * d);
    // each head's output grows with one direction of the input (plus noise): the structure a router can learn
    const dirs = normals(rng, heads * d);
    const out = new Float32Array(n * heads * hd);
    for (let t = 0; t < n; t++) for (let hh = 0; hh < heads; hh++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += x[t * d + i]! * dirs[hh * d + i]!;
      const scale = Math.exp(0.4 * s) * (1 + 0.2 * rng.normal());
      for (let i = 0; i < hd; i++) out[(t * heads + hh) * hd + i] = scale * (0.5 + 0.1 * rng.normal());
    }
    const target = headNorms(out, n, heads);
    const train = n / 2;
    const probe = fitLinearProbe(x.subarray(0, train * d), target.subarray(0, train * heads), train, d, heads);
    const k = 2;
    const held = n - train;
    const truth = topRows(target.subarray(train * heads), held, heads, k);
    const predicted = recall(topRows(probeOutputs(probe, x.subarray(train * d), held), held, heads, k), truth);
    const random = recall(topRows(normals(new Random(1), held * heads), held, heads, k), truth);
    expect(random).toBeLessThan(0.35); // k / heads = 0.25 in expectation
    expect(predicted).toBeGreaterThan(random + 0.3);
  });
});
