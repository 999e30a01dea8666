// CLOVER's Absorb-Decompose across the matrices of one attention (Meng et al., "CLOVER: Constrained
// Learning with Orthonormal Vectors for Eliminating Redundancy"). Per head h, with W_Q,h, W_K,h, W_V,h
// [hd, in] the head's rows of Q, K, V and W_O,h [out, hd] its columns of O (y = x Wᵀ):
//   scores:  x W_Q,hᵀ W_K,h xᵀ, so M_QK = W_Q,hᵀ W_K,h [in, in] (rank ≤ hd),
//   output:  P (x W_V,hᵀ) W_O,hᵀ, so M_VO = W_V,hᵀ W_O,hᵀ [in, out] (rank ≤ hd).
// Each product is decomposed M = U diag(s) Vᵀ (hd triplets; U, V orthonormal) without forming it: from
// the thin SVDs of the two factors, M = U_a (S_a V_aᵀ V_b S_b) U_bᵀ, and the SVD of that hd × hd core.
// The singular vectors are the directions CLOVER trains (the adapter, ./variant.ts) and prunes (`cloverPrune`).
// A pair is absorbed only where its product is the model's: not Q/K under a rotary position embedding
// (group.rotary), and not where K/V heads are shared by several query heads (grouped-query attention).
import { ArgumentError, ShapeError, svd, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import type { CoupledGroup, CoupledMember, CoupledSpan } from '../types.js';
import { floatMatrix } from '../helpers/common.js';

/** A float64 matrix, row-major. */
export interface Mat64 {
  r: number;
  c: number;
  d: Float64Array;
}

const mat = (r: number, c: number, d = new Float64Array(r * c)): Mat64 => ({ r, c, d });

export function mul(a: Mat64, b: Mat64): Mat64 {
  if (a.c !== b.r) throw new ShapeError(`clover: inner dimensions ${a.c} and ${b.r} differ`);
  const o = mat(a.r, b.c);
  for (let i = 0; i < a.r; i++) for (let t = 0; t < a.c; t++) {
    const x = a.d[i * a.c + t]!;
    if (x === 0) continue;
    for (let j = 0; j < b.c; j++) o.d[i * b.c + j]! += x * b.d[t * b.c + j]!;
  }
  return o;
}

export function transpose(a: Mat64): Mat64 {
  const o = mat(a.c, a.r);
  for (let i = 0; i < a.r; i++) for (let j = 0; j < a.c; j++) o.d[j * a.r + i] = a.d[i * a.c + j]!;
  return o;
}

/** Thin SVD a = u diag(s) vᵀ in float64 (k = min(r, c), s non-increasing). */
export function svd64(a: Mat64): { u: Mat64; s: Float64Array; v: Mat64 } {
  const f = svd(tensor(a.d, [a.r, a.c]));
  const k = Math.min(a.r, a.c);
  return { u: mat(a.r, k, Float64Array.from(f.u.data as Float64Array)), s: Float64Array.from(f.s.data as Float64Array), v: mat(a.c, k, Float64Array.from(f.v.data as Float64Array)) };
}

/** diag(x) applied to a's columns (scale = true) or to their inverse, zero where x is zero. */
function scaleCols(a: Mat64, x: Float64Array, inverse = false): Mat64 {
  const o = mat(a.r, a.c, Float64Array.from(a.d));
  const tol = Math.max(...x, 0) * 1e-12;
  for (let i = 0; i < a.r; i++) for (let j = 0; j < a.c; j++) o.d[i * a.c + j]! *= inverse ? (x[j]! > tol ? 1 / x[j]! : 0) : x[j]!;
  return o;
}

/** One head's decomposition of an absorbed product M = Aᵀ B = u diag(s) vᵀ, with the factors that move s. */
export interface HeadDecomposition {
  /** [rows of M, hd], orthonormal columns. */
  u: Mat64;
  s: Float64Array;
  /** [cols of M, hd], orthonormal columns. */
  v: Mat64;
  /** [hd, hd]: ΔB = liftA diag(δ) vᵀ gives Aᵀ (B + ΔB) = M + u diag(δ) vᵀ (the update on the second matrix). */
  liftA: Mat64;
  /** [hd, hd]: ΔA = liftB diag(δ) uᵀ gives (A + ΔA)ᵀ B = M + u diag(δ) vᵀ (the update on the first matrix). */
  liftB: Mat64;
}

/**
 * M = Aᵀ B for A [hd, n], B [hd, m] (one head's rows of two matrices): the thin SVDs Aᵀ = U_a S_a V_aᵀ and
 * Bᵀ = U_b S_b V_bᵀ give M = U_a C U_bᵀ with C = S_a V_aᵀ V_b S_b [hd, hd], and C = u_c s v_cᵀ gives
 * u = U_a u_c, v = U_b v_c; liftA = V_a S_a⁻¹ u_c, liftB = V_b S_b⁻¹ v_c (pseudo-inverses where rank-deficient).
 */
export function absorbRows(a: Mat64, b: Mat64): HeadDecomposition {
  if (a.r !== b.r) throw new ShapeError(`clover: the two heads have ${a.r} and ${b.r} rows`);
  const fa = svd64(transpose(a));
  const fb = svd64(transpose(b));
  const c = mul(transpose(scaleCols(fa.v, fa.s)), scaleCols(fb.v, fb.s));
  const fc = svd64(c);
  return { u: mul(fa.u, fc.u), s: fc.s, v: mul(fb.u, fc.v), liftA: mul(scaleCols(fa.v, fa.s, true), fc.u), liftB: mul(scaleCols(fb.v, fb.s, true), fc.v) };
}

/** Rows [start, start + n) of w [out, in] as float64, with the bias entries as a last column when given. */
export function rowsOf(w: Float32Tensor, start: number, n: number, bias?: Float32Tensor): Mat64 {
  const inp = w.shape[1]!;
  const c = inp + (bias ? 1 : 0);
  const o = mat(n, c);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inp; j++) o.d[i * c + j] = w.data[(start + i) * inp + j]!;
    if (bias) o.d[i * c + inp] = bias.data[start + i]!;
  }
  return o;
}

/** Columns [start, start + n) of w [out, in], transposed: [n, out]. */
export function colsOfT(w: Float32Tensor, start: number, n: number): Mat64 {
  const [out, inp] = w.shape as [number, number];
  const o = mat(n, out);
  for (let t = 0; t < n; t++) for (let i = 0; i < out; i++) o.d[t * out + i] = w.data[i * inp + start + t]!;
  return o;
}

/** Where one head sits in a group: the member weight and the first row (Q, K, V) or column (O) of its channels. */
export interface HeadSlot {
  member: string;
  start: number;
}

/** The attention's Q, K, V (rows) and O (columns) slots per head, from the members' roles (a fused 'qkv' holds Q, K and V as its three spans). */
export interface AttentionLayout {
  hd: number;
  heads: number;
  q?: HeadSlot[];
  k?: HeadSlot[];
  v?: HeadSlot[];
  o?: HeadSlot[];
  /** Whether K / V heads are shared by several query heads. */
  sharedKV: boolean;
}

const slots = (m: CoupledMember, span: CoupledSpan, heads: number): HeadSlot[] =>
  Array.from({ length: heads }, (_, h) => ({ member: m.name, start: span.offset + Math.floor(h / span.share) * span.size }));

export function attentionLayout(group: CoupledGroup, where: string): AttentionLayout {
  if (group.kind !== 'attention') throw new ArgumentError(`${where}: group '${group.name}' is not an attention`);
  const out: AttentionLayout = { hd: 0, heads: group.units, sharedKV: false };
  for (const m of group.members) {
    const parts: [keyof AttentionLayout & ('q' | 'k' | 'v' | 'o'), CoupledSpan][] =
      m.role === 'qkv' ? (m.spans.length === 3 ? [['q', m.spans[0]!], ['k', m.spans[1]!], ['v', m.spans[2]!]] : []) : m.role === 'q' || m.role === 'k' || m.role === 'v' || m.role === 'o' ? [[m.role, m.spans[0]!]] : [];
    if (parts.length === 0) throw new ArgumentError(`${where}: group '${group.name}': member '${m.name}' has role ${JSON.stringify(m.role)} (q, k, v, qkv with three spans, or o)`);
    for (const [p, span] of parts) {
      if (out.hd !== 0 && span.size !== out.hd) throw new ShapeError(`${where}: group '${group.name}': heads of ${span.size} and ${out.hd} channels`);
      out.hd = span.size;
      if (span.share !== 1) out.sharedKV = true;
      out[p] = slots(m, span, group.units);
    }
  }
  return out;
}

/** Why a pair cannot be absorbed in this group, or undefined when it can. */
export function absorbBlocker(layout: AttentionLayout, group: CoupledGroup, pair: 'qk' | 'vo'): string | undefined {
  const [x, y] = pair === 'qk' ? (['q', 'k'] as const) : (['v', 'o'] as const);
  if (layout[x] === undefined || layout[y] === undefined) return `the group has no ${x.toUpperCase()} or no ${y.toUpperCase()} weight`;
  if (layout.sharedKV) return 'its K/V heads are shared by several query heads (grouped-query attention)';
  if (pair === 'qk' && group.rotary) return 'Q and K are rotated by position (RoPE) before their product';
  return undefined;
}

/** Per head, the decomposition of M_QK = W_Q,hᵀ W_K,h or M_VO = W_V,hᵀ W_O,hᵀ (biases, when given, as an extra input column of Q/K or V). */
export function absorbHeads(layout: AttentionLayout, pair: 'qk' | 'vo', bases: Readonly<Record<string, Float32Tensor>>, biases?: Readonly<Record<string, Float32Tensor | undefined>>): HeadDecomposition[] {
  const { hd, heads } = layout;
  return Array.from({ length: heads }, (_, h) => {
    if (pair === 'qk') {
      const q = layout.q![h]!;
      const k = layout.k![h]!;
      return absorbRows(rowsOf(bases[q.member]!, q.start, hd, biases?.[q.member]), rowsOf(bases[k.member]!, k.start, hd, biases?.[k.member]));
    }
    const v = layout.v![h]!;
    const o = layout.o![h]!;
    return absorbRows(rowsOf(bases[v.member]!, v.start, hd, biases?.[v.member]), colsOfT(bases[o.member]!, o.start, hd));
  });
}

/** How many singular values of s to keep: `rank`, or the fewest whose squares reach `energy` of the total. */
export function keptRank(s: Float64Array, target: { rank?: number; energy?: number }): number {
  if (target.rank !== undefined) return Math.min(s.length, target.rank);
  const total = s.reduce((a, x) => a + x * x, 0);
  if (total === 0) return 0;
  let acc = 0;
  for (let t = 0; t < s.length; t++) {
    acc += s[t]! * s[t]!;
    if (acc >= target.energy! * total * (1 - 1e-12)) return t + 1;
  }
  return s.length;
}

export interface CloverPruneResult {
  /** New weights by name (only the members of absorbed pairs). */
  weights: Record<string, Float32Tensor>;
  /** New biases of those members, when biases were given. */
  biases: Record<string, Float32Tensor>;
  /** Singular values kept per head, per absorbed pair. */
  kept: { qk?: number[]; vo?: number[] };
  /** Why a pair was left as it was. */
  skipped: { qk?: string; vo?: string };
}

/**
 * CLOVER's pruning: per head, the absorbed products truncated to their largest singular values (`rank`
 * per head, or the fewest reaching `energy` of Σ s²), written back as orthogonal factors: Q_h (or V_h)
 * row t = √s_t u_tᵀ and K_h row t (O_h column t) = √s_t v_t for t below the kept rank, zero beyond. So
 * W_Q,h'ᵀ W_K,h' and W_V,h'ᵀ W_O,h'ᵀ are the products' best rank-r approximations, and each head keeps r
 * of its hd channels (the others are zero rows / columns). Biases of Q, K and V are absorbed with their
 * weights (an extra input column), so a layer with biases computes the truncated bilinear forms too.
 */
export function cloverPrune(group: CoupledGroup, bases: Readonly<Record<string, Tensor>>, target: { rank?: number; energy?: number }, biases?: Readonly<Record<string, Tensor | undefined>>): CloverPruneResult {
  const where = 'cloverPrune';
  if ((target.rank === undefined) === (target.energy === undefined)) throw new ArgumentError(`${where}: give exactly one of rank and energy`);
  if (target.rank !== undefined && (!Number.isInteger(target.rank) || target.rank < 0)) throw new ArgumentError(`${where}: rank must be a non-negative integer, got ${String(target.rank)}`);
  if (target.energy !== undefined && !(target.energy > 0 && target.energy <= 1)) throw new ArgumentError(`${where}: energy must be in (0, 1], got ${String(target.energy)}`);
  const layout = attentionLayout(group, where);
  const w = Object.fromEntries(group.members.map((m) => {
    if (bases[m.name] === undefined) throw new ArgumentError(`${where}: group '${group.name}': no weight '${m.name}'`);
    return [m.name, floatMatrix(bases[m.name]!, where, m.name)];
  }));
  const b: Record<string, Float32Tensor | undefined> = Object.fromEntries(group.members.map((m) => {
    const t = biases?.[m.name];
    if (t === undefined) return [m.name, undefined];
    const v = t as Float32Tensor;
    if (v.dtype !== 'float32' || v.shape.length !== 1 || v.shape[0] !== w[m.name]!.shape[0]) throw new ShapeError(`${where}: bias of '${m.name}' must be float32 [${w[m.name]!.shape[0]}]`);
    return [m.name, floatMatrix(tensor(Float32Array.from(v.data as Float32Array), [1, v.shape[0]!]), where, `bias of ${m.name}`)];
  }));
  const bias1d = (n: string) => (b[n] ? tensor(b[n]!.data, [b[n]!.shape[1]!]) as Float32Tensor : undefined);
  const biasVec = Object.fromEntries(group.members.map((m) => [m.name, bias1d(m.name)]));
  const result: CloverPruneResult = { weights: {}, biases: {}, kept: {}, skipped: {} };
  const { hd } = layout;
  const writeRows = (name: string, start: number, f: Mat64, r: number, s: Float64Array) => {
    const t = result.weights[name] ?? (result.weights[name] = w[name]!);
    const inp = t.shape[1]!;
    const bias = biasVec[name] ? (result.biases[name] ??= biasVec[name]!) : undefined;
    for (let i = 0; i < hd; i++) {
      const g = i < r ? Math.sqrt(s[i]!) : 0;
      for (let j = 0; j < inp; j++) t.data[(start + i) * inp + j] = i < r ? g * f.d[j * f.c + i]! : 0;
      if (bias) bias.data[start + i] = i < r ? g * f.d[inp * f.c + i]! : 0;
    }
  };
  const writeCols = (name: string, start: number, f: Mat64, r: number, s: Float64Array) => {
    const t = result.weights[name] ?? (result.weights[name] = w[name]!);
    const [out, inp] = t.shape as [number, number];
    for (let i = 0; i < hd; i++) {
      const g = i < r ? Math.sqrt(s[i]!) : 0;
      for (let row = 0; row < out; row++) t.data[row * inp + start + i] = i < r ? g * f.d[row * f.c + i]! : 0;
    }
  };
  for (const pair of ['qk', 'vo'] as const) {
    const blocker = absorbBlocker(layout, group, pair);
    if (blocker !== undefined) {
      result.skipped[pair] = blocker;
      continue;
    }
    // decompose every head from the original weights before writing any
    const heads = absorbHeads(layout, pair, w, biasVec);
    const kept: number[] = [];
    heads.forEach((f, h) => {
      const r = keptRank(f.s, target);
      kept.push(r);
      if (pair === 'qk') {
        writeRows(layout.q![h]!.member, layout.q![h]!.start, f.u, r, f.s);
        writeRows(layout.k![h]!.member, layout.k![h]!.start, f.v, r, f.s);
      } else {
        writeRows(layout.v![h]!.member, layout.v![h]!.start, f.u, r, f.s);
        writeCols(layout.o![h]!.member, layout.o![h]!.start, f.v, r, f.s);
      }
    });
    result.kept[pair] = kept;
  }
  return result;
}
