// tfjs forms of the sparse + low-rank variants in this folder. Sparse parts are stored as values plus
// fixed positions (state.indices); they become a dense ΔW by a gather from [values, 0] with a position
// map, whose gradient (tfjs's GatherV2 grad) sums back into the values only.
import type { Mask } from '@sparse/masks';
import { ArgumentError, ShapeError, svd, tensor as coreTensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { TfAdapterForm } from '../../tfjs-forms/types.js';
import { loraScaling, type LoraConfig } from '../lora.js';
import type { AdapterState } from '../types.js';
import { mosaModules, type MosaConfig } from './mosa.js';
import { PST_FROZEN, pstMask, type PstConfig } from './pst.js';
import { roseloraMasks, type RoseloraConfig } from './roselora.js';
import type { IndexedAdapterState } from './shared.js';
import { smtPositions } from './smt.js';
import { snellMask, type SnellConfig } from './snell.js';

/** Dense [out, in] tensor with values.flat()[t] at flat position positions[t] and 0 elsewhere. */
export function placeFlat(values: tf.Tensor, positions: Int32Array, shape: readonly [number, number]): tf.Tensor2D {
  const n = positions.length;
  // Every position maps to its value's slot, the rest to slot n (an appended zero).
  const map = new Int32Array(shape[0] * shape[1]).fill(n);
  for (let t = 0; t < n; t++) map[positions[t]!] = t;
  const padded = tf.concat([tf.reshape(values, [n]), tf.zeros([1])]);
  return tf.reshape(tf.gather(padded, tf.tensor1d(map, 'int32')), [shape[0], shape[1]]) as tf.Tensor2D;
}

function lowRank(vars: Readonly<Record<string, tf.Variable>>, config: unknown): tf.Tensor {
  return tf.mul(tf.matMul(vars.lora_B!, vars.lora_A!), loraScaling(config as LoraConfig));
}

const indexed = (s: unknown) => s as IndexedAdapterState;

export const rosaForm: TfAdapterForm = {
  variant: 'rosa',
  effectiveWeight: ({ base, vars, state }) =>
    tf.add(tf.add(base, lowRank(vars, state.config)), placeFlat(vars.rosa_values!, indexed(state).indices.support!, state.shape)),
};

export const dseeForm: TfAdapterForm = {
  variant: 'dsee',
  effectiveWeight: ({ base, vars, state }) =>
    tf.add(tf.add(base, lowRank(vars, state.config)), placeFlat(vars.dsee_values!, indexed(state).indices.support!, state.shape)),
};

/**
 * LoRS: W + M ⊙ (scaling · B A) as one custom-gradient op. The tape keeps only A and B (no [out, in]
 * intermediate: B A and its masked copy are recomputed, not stored), and the backward forms the masked
 * gradient G_M = scaling · M ⊙ ∂L/∂W' once and reuses it for both factors: ∂A = Bᵀ G_M, ∂B = G_M Aᵀ.
 */
export const lorsForm: TfAdapterForm = {
  variant: 'lors',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask }) => {
    const scale = loraScaling(state.config as LoraConfig);
    const op = tf.customGrad((...args) => {
      const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, (saved: tf.Tensor[]) => void];
      save([a, b]);
      const value = tf.add(base, tf.mul(tf.mul(tf.matMul(b, a), scale), mask));
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const gm = tf.mul(tf.mul(dy, mask), scale) as tf.Tensor2D;
        return [tf.matMul(saved[1] as tf.Tensor2D, gm, true, false), tf.matMul(gm, saved[0] as tf.Tensor2D, false, true)];
      };
      return { value, gradFunc };
    });
    return op(vars.lora_A!, vars.lora_B!);
  },
};

/** x ⊙ m in the forward, identity in the backward (the straight-through estimator). */
function straightThrough(x: tf.Tensor, m: tf.Tensor): tf.Tensor {
  return tf.customGrad((...args) => {
    const [v] = args as [tf.Tensor];
    return { value: tf.mul(v, m), gradFunc: (dy: tf.Tensor) => [dy] };
  })(x);
}

function maskTensor(m: Mask): tf.Tensor {
  const [rows, cols] = m.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let k = 0; k < out.length; k++) out[k] = (m.bits[k >>> 5]! >>> (k & 31)) & 1;
  return tf.tensor(out, [rows, cols]);
}

/** RoseLoRA: the supports are re-selected from the variables' current values (the same rule as the core). */
export const roseloraForm: TfAdapterForm = {
  variant: 'roselora',
  effectiveWeight: ({ base, vars, state }) => {
    const st = state as AdapterState<RoseloraConfig>;
    const core = (v: tf.Variable): Float32Tensor => coreTensor(v.dataSync() as Float32Array, v.shape);
    const { maskA, maskB } = roseloraMasks(st, core(vars.lora_A!), core(vars.lora_B!));
    const a = straightThrough(vars.lora_A!, maskTensor(maskA));
    const b = straightThrough(vars.lora_B!, maskTensor(maskB));
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(st.config)));
  },
};

export const saraForm: TfAdapterForm = {
  variant: 'sara',
  effectiveWeight: ({ base, vars, state }) => tf.add(base, placeFlat(vars.sara_values!, indexed(state).indices.support!, state.shape)),
};

/**
 * SaRA's penalty ‖M‖_* = Σ σ_i(M) as a differentiable scalar, for M = ΔW (e.g.
 * `tf.sub(model.effectiveWeight(name), model.weights[name])`). The SVD runs on the CPU (tfjs has no SVD
 * op); the gradient is U Vᵀ over the singular values above 1e-6 · σ_max (a subgradient at rank deficiency).
 */
export function nuclearNormPenalty(m: tf.Tensor): tf.Scalar {
  if (m.rank !== 2) throw new ShapeError(`nuclearNormPenalty: expected a matrix, got shape [${m.shape.join(', ')}]`);
  return tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor2D, (saved: tf.Tensor[]) => void];
    const [rows, cols] = x.shape;
    const { u, s, v } = svd(coreTensor(Float32Array.from(x.dataSync()), [rows, cols]));
    const k = s.data.length;
    const sv = Array.from(s.data as ArrayLike<number>);
    const cut = 1e-6 * (sv[0] ?? 0);
    const uv = new Float32Array(rows * cols);
    for (let t = 0; t < k; t++) {
      if (!(sv[t]! > cut)) continue;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) uv[i * cols + j] = uv[i * cols + j]! + u.data[i * k + t]! * v.data[j * k + t]!;
    }
    save([tf.tensor(uv, [rows, cols])]);
    return { value: tf.scalar(sv.reduce((a, b) => a + b, 0)), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[0]!)] };
  })(m) as tf.Scalar;
}

/**
 * S2FT: the dense block D goes back to its channels by a gather over the co-permutation (every unselected
 * channel reads an appended zero row/column), so the gradient reaches D as a dense block.
 */
export const s2ftForm: TfAdapterForm = {
  variant: 's2ft',
  effectiveWeight: ({ base, vars, state }) => {
    const ch = indexed(state).indices.channels!;
    const axis = (state.config as { axis: 'rows' | 'columns' }).axis === 'rows' ? 0 : 1;
    const [out, inp] = state.shape;
    const len = axis === 0 ? out : inp;
    const map = new Int32Array(len).fill(ch.length);
    ch.forEach((c, t) => (map[c] = t));
    const block = vars.s2ft_block!;
    const padded = tf.concat([block, tf.zeros(axis === 0 ? [1, inp] : [out, 1])], axis);
    return tf.add(base, tf.gather(padded, tf.tensor1d(map, 'int32'), axis));
  },
};

export const smtForm: TfAdapterForm = {
  variant: 'smt',
  effectiveWeight: ({ base, vars, state }) => {
    const bs = (state.config as { blockSize: number }).blockSize;
    return tf.add(base, placeFlat(vars.smt_blocks!, smtPositions(indexed(state).indices.blocks!, bs, state.shape[1]), state.shape));
  },
};

/** SNELL: distance kernels by broadcasting; the competition mask is decided by the core rule on K's values. */
export const snellForm: TfAdapterForm = {
  variant: 'snell',
  effectiveWeight: ({ base, vars, state }) => {
    const c = state.config as SnellConfig;
    const [out, inp] = state.shape;
    const heads = [0, 1].map((h) => {
      const u = tf.reshape(tf.slice(vars.snell_out!, [h, 0, 0], [1, out, c.dim]), [out, 1, c.dim]);
      const v = tf.reshape(tf.slice(vars.snell_in!, [h, 0, 0], [1, inp, c.dim]), [1, inp, c.dim]);
      const diff = tf.sub(u, v);
      return c.p === 1 ? tf.sum(tf.abs(diff), -1) : tf.sqrt(tf.sum(tf.square(diff), -1));
    });
    const k = tf.mul(tf.sub(heads[0]!, heads[1]!), c.scale);
    const m = snellMask(coreTensor(Float32Array.from(k.dataSync()), [out, inp]), c.sparsity);
    return tf.add(base, tf.mul(k, maskTensor(m)));
  },
};

export const sparseAdapterForm: TfAdapterForm = {
  variant: 'sparse-adapter',
  effectiveWeight: ({ base, vars, state }) => {
    const { indices } = indexed(state);
    const r = (state.config as { r: number }).r;
    const [out, inp] = state.shape;
    const a = placeFlat(vars.sa_A!, indices.posA!, [r, inp]);
    const b = placeFlat(vars.sa_B!, indices.posB!, [out, r]);
    return tf.add(base, tf.mul(tf.matMul(b, a), loraScaling(state.config as LoraConfig)));
  },
};

/** LoSiA: the core goes to W[R, C] by a row gather and a column gather over zero-padded maps. */
export const losiaForm: TfAdapterForm = {
  variant: 'losia',
  effectiveWeight: ({ base, vars, state }) => {
    const { rows, cols } = indexed(state).indices;
    const [out, inp] = state.shape;
    const map = (sel: Int32Array, len: number) => {
      const m = new Int32Array(len).fill(sel.length);
      sel.forEach((c, t) => (m[c] = t));
      return tf.tensor1d(m, 'int32');
    };
    const core = vars.losia_core!;
    const padded = tf.pad(core, [[0, 1], [0, 1]]);
    return tf.add(base, tf.gather(tf.gather(padded, map(rows!, out), 0), map(cols!, inp), 1));
  },
};

// Training forwards so far per layer (its vars object): the n-th uses mosaModules(state, n).
const mosaCalls = new WeakMap<object, number>();

/** Training forwards so far of the MoSA layer whose variables are `vars` (AdapterModel.mosaDraws reads it). */
export function mosaDrawCount(vars: object): number {
  return mosaCalls.get(vars) ?? 0;
}

/** Sets that count, e.g. from a checkpoint: the next training forward uses mosaModules(state, count). */
export function setMosaDrawCount(vars: object, count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) throw new ArgumentError(`setMosaDrawCount: count must be a non-negative integer, got ${String(count)}`);
  mosaCalls.set(vars, count);
}

/** K where a factor entry is in module m, else 0: the rescaled module as a constant multiplier. */
function moduleMultiplier(ids: Int32Array, m: number, k: number, shape: readonly [number, number]): tf.Tensor {
  return tf.tensor(Float32Array.from(ids, (id) => (id === m ? k : 0)), [shape[0], shape[1]]);
}

/**
 * MoSA: while training, one module of each factor drawn per forward, K·(B ⊙ P_b) K·(A ⊙ P_a), so only
 * those entries get gradient; otherwise the complete adapter. Both through the base mask.
 */
export const mosaForm: TfAdapterForm = {
  variant: 'mosa',
  keepsMask: true,
  effectiveWeight: ({ base, vars, state, mask, training }) => {
    const st = state as IndexedAdapterState<MosaConfig>;
    const [out, inp] = st.shape;
    const { r, modules: k } = st.config;
    let a: tf.Tensor = vars.lora_A!;
    let b: tf.Tensor = vars.lora_B!;
    if (training && k > 1) {
      const call = mosaCalls.get(vars) ?? 0;
      mosaCalls.set(vars, call + 1);
      const m = mosaModules(st, call);
      a = tf.mul(a, moduleMultiplier(st.indices.module_A!, m.a, k, [r, inp]));
      b = tf.mul(b, moduleMultiplier(st.indices.module_B!, m.b, k, [out, r]));
    }
    return tf.add(base, tf.mul(tf.mul(tf.matMul(b, a), loraScaling(st.config)), mask));
  },
};

/**
 * PST: M ⊙ (W + beta · U V), M the top-k of S = |W + beta · U V| + alpha1 · A B + alpha2 · (r 1ᵀ + 1 cᵀ) inside
 * the base mask at the level in pst_sparsity (frozen; the caller's schedule sets it). M is hard in the
 * forward; its gradient goes straight through to the learned part of S (the magnitude term is data-free
 * and gets none), as in movement pruning: ∂L/∂S = ∂L/∂W' ⊙ (W + beta · U V).
 */
export const pstForm: TfAdapterForm = {
  variant: 'pst',
  keepsMask: true,
  frozen: PST_FROZEN,
  effectiveWeight: ({ base, vars, state, mask }) => {
    const c = state.config as PstConfig;
    const [out, inp] = state.shape;
    const w = tf.add(base, tf.mul(tf.matMul(vars.pst_U!, vars.pst_V!), c.beta));
    const learned = tf.add(
      tf.mul(tf.matMul(vars.pst_A!, vars.pst_B!), c.alpha1),
      tf.mul(tf.add(tf.reshape(vars.pst_R!, [out, 1]), tf.reshape(vars.pst_C!, [1, inp])), c.alpha2),
    );
    // M by the core rule on the current values, so the trained weight is bit for bit the merged one
    const params: Record<string, Float32Tensor> = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, coreTensor(Float32Array.from(v.dataSync() as Float32Array), v.shape)]));
    const keep = pstMask({ ...state, params }, coreTensor(Float32Array.from(base.dataSync() as Float32Array), [out, inp]), { mask: { shape: [out, inp], bits: bitsOf(mask.dataSync()) } });
    const m = tf.customGrad((...args) => {
      void args;
      return { value: maskTensor(keep), gradFunc: (dy: tf.Tensor) => [dy] };
    })(learned);
    return tf.mul(m, w);
  },
};

/** A Mask's bit words from a 0/1 array. */
function bitsOf(m: ArrayLike<number>): Uint32Array {
  const bits = new Uint32Array(Math.ceil(m.length / 32));
  for (let k = 0; k < m.length; k++) if (m[k] !== 0) bits[k >>> 5] = bits[k >>> 5]! | (1 << (k & 31));
  return bits;
}

export const sparseTfForms: readonly TfAdapterForm[] = [mosaForm, pstForm, losiaForm, rosaForm, dseeForm, lorsForm, roseloraForm, saraForm, s2ftForm, smtForm, snellForm, sparseAdapterForm];
