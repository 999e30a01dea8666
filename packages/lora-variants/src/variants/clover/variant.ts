// CLOVER (Meng et al., "CLOVER: Constrained Learning with Orthonormal Vectors for Eliminating
// Redundancy"): learning is kept inside the model's own latent space by orthonormalizing its attention
// and tuning only singular values. With the model's coupled groups (`coupled`), per head the products
// M_QK = W_Q,hᵀ W_K,h and M_VO = W_V,hᵀ W_O,hᵀ are decomposed M = u diag(s) vᵀ (./absorb.ts) and δ,
// zero at init, moves their singular values: M_QK + u diag(δ) vᵀ through an update of Q's head rows,
// ΔW_Q,h = liftB diag(δ) uᵀ (K unchanged), and M_VO + u diag(δ) vᵀ through O's head columns,
// ΔW_O,h = v diag(δ) liftAᵀ (V unchanged). The trainable directions are the products' singular vectors.
// A pair that cannot be absorbed (Q/K under RoPE, K/V shared under grouped-query attention) is
// orthonormalized per weight instead, each head's block W_h = U_h diag(σ_h) V_hᵀ by its own SVD, and δ
// moves σ_h; so is a weight in no group (`heads` row blocks), e.g. an MLP projection.
// State: per block b, ΔW's block = clover_U[b] diag(clover_delta[b]) clover_V[b] placed at rows
// (indices.axis [0]) or columns ([1]) from indices.starts[b]; clover_U and clover_V are frozen.
// differs: the paper rewrites Q, K, V, O as the orthonormal factors (Q absorbing diag(s)) and trains s
// in place; here the base stays and ΔW is added, which computes the same products at every δ (the K and
// V weights of absorbed pairs then train nothing: their state has no blocks); biases are not absorbed
// into the adapter's products (the pruning, `cloverPrune`, absorbs them).
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import type { AdapterState, CoupledGroup } from '../types.js';
import { floatMatrix, parseWith } from '../helpers/common.js';
import { makeSparseVariant, matmulT, zerosMatrix, type IndexedAdapterState, type ScoredAdapterVariant } from '../helpers/sparse.js';
import { absorbBlocker, absorbHeads, attentionLayout, colsOfT, rowsOf, svd64, transpose, type Mat64 } from './absorb.js';
import { cloverConfigSchema, type CLOVERConfig } from './config.js';

export const CLOVER_FROZEN = ['clover_U', 'clover_V'] as const;

/** Blocks of one state: each U [m, k] diag(δ) V [k, n] at a start on the axis. */
interface Block {
  start: number;
  u: Mat64;
  v: Mat64;
}

function headDims(shape: readonly [number, number] | readonly number[], heads: number, where: string): { d: number; k: number } {
  const [out, inp] = [shape[0]!, shape[1]!];
  if (out % heads !== 0) throw new ArgumentError(`${where}: heads = ${heads} does not divide out = ${out}`);
  const d = out / heads;
  return { d, k: Math.min(d, inp) };
}

/** A state from blocks that share m, k, n (an empty list: a weight CLOVER leaves as it is). */
function blockState(c: CLOVERConfig, shape: [number, number], axis: 'row' | 'column', blocks: Block[], dims: { m: number; k: number; n: number }): IndexedAdapterState<CLOVERConfig> {
  const { m, k, n } = dims;
  const B = blocks.length;
  const u = new Float32Array(B * m * k);
  const v = new Float32Array(B * k * n);
  blocks.forEach((b, i) => {
    if (b.u.r !== m || b.u.c !== k || b.v.r !== k || b.v.c !== n) throw new ShapeError(`clover: block ${i} is [${b.u.r}, ${b.u.c}] · [${b.v.r}, ${b.v.c}], not [${m}, ${k}] · [${k}, ${n}]`);
    u.set(b.u.d, i * m * k);
    v.set(b.v.d, i * k * n);
  });
  return {
    variant: 'clover',
    shape,
    config: c,
    params: { clover_U: tensor(u, [B, m, k]), clover_V: tensor(v, [B, k, n]), clover_delta: tensor(new Float32Array(B * k), [B, k]) },
    indices: { axis: Int32Array.of(axis === 'row' ? 0 : 1), starts: Int32Array.from(blocks, (b) => b.start) },
  };
}

/** Per-weight blocks: rows [start, start + m) of w each decomposed by its own SVD (U [m, k], Vᵀ [k, in]). */
function ownRowBlocks(w: Float32Tensor, starts: number[], m: number): Block[] {
  return starts.map((start) => {
    const f = svd64(rowsOf(w, start, m));
    return { start, u: f.u, v: transpose(f.v) };
  });
}

/** Per-weight blocks on columns [start, start + n) of w (each [out, n] = U diag(σ) Vᵀ by its own SVD). */
function ownColumnBlocks(w: Float32Tensor, starts: number[], n: number): Block[] {
  return starts.map((start) => {
    const f = svd64(transpose(colsOfT(w, start, n)));
    return { start, u: f.u, v: transpose(f.v) };
  });
}

/** The block layout of a state, checked against its params. */
export function cloverBlocks(state: AdapterState<CLOVERConfig>): { axis: 'row' | 'column'; starts: Int32Array; B: number; m: number; k: number; n: number } {
  const st = state as IndexedAdapterState<CLOVERConfig>;
  const [B, m, k] = st.params.clover_U!.shape as [number, number, number];
  const n = st.params.clover_V!.shape[2]!;
  const a = st.indices.axis;
  const starts = st.indices.starts;
  if (a === undefined || a.length !== 1 || (a[0] !== 0 && a[0] !== 1) || starts === undefined || starts.length !== B) throw new ShapeError(`clover: indices must hold axis [0 | 1] and ${B} block starts`);
  const axis = a[0] === 0 ? 'row' : 'column';
  const [out, inp] = st.shape;
  for (const s0 of starts) {
    if (axis === 'row' ? n !== inp || s0 < 0 || s0 + m > out : m !== out || s0 < 0 || s0 + n > inp) throw new ShapeError(`clover: a [${m}, ${n}] block at ${axis} ${s0} does not fit the weight [${out}, ${inp}]`);
  }
  return { axis, starts, B, m, k, n };
}

const perWeight = makeSparseVariant<CLOVERConfig>({
  name: 'clover',
  describe:
    "CLOVER: per head, Q with K and V with O absorbed (W_Qᵀ W_K, W_Vᵀ W_Oᵀ) and SVD-orthonormalized; only the products' singular values train (per-weight SVD where a pair cannot be absorbed). differs: ΔW is added to the kept base instead of rewriting Q/K/V/O as the factors",
  paper: 'Meng et al. 2024, CLOVER: Constrained Learning with Orthonormal Vectors for Eliminating Redundancy',
  differs: [
    'the paper rewrites Q, K, V, O as the orthonormal factors and trains s in place; here the base stays and ΔW is added, which computes the same products at every δ (the K and V weights of absorbed pairs train nothing)',
    'biases are not absorbed into the adapter\'s products (cloverPrune absorbs them)',
    'where RoPE or shared K/V heads forbid absorbing a pair, each head of each weight is orthonormalized by its own SVD',
  ],
  schema: cloverConfigSchema,
  create(base, c) {
    const [, inp] = base.shape as [number, number];
    const { d, k } = headDims(base.shape, c.heads, 'clover.init');
    const s = blockState(c, [base.shape[0]!, inp], 'row', ownRowBlocks(base, Array.from({ length: c.heads }, (_, h) => h * d), d), { m: d, k, n: inp });
    return { params: s.params, indices: s.indices };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const { axis, starts, B, m, k, n } = cloverBlocks(state);
    const u = state.params.clover_U!.data;
    const v = state.params.clover_V!.data;
    const dl = state.params.clover_delta!.data;
    const dw = zerosMatrix(out, inp);
    for (let b = 0; b < B; b++) for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) {
      const a = u[(b * m + i) * k + t]! * dl[b * k + t]!;
      if (a === 0) continue;
      for (let j = 0; j < n; j++) {
        const q = axis === 'row' ? (starts[b]! + i) * inp + j : i * inp + starts[b]! + j;
        dw.data[q] = dw.data[q]! + a * v[(b * k + t) * n + j]!;
      }
    }
    return dw;
  },
  addForward(x, state, y) {
    const p = matmulT(x, this.delta(state, zerosMatrix(state.shape[0], state.shape[1])));
    for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + p.data[q]!;
  },
  count: (shape, c) => c.heads * headDims(shape, c.heads, 'clover.trainableCount').k,
});

/**
 * The coupled init of one attention group: absorbed pairs train the singular values of their products
 * (Q's rows for QK, O's columns for VO; K and V get empty states), pairs that cannot be absorbed train
 * each head's own singular values on both weights. MLP groups: each member per weight (`heads` row blocks).
 */
export function cloverCoupledInit(group: CoupledGroup, bases: Readonly<Record<string, Tensor>>, config: unknown, rng: Random): Record<string, AdapterState> {
  const c = parseWith(cloverConfigSchema, config, 'clover') as CLOVERConfig;
  const targeted = group.members.filter((m) => bases[m.name] !== undefined);
  if (group.kind !== 'attention') return Object.fromEntries(targeted.map((m) => [m.name, cloverVariant.init(bases[m.name]!, c, rng.fork(m.name))]));
  const layout = attentionLayout(group, 'clover.init');
  const w = Object.fromEntries(targeted.map((m) => [m.name, floatMatrix(bases[m.name]!, 'clover.init', m.name)]));
  const { hd, heads } = layout;
  // blocks per member and axis; a fused QKV collects Q's (and, unabsorbed, K's and V's) row blocks
  const rows = new Map<string, Block[]>();
  const cols = new Map<string, Block[]>();
  const add = (map: Map<string, Block[]>, name: string, b: Block[]) => map.set(name, [...(map.get(name) ?? []), ...b]);
  const distinct = (slots: { member: string; start: number }[]) => [...new Map(slots.map((s) => [`${s.member}:${s.start}`, s])).values()];
  const all = (slot: 'q' | 'k' | 'v' | 'o') => (layout[slot] ?? []).every((s) => w[s.member] !== undefined);
  for (const pair of ['qk', 'vo'] as const) {
    const [x, y] = pair === 'qk' ? (['q', 'k'] as const) : (['v', 'o'] as const);
    const blocker = absorbBlocker(layout, group, pair);
    if (blocker === undefined && all(x) && all(y)) {
      const f = absorbHeads(layout, pair, w);
      f.forEach((hdec, h) => {
        if (pair === 'qk') add(rows, layout.q![h]!.member, [{ start: layout.q![h]!.start, u: hdec.liftB, v: transpose(hdec.u) }]);
        else add(cols, layout.o![h]!.member, [{ start: layout.o![h]!.start, u: hdec.v, v: transpose(hdec.liftA) }]);
      });
      // the partner weights (K, V) train nothing; a fused QKV's other parts likewise
      for (const s of [...layout[y === 'k' ? 'k' : 'v']!]) if (!rows.has(s.member)) rows.set(s.member, []);
      continue;
    }
    for (const slot of [x, y]) {
      for (const s of distinct(layout[slot] ?? []).filter((s) => w[s.member] !== undefined)) {
        if (slot === 'o') add(cols, s.member, ownColumnBlocks(w[s.member]!, [s.start], hd));
        else add(rows, s.member, ownRowBlocks(w[s.member]!, [s.start], hd));
      }
    }
  }
  void heads;
  const out: Record<string, AdapterState> = {};
  for (const m of targeted) {
    const wm = w[m.name]!;
    const shape: [number, number] = [wm.shape[0]!, wm.shape[1]!];
    const r = rows.get(m.name);
    const cl = cols.get(m.name);
    if (cl !== undefined) out[m.name] = blockState(c, shape, 'column', cl, { m: shape[0], k: hd, n: hd });
    else out[m.name] = blockState(c, shape, 'row', (r ?? []).sort((a, b) => a.start - b.start), { m: hd, k: hd, n: shape[1] });
  }
  return out;
}

export const cloverVariant: ScoredAdapterVariant<CLOVERConfig> = {
  ...perWeight,
  coupled: { wants: (config) => (config as CLOVERConfig).coupled, init: cloverCoupledInit },
};
