// MoSA (Zhang et al., "MoSA: Mixture of Sparse Adapters"): the adapter's entries are split into K
// non-overlapping sparse modules, each training step trains one randomly chosen module, and after tuning
// the modules form the complete adapter again. Here the adapter is the linear LoRA form ΔW = scaling · B A
// and each factor is partitioned: a seeded random partition of A's entries (`module_A`, a module id per
// entry of A [r, in]) and of B's (`module_B`, per entry of B [out, r]), sizes balanced to within one.
//
// Train/test scaling: a step that draws modules (a, b) uses K·(A ⊙ P_a) and K·(B ⊙ P_b), the
// inverted-dropout rescale, with a and b drawn independently. Then the expected training-time update is
// E[K²(B ⊙ P_b)(A ⊙ P_a)] = (Σ_b B ⊙ P_b)(Σ_a A ⊙ P_a) = B A: the merged (complete) adapter is exactly
// the mean of what training ran, and for a loss convex in the layer output its loss is no higher than the
// mean training-time loss (Jensen). Unscaled modules would merge to K² times the trained update, and one
// shared draw for both factors would train only the blocks B_k A_k, never the B_j A_k (j ≠ k) the merge adds.
//
// Like LoRS and SQFT, ΔW goes through the base mask in forward, training and merge (densify: true adds the
// unmasked update), so on a pruned base the trained weight is the merged one. The draws come from a
// per-layer stream (`draw_seed`, fixed at init): the n-th training forward of a layer uses
// `mosaModules(state, n)`.
//
// `form: 'bottleneck'` is the paper's adapter instead (../sparse-adapter/bottleneck.ts): A is the down
// projection D [r, in], B the up projection U [out, r], a nonlinearity between them, dense biases
// (mosa_bd [r], mosa_bu [out], trained every step), the layer's output the residual; the same module
// partition and draws apply to D and U (`mosaBottleneckTerm` with modules). It cannot be merged into W
// (`unmergeable`), so delta, merge and unmerge refuse it; outside training the complete adapter runs.
// differs: one level of random modules, drawn uniformly every step (the paper adds a hierarchical sparse
// strategy for small datasets, whose details are not in the sources this follows); its adapters follow a
// sublayer, here one sits in parallel with one linear layer, scaled by alpha / r; modules are rescaled by K.
import { isKept, maskFromTensor, type Mask } from '@sparse/masks';
import { ArgumentError, Random, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { addMasked, checkShape, floatMatrix, mergeMask, parseWith } from '../helpers/common.js';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import { addLowRank, indexedState, loraFactorsFor, matmulT, zerosMatrix, type IndexedAdapterState } from '../helpers/sparse.js';
import { mosaConfigSchema, type MoSAConfig } from './config.js';
import { BOTTLENECK_UNMERGEABLE, bottleneckTerm } from '../sparse-adapter/bottleneck.js';
import { tensor } from '@sparse/tensor';

/** Refuses a bottleneck state where a ΔW is asked for. */
function linearOnly(st: IndexedAdapterState<MoSAConfig>, op: string): void {
  if (st.config.form === 'bottleneck') throw new ArgumentError(`${where(op)}: no ΔW: ${BOTTLENECK_UNMERGEABLE}`);
}

/**
 * The bottleneck's output term for x [n, in]: the complete adapter, or, given `modules`, the training
 * forward that draws them (K·(D ⊙ P_a), K·(U ⊙ P_b), biases whole).
 */
export function mosaBottleneckTerm(state: AdapterState, x: Tensor, modules?: { a: number; b: number }): Float32Tensor {
  const st = mosaState(state as AdapterState<MoSAConfig>, 'mosaBottleneckTerm');
  if (st.config.form !== 'bottleneck') throw new ArgumentError(`mosaBottleneckTerm: the adapter's form is '${st.config.form}', not 'bottleneck'`);
  const xs = floatMatrix(x, 'mosaBottleneckTerm', 'x');
  if (xs.shape[1] !== st.shape[1]) throw new ShapeError(`mosaBottleneckTerm: x is [${xs.shape.join(', ')}] but the weight takes ${st.shape[1]} inputs`);
  const k = st.config.modules;
  const d = modules ? moduleOf(st.params.lora_A!, st.indices.module_A!, modules.a, k) : st.params.lora_A!;
  const u = modules ? moduleOf(st.params.lora_B!, st.indices.module_B!, modules.b, k) : st.params.lora_B!;
  return bottleneckTerm(xs, d, u, st.params.mosa_bd!, st.params.mosa_bu!, loraScaling(st.config), st.config.activation);
}

const NAME = 'mosa';
const where = (op: string) => `${NAME}.${op}`;

/** A seeded random partition of n entries into k modules: module id per entry, sizes floor(n/k) or ceil(n/k). */
export function mosaPartition(n: number, k: number, rng: Random): Int32Array {
  if (!Number.isSafeInteger(k) || k < 1) throw new ArgumentError(`mosaPartition: modules must be a positive integer, got ${String(k)}`);
  if (!Number.isSafeInteger(n) || n < k) throw new ArgumentError(`mosaPartition: ${String(n)} entries cannot fill ${k} non-empty modules`);
  const order = rng.shuffle(Int32Array.from({ length: n }, (_, t) => t));
  const ids = new Int32Array(n);
  for (let t = 0; t < n; t++) ids[order[t]!] = t % k;
  return ids;
}

function mosaState(state: AdapterState<MoSAConfig>, op: string): IndexedAdapterState<MoSAConfig> {
  const st = indexedState(state, NAME, where(op));
  const [out, inp] = st.shape;
  const { r, modules: k } = st.config;
  const check = (name: string, len: number) => {
    const ids = st.indices[name];
    if (!(ids instanceof Int32Array) || ids.length !== len) throw new ShapeError(`${where(op)}: indices.${name} must be an Int32Array of ${len} module ids`);
    const bad = ids.findIndex((m) => m < 0 || m >= k);
    if (bad >= 0) throw new ArgumentError(`${where(op)}: indices.${name}[${bad}] = ${ids[bad]} is not a module id in [0, ${k})`);
  };
  check('module_A', r * inp);
  check('module_B', out * r);
  if (!(st.indices.draw_seed instanceof Int32Array) || st.indices.draw_seed.length !== 1) throw new ShapeError(`${where(op)}: indices.draw_seed must be an Int32Array of length 1`);
  const a = st.params.lora_A;
  const b = st.params.lora_B;
  if (a?.shape[0] !== r || a.shape[1] !== inp) throw new ShapeError(`${where(op)}: params.lora_A must be [${r}, ${inp}]`);
  if (b?.shape[0] !== out || b.shape[1] !== r) throw new ShapeError(`${where(op)}: params.lora_B must be [${out}, ${r}]`);
  return st;
}

/** The modules (a for A, b for B) the n-th training forward of this layer uses. */
export function mosaModules(state: AdapterState, call: number): { a: number; b: number } {
  const st = mosaState(state as AdapterState<MoSAConfig>, 'mosaModules');
  if (!Number.isSafeInteger(call) || call < 0) throw new ArgumentError(`mosaModules: call must be a non-negative integer, got ${String(call)}`);
  const rng = new Random(st.indices.draw_seed![0]!).fork(call);
  const k = st.config.modules;
  return { a: rng.int(0, k), b: rng.int(0, k) };
}

/** K · (t ⊙ P_m): the entries of module m, rescaled; the rest zero. */
function moduleOf(t: Float32Tensor, ids: Int32Array, m: number, k: number): Float32Tensor {
  const out = zerosMatrix(t.shape[0]!, t.shape[1]!);
  for (let q = 0; q < ids.length; q++) if (ids[q] === m) out.data[q] = k * t.data[q]!;
  return out;
}

/** scaling · B A for the given factors, unmasked. */
function lowRank(st: IndexedAdapterState<MoSAConfig>, a: Float32Tensor, b: Float32Tensor): Float32Tensor {
  const d = zerosMatrix(st.shape[0], st.shape[1]);
  addLowRank(d, b, a, loraScaling(st.config));
  return d;
}

function maskOut(d: Float32Tensor, mask: Mask): Float32Tensor {
  for (let k = 0; k < d.data.length; k++) if (!isKept(mask, k)) d.data[k] = 0;
  return d;
}

/**
 * The update a training step with modules (a, b) applies: M ⊙ scaling · K²(B ⊙ P_b)(A ⊙ P_a), M the base's
 * nonzeros. Its mean over all K² pairs is `mosaVariant.delta`.
 */
export function mosaModuleDelta(state: AdapterState, base: Tensor, modules: { a: number; b: number }): Float32Tensor {
  const st = mosaState(state as AdapterState<MoSAConfig>, 'mosaModuleDelta');
  if (st.config.form === 'bottleneck') throw new ArgumentError(`mosaModuleDelta: no ΔW: ${BOTTLENECK_UNMERGEABLE}`);
  checkShape(base, st, 'mosaModuleDelta', 'base');
  const k = st.config.modules;
  for (const f of ['a', 'b'] as const) {
    const m = modules?.[f];
    if (!Number.isInteger(m) || m < 0 || m >= k) throw new ArgumentError(`mosaModuleDelta: modules.${f} must be an integer in [0, ${k}), got ${String(m)}`);
  }
  const a = moduleOf(st.params.lora_A!, st.indices.module_A!, modules.a, k);
  const b = moduleOf(st.params.lora_B!, st.indices.module_B!, modules.b, k);
  return maskOut(lowRank(st, a, b), maskFromTensor(base));
}

export const mosaVariant: AdapterVariant<MoSAConfig> = {
  kind: 'adapter',
  name: NAME,
  describe:
    "MoSA: an adapter split into K random sparse modules per projection, one module of each trained per step (rescaled by K), the complete adapter after tuning; form 'lora' (merged through the base mask) or 'bottleneck' (the paper's down, nonlinearity, up, residual; not mergeable)",
  paper: 'Zhang et al. 2023, MoSA: Mixture of Sparse Adapters for Visual Efficient Tuning',
  differs: [
    'one level of random modules, drawn uniformly every step (the paper adds a hierarchical sparse strategy for small datasets, whose details are not in the sources this follows)',
    'the paper\'s adapters follow a sublayer; here one sits in parallel with one linear layer, scaled by alpha / r',
    'modules are rescaled by K during training, so the merged complete adapter is the mean training-time update',
    'form: \'lora\' (the default) is this library\'s linear, mergeable form; form: \'bottleneck\' is the paper\'s adapter',
  ],
  schema: mosaConfigSchema,
  parseConfig: (config) => parseWith(mosaConfigSchema, config, NAME),
  init(base, config, rng) {
    const c = parseWith(mosaConfigSchema, config, NAME);
    const w = floatMatrix(base, where('init'), 'base');
    const [out, inp] = w.shape as [number, number];
    const small = Math.min(c.r * inp, out * c.r);
    if (small < c.modules) throw new ArgumentError(`${where('init')}: modules ${c.modules} exceeds the ${small} entries of the smaller factor (r ${c.r}, weight [${out}, ${inp}])`);
    const state: IndexedAdapterState<MoSAConfig> = {
      variant: NAME,
      shape: [out, inp],
      config: c,
      params: { ...loraFactorsFor(w, c.r, rng.fork('lora')), ...(c.form === 'bottleneck' ? { mosa_bd: tensor(new Float32Array(c.r), [c.r]), mosa_bu: tensor(new Float32Array(out), [out]) } : {}) },
      indices: {
        module_A: mosaPartition(c.r * inp, c.modules, rng.fork('partition-A')),
        module_B: mosaPartition(out * c.r, c.modules, rng.fork('partition-B')),
        draw_seed: Int32Array.of(rng.fork('draws').int(0, 2 ** 31 - 1)),
      },
    };
    return state;
  },
  /** M ⊙ (scaling · B A): the complete adapter through the base mask. */
  delta(state, base) {
    const st = mosaState(state, 'delta');
    linearOnly(st, 'delta');
    checkShape(base, st, where('delta'), 'base');
    return maskOut(lowRank(st, st.params.lora_A!, st.params.lora_B!), maskFromTensor(base));
  },
  forward(x, base, state) {
    const st = mosaState(state, 'forward');
    checkShape(base, st, where('forward'), 'base');
    const xs = floatMatrix(x, where('forward'), 'x');
    if (xs.shape[1] !== st.shape[1]) throw new ShapeError(`${where('forward')}: x is [${xs.shape.join(', ')}] but the weight takes ${st.shape[1]} inputs`);
    const w = floatMatrix(base, where('forward'), 'base');
    if (st.config.form === 'bottleneck') {
      const y = matmulT(xs, w);
      const t = mosaBottleneckTerm(st, xs);
      for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + t.data[q]!;
      return y;
    }
    return matmulT(xs, addMasked(w, lowRank(st, st.params.lora_A!, st.params.lora_B!), maskFromTensor(w), 1));
  },
  merge(base, state, opts) {
    const st = mosaState(state, 'merge');
    linearOnly(st, 'merge');
    checkShape(base, st, where('merge'), 'base');
    const w = floatMatrix(base, where('merge'), 'base');
    return addMasked(w, lowRank(st, st.params.lora_A!, st.params.lora_B!), mergeMask(w, opts, where('merge')), 1);
  },
  unmerge(merged, state, opts) {
    const st = mosaState(state, 'unmerge');
    linearOnly(st, 'unmerge');
    checkShape(merged, st, where('unmerge'), 'merged');
    const w = floatMatrix(merged, where('unmerge'), 'merged');
    return addMasked(w, lowRank(st, st.params.lora_A!, st.params.lora_B!), mergeMask(w, opts, where('unmerge')), -1);
  },
  trainableCount(shape, config) {
    const c = parseWith(mosaConfigSchema, config, NAME);
    return c.r * (shape[0] + shape[1]) + (c.form === 'bottleneck' ? c.r + shape[0] : 0);
  },
  unmergeable: (config) => (parseWith(mosaConfigSchema, config, NAME).form === 'bottleneck' ? BOTTLENECK_UNMERGEABLE : undefined),
};
