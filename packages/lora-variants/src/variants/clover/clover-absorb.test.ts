// CLOVER across Q/K and V/O: the per-head decompositions reproduce the products W_Q,hᵀ W_K,h and
// W_V,hᵀ W_O,hᵀ (float64 brute force); the coupled adapter's δ moves exactly those products' singular
// values (K and V untouched) and trains == merges through attachAdapters; pruning equals a brute-force
// SVD truncation of each head's product (the full product formed and decomposed on its own).
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, svd, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { CoupledGroup } from '../types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { randn } from '../helpers/sparse-testing.js';
import { absorbRows, cloverPrune, type Mat64 } from './absorb.js';
import { cloverVariant } from './variant.js';
import type { CLOVERConfig } from './config.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const D = 8;
const HEADS = 2;
const HD = 4;
const span = (offset: number, share = 1) => ({ offset, size: HD, share });
// separate projections (a llama-style block without RoPE) and a fused QKV (GPT's c_attn)
const SEPARATE: CoupledGroup = {
  name: 'attn',
  kind: 'attention',
  units: HEADS,
  members: [
    { name: 'q', axis: 'row', role: 'q', spans: [span(0)] },
    { name: 'k', axis: 'row', role: 'k', spans: [span(0)] },
    { name: 'v', axis: 'row', role: 'v', spans: [span(0)] },
    { name: 'o', axis: 'column', role: 'o', spans: [span(0)] },
  ],
};
const FUSED: CoupledGroup = {
  name: 'attn',
  kind: 'attention',
  units: HEADS,
  members: [
    { name: 'qkv', axis: 'row', role: 'qkv', spans: [span(0), span(D), span(2 * D)] },
    { name: 'o', axis: 'column', role: 'o', spans: [span(0)] },
  ],
};

function weights(seed: number): Record<string, Float32Tensor> {
  const rng = new Random(seed);
  return { q: randn(rng, [D, D]), k: randn(rng, [D, D]), v: randn(rng, [D, D]), o: randn(rng, [D, D]) };
}
const fuse = (w: Record<string, Float32Tensor>): Float32Tensor => tensor(Float32Array.from([...w.q!.data, ...w.k!.data, ...w.v!.data]), [3 * D, D]);

/** Head h's products by plain loops, float64: M_QK [D, D] = Σ_t Q[hHD+t, i] K[hHD+t, j]; M_VO [D, D] = Σ_t V[hHD+t, i] O[j, hHD+t]. */
function products(w: Record<string, { data: ArrayLike<number> }>, h: number): { qk: Float64Array; vo: Float64Array } {
  const qk = new Float64Array(D * D);
  const vo = new Float64Array(D * D);
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) for (let t = 0; t < HD; t++) {
    const r = h * HD + t;
    qk[i * D + j]! += w.q!.data[r * D + i]! * w.k!.data[r * D + j]!;
    vo[i * D + j]! += w.v!.data[r * D + i]! * w.o!.data[j * D + r]!;
  }
  return { qk, vo };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  const scale = Math.max(1, ...Array.from(b, Math.abs));
  for (let k = 0; k < a.length; k++) expect(Math.abs(a[k]! - b[k]!), `${what}[${k}]`).toBeLessThanOrEqual(tol * scale);
};
const recon = (u: Mat64, s: ArrayLike<number>, v: Mat64, r = s.length) => {
  const o = new Float64Array(u.r * v.r);
  for (let i = 0; i < u.r; i++) for (let j = 0; j < v.r; j++) for (let t = 0; t < r; t++) o[i * v.r + j]! += u.d[i * u.c + t]! * s[t]! * v.d[j * v.c + t]!;
  return o;
};

describe('clover absorb-decompose', () => {
  it('absorbRows: u diag(s) vᵀ = Aᵀ B with orthonormal u, v; the lifts move exactly those singular values', () => {
    const rng = new Random(3);
    for (const [hd, n, m] of [[4, 8, 8], [3, 7, 5], [4, 9, 8]] as const) {
      const a: Mat64 = { r: hd, c: n, d: Float64Array.from({ length: hd * n }, () => rng.normal()) };
      const b: Mat64 = { r: hd, c: m, d: Float64Array.from({ length: hd * m }, () => rng.normal()) };
      const f = absorbRows(a, b);
      const prod = new Float64Array(n * m);
      for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let t = 0; t < hd; t++) prod[i * m + j]! += a.d[t * n + i]! * b.d[t * m + j]!;
      close(recon(f.u, f.s, f.v), prod, 1e-10, 'u s vᵀ');
      for (const [x, len] of [[f.u, n], [f.v, m]] as const) for (let p = 0; p < hd; p++) for (let q = 0; q < hd; q++) {
        let dot = 0;
        for (let i = 0; i < len; i++) dot += x.d[i * hd + p]! * x.d[i * hd + q]!;
        expect(dot).toBeCloseTo(p === q ? 1 : 0, 10);
      }
      const delta = Float64Array.from({ length: hd }, () => rng.normal());
      // (A + liftB δ uᵀ)ᵀ B and Aᵀ (B + liftA δ vᵀ) both equal Aᵀ B + u δ vᵀ
      const want = recon(f.u, Array.from(f.s, (s, t) => s + delta[t]!), f.v);
      const a2 = Float64Array.from(a.d);
      const b2 = Float64Array.from(b.d);
      for (let t = 0; t < hd; t++) for (let i = 0; i < n; i++) for (let p = 0; p < hd; p++) a2[t * n + i]! += f.liftB.d[t * hd + p]! * delta[p]! * f.u.d[i * hd + p]!;
      for (let t = 0; t < hd; t++) for (let j = 0; j < m; j++) for (let p = 0; p < hd; p++) b2[t * m + j]! += f.liftA.d[t * hd + p]! * delta[p]! * f.v.d[j * hd + p]!;
      const pa = new Float64Array(n * m);
      const pb = new Float64Array(n * m);
      for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let t = 0; t < hd; t++) {
        pa[i * m + j]! += a2[t * n + i]! * b.d[t * m + j]!;
        pb[i * m + j]! += a.d[t * n + i]! * b2[t * m + j]!;
      }
      close(pa, want, 1e-9, 'via liftB');
      close(pb, want, 1e-9, 'via liftA');
    }
  });

  it('coupled adapter: before training the model is unchanged; with δ it moves each head\'s M_QK and M_VO by u diag(δ) vᵀ, K and V untouched', () => {
    for (const fused of [false, true]) {
      const w = weights(fused ? 5 : 4);
      const bases: Record<string, Float32Tensor> = fused ? { qkv: fuse(w), o: w.o! } : w;
      const states = cloverVariant.coupled!.init(fused ? FUSED : SEPARATE, bases, {}, new Random(1)) as Record<string, IndexedAdapterState<CLOVERConfig>>;
      for (const [n, s] of Object.entries(states)) expect(cloverVariant.delta(s, bases[n]!).data.every((x) => x === 0), n).toBe(true);
      if (!fused) {
        expect(states.k!.params.clover_delta!.shape).toEqual([0, HD]);
        expect(states.v!.params.clover_delta!.shape).toEqual([0, HD]);
      }
      // the decomposition each block carries: Q's blocks hold liftB and uᵀ of M_QK; check u diag(s) vᵀ = M_QK by setting δ = s
      const rng = new Random(8);
      for (const s of Object.values(states)) s.params.clover_delta!.data.forEach((_, t, a) => (a[t] = rng.normal()));
      const eff = Object.fromEntries(Object.entries(states).map(([n, s]) => [n, cloverVariant.merge(bases[n]!, s, { densify: true })]));
      const after: Record<string, { data: ArrayLike<number> }> = fused
        ? { q: { data: eff.qkv!.data.subarray(0, D * D) }, k: { data: eff.qkv!.data.subarray(D * D, 2 * D * D) }, v: { data: eff.qkv!.data.subarray(2 * D * D) }, o: eff.o! }
        : eff;
      close(Array.from(after.k!.data), Array.from(w.k!.data), 0, 'K');
      close(Array.from(after.v!.data), Array.from(w.v!.data), 0, 'V');
      const qBlocks = fused ? states.qkv! : states.q!;
      for (let h = 0; h < HEADS; h++) {
        const before = products(w, h);
        const now = products(after, h);
        // brute-force SVD of the original product: M + u diag(δ) vᵀ has the same singular vectors, so
        // (now − before) must be rank ≤ HD and lie in M's row and column spaces
        for (const [pair, x, y] of [['qk', before.qk, now.qk], ['vo', before.vo, now.vo]] as const) {
          const diff = y.map((v, k) => v - x[k]!);
          const fm = svd(tensor(Float64Array.from(x), [D, D]));
          const fd = svd(tensor(Float64Array.from(diff), [D, D]));
          expect((fd.s.data as Float64Array)[HD]!, `${pair} head ${h}: rank`).toBeLessThan(1e-9);
          const um = fm.u.data as Float64Array;
          // the change's columns lie in span(u_M[:, :HD]): projecting them out leaves nothing
          for (let j = 0; j < D; j++) {
            const col = Array.from({ length: D }, (_, i) => diff[i * D + j]!);
            const proj = col.slice();
            for (let t = 0; t < HD; t++) {
              let dot = 0;
              for (let i = 0; i < D; i++) dot += um[i * D + t]! * col[i]!;
              for (let i = 0; i < D; i++) proj[i]! -= dot * um[i * D + t]!;
            }
            close(proj, new Array(D).fill(0), 1e-5, `${pair} head ${h} column ${j}`);
          }
        }
      }
      // setting δ = −s on Q's blocks removes M_QK exactly: the blocks' uᵀ rows carry M_QK's singular vectors
      for (let h = 0; h < HEADS; h++) {
        const f = absorbRows(
          { r: HD, c: D, d: Float64Array.from(w.q!.data.subarray(h * HD * D, (h + 1) * HD * D)) },
          { r: HD, c: D, d: Float64Array.from(w.k!.data.subarray(h * HD * D, (h + 1) * HD * D)) },
        );
        for (let t = 0; t < HD; t++) qBlocks.params.clover_delta!.data[h * HD + t] = -f.s[t]!;
      }
      const zeroed = cloverVariant.merge(fused ? bases.qkv! : bases.q!, qBlocks, { densify: true });
      const qz = { q: { data: fused ? zeroed.data.subarray(0, D * D) : zeroed.data }, k: w.k!, v: w.v!, o: w.o! };
      for (let h = 0; h < HEADS; h++) close(products(qz, h).qk, new Array(D * D).fill(0), 1e-5, `M_QK of head ${h} after δ = −s`);
    }
  });

  it('a rotary group keeps Q and K per weight (own SVD per head), and absorbs only V with O', () => {
    const w = weights(6);
    const states = cloverVariant.coupled!.init({ ...SEPARATE, rotary: true }, w, {}, new Random(0)) as Record<string, IndexedAdapterState<CLOVERConfig>>;
    expect(states.q!.params.clover_delta!.shape).toEqual([HEADS, HD]);
    expect(states.k!.params.clover_delta!.shape).toEqual([HEADS, HD]);
    expect(states.v!.params.clover_delta!.shape).toEqual([0, HD]);
    expect(Array.from(states.o!.indices.axis!)).toEqual([1]);
    // a per-weight head block: δ = σ of Q's own head SVD doubles that head's rows
    const s = states.q!;
    const u = s.params.clover_U!.data;
    const v = s.params.clover_V!.data;
    for (let h = 0; h < HEADS; h++) for (let t = 0; t < HD; t++) {
      let sig = 0;
      for (let i = 0; i < HD; i++) for (let j = 0; j < D; j++) sig += u[(h * HD + i) * HD + t]! * w.q!.data[(h * HD + i) * D + j]! * v[(h * HD + t) * D + j]!;
      s.params.clover_delta!.data[h * HD + t] = sig;
    }
    close(cloverVariant.delta(s, w.q!).data, w.q!.data, 1e-5, 'ΔQ = Q');
  });

  it('trained through attachAdapters with groups on a 2:4 base: train == merge (1e-5)', () => {
    const w = weights(9);
    const vars = Object.fromEntries(Object.entries(w).map(([n, t]) => {
      const d = Float32Array.from(t.data, (x, q) => (q % 4 < 2 ? x : 0));
      return [n, tf.variable(tf.tensor(d, t.shape), false)];
    }));
    const model = attachAdapters(vars, { targets: ['q', 'k', 'v', 'o'], variant: 'clover', seed: 2, groups: [SEPARATE] });
    expect(model.trainableReport().trainable).toBe(2 * HEADS * HD);
    const x = tf.randomNormal([6, D], 0, 1, 'float32', 3) as tf.Tensor2D;
    const lin = (h: tf.Tensor2D, n: string) => tf.matMul(h, model.effectiveWeight(n), false, true) as tf.Tensor2D;
    const forward = () => tf.tidy(() => lin(tf.mul(tf.mul(lin(x, 'q'), lin(x, 'k')), lin(x, 'v')) as tf.Tensor2D, 'o'));
    const target = tf.randomNormal([6, D], 0, 1, 'float32', 4);
    const before = forward().dataSync();
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 5; s++) opt.minimize(() => tf.losses.meanSquaredError(target, forward()) as tf.Scalar, false, model.trainableVariables());
    const trained = forward().dataSync();
    expect(Math.max(...trained.map((v, k) => Math.abs(v - before[k]!)))).toBeGreaterThan(1e-3);
    model.mergeAndUnload();
    const merged = forward().dataSync();
    expect(Math.max(...merged.map((v, k) => Math.abs(v - trained[k]!)))).toBeLessThan(1e-5);
    for (const [n, t] of Object.entries(vars)) t.dataSync().forEach((x, q) => q % 4 >= 2 && expect(x, `${n}[${q}]`).toBe(0));
    model.dispose();
    opt.dispose();
  });
});

describe('cloverPrune', () => {
  /** Brute force: the product formed in float64, decomposed by the library's Jacobi SVD, truncated to r. */
  function truncated(m: Float64Array, r: number): { m: Float64Array; s: Float64Array } {
    const f = svd(tensor(Float64Array.from(m), [D, D]));
    const u = f.u.data as Float64Array;
    const s = f.s.data as Float64Array;
    const v = f.v.data as Float64Array;
    const o = new Float64Array(D * D);
    for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) for (let t = 0; t < r; t++) o[i * D + j]! += u[i * D + t]! * s[t]! * v[j * D + t]!;
    return { m: o, s };
  }

  it('rank target: each head keeps its r largest singular values of M_QK and M_VO, as a brute-force truncation', () => {
    for (const fused of [false, true]) {
      const w = weights(11);
      const bases: Record<string, Float32Tensor> = fused ? { qkv: fuse(w), o: w.o! } : w;
      const res = cloverPrune(fused ? FUSED : SEPARATE, bases, { rank: 2 });
      expect(res.kept).toEqual({ qk: [2, 2], vo: [2, 2] });
      const nw = res.weights;
      const after = fused ? { q: { data: nw.qkv!.data.subarray(0, D * D) }, k: { data: nw.qkv!.data.subarray(D * D, 2 * D * D) }, v: { data: nw.qkv!.data.subarray(2 * D * D) }, o: nw.o! } : nw;
      for (let h = 0; h < HEADS; h++) {
        const p0 = products(w, h);
        const p1 = products(after, h);
        close(p1.qk, truncated(p0.qk, 2).m, 1e-5, `M_QK head ${h}`);
        close(p1.vo, truncated(p0.vo, 2).m, 1e-5, `M_VO head ${h}`);
        // the pruned channels are whole zero rows of Q, K, V and columns of O
        for (let t = 2; t < HD; t++) for (let j = 0; j < D; j++) {
          for (const n of ['q', 'k', 'v'] as const) expect(after[n]!.data[(h * HD + t) * D + j], `${n} row ${h * HD + t}`).toBe(0);
          expect(after.o!.data[j * D + h * HD + t]).toBe(0);
        }
      }
    }
  });

  it('energy target: the fewest singular values reaching the energy (brute force), biases absorbed as an input column', () => {
    const w = weights(12);
    const rng = new Random(1);
    const biases = { q: randn(rng, [D]), k: randn(rng, [D]), v: randn(rng, [D]) };
    const res = cloverPrune(SEPARATE, w, { energy: 0.8 }, biases);
    for (let h = 0; h < HEADS; h++) {
      // the augmented products [W | b]ᵀ [W | b] (QK) and [W | b]ᵀ Oᵀ (VO), (D + 1) rows
      const aug = (t: Record<string, { data: ArrayLike<number> }>, bs: Record<string, { data: ArrayLike<number> }>, pair: 'qk' | 'vo') => {
        const rows = D + 1;
        const cols = pair === 'qk' ? D + 1 : D;
        const m = new Float64Array(rows * cols);
        const [a, b] = pair === 'qk' ? ['q', 'k'] : ['v', 'o'];
        for (let t2 = 0; t2 < HD; t2++) {
          const r = h * HD + t2;
          const ar = (i: number) => (i < D ? t[a]!.data[r * D + i]! : bs[a]!.data[r]!);
          const br = (j: number) => (pair === 'qk' ? (j < D ? t[b]!.data[r * D + j]! : bs[b]!.data[r]!) : t[b]!.data[j * D + r]!);
          for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) m[i * cols + j]! += ar(i) * br(j);
        }
        return { m, rows, cols };
      };
      for (const pair of ['qk', 'vo'] as const) {
        const x = aug(w, biases, pair);
        const f = svd(tensor(Float64Array.from(x.m), [x.rows, x.cols]));
        const s = f.s.data as Float64Array;
        const total = s.reduce((acc, v) => acc + v * v, 0);
        let r = 0;
        for (let acc = 0; acc < 0.8 * total * (1 - 1e-12); r++) acc += s[r]! * s[r]!;
        expect(res.kept[pair]![h], `${pair} head ${h}`).toBe(r);
        const k = f.s.data.length;
        const want = new Float64Array(x.rows * x.cols);
        const u = f.u.data as Float64Array;
        const v = f.v.data as Float64Array;
        for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) for (let t = 0; t < r; t++) want[i * x.cols + j]! += u[i * k + t]! * s[t]! * v[j * k + t]!;
        const nb = { q: res.biases.q!, k: res.biases.k!, v: res.biases.v! };
        close(aug({ ...w, ...res.weights }, nb, pair).m, want, 1e-5, `${pair} head ${h}`);
      }
    }
  });

  it('skips what it cannot absorb and names why; refuses a bad target', () => {
    const w = weights(13);
    const rotary = cloverPrune({ ...SEPARATE, rotary: true }, w, { rank: 1 });
    expect(rotary.skipped.qk).toMatch(/RoPE/);
    expect(rotary.kept.vo).toEqual([1, 1]);
    expect(Object.keys(rotary.weights).sort()).toEqual(['o', 'v']);
    const gqa: CoupledGroup = { ...SEPARATE, members: SEPARATE.members.map((m) => (m.role === 'k' || m.role === 'v' ? { ...m, spans: [span(0, 2)] } : m)) };
    expect(cloverPrune(gqa, { ...w, k: randn(new Random(1), [HD, D]), v: randn(new Random(2), [HD, D]) }, { rank: 1 }).skipped).toEqual({ qk: expect.stringMatching(/grouped-query/), vo: expect.stringMatching(/grouped-query/) });
    expect(() => cloverPrune(SEPARATE, w, {})).toThrow(/exactly one of rank and energy/);
    expect(() => cloverPrune(SEPARATE, w, { energy: 1.5 })).toThrow(/energy must be in \(0, 1\]/);
  });
});
