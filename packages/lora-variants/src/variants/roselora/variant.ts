// RoseLoRA (Wang et al., "Row and Column-wise Sparse Low-rank Adaptation"): ΔW = scaling · B' A' where
// every row of A' [r, in] keeps only its top-kA entries and every column of B' [out, r] its top-kB, so
// rank-1 component t touches only a kB × kA block of W and ΔW has at most r · kA · kB nonzeros (the
// paper's row-wise sparse A and column-wise sparse B). Two selection rules (config `selection`):
// - 'sensitivity' (default, the paper's): entries are ranked by the smoothed sensitivity
//   Ī ← β Ī + (1 − β) |θ · ∂L/∂θ| (an EMA over the training steps' gradients) and the kept counts follow
//   a cubic schedule from dense to the targets (roseloraDensityAt). The tfjs form's training hooks keep
//   Ī, recompute the supports when the schedule is due and store them in the state's indices
//   (`roselora_A`, `roselora_B`: kept flat positions of A and B; all of them at init, the schedule's
//   dense start); Ī and the supports ride in the hooks' state, so a resumed run continues exactly.
//   Departure: ∂L/∂θ is the step's gradient as the trainer applies it (after clipping).
// - 'magnitude' (the earlier rule): top-k |θ|, re-selected from the current values at every use, so
//   the support moves during training; no schedule and no training state.
// Either way merge, forward and the tfjs form read the same support from the state (the tfjs form
// trains A and B straight through the selection: the forward uses A', B', the gradient reaches all of A
// and B). A and B are stored dense (PEFT's lora_A/lora_B shapes); all r · (in + out) scalars train.
import { isKept, magnitudeScores, perColumnTopKMask, perRowTopKMask, type Mask } from '@sparse/masks';
import { ArgumentError, tensor, type Float32Tensor } from '@sparse/tensor';
import { loraScaling } from '../lora/variant.js';
import type { AdapterState } from '../types.js';
import { addLowRank, addLowRankForward, countOf, loraFactorsFor, makeSparseVariant, zerosMatrix, type IndexedAdapterState } from '../helpers/sparse.js';
import { roseloraConfigSchema, type RoseLoRAConfig } from './config.js';

/** The magnitude rule's supports: top-kA |A| per row of A, top-kB |B| per column of B (ties: lower index). */
export function roseloraMasks(state: AdapterState<RoseLoRAConfig>, a = state.params.lora_A!, b = state.params.lora_B!): { maskA: Mask; maskB: Mask } {
  const [out, inp] = state.shape;
  return {
    maskA: perRowTopKMask(magnitudeScores(a), countOf(inp, state.config.densityA)),
    maskB: perColumnTopKMask(magnitudeScores(b), countOf(out, state.config.densityB)),
  };
}

function flagsOfMask(m: Mask, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, k) => (isKept(m, k) ? 1 : 0));
}

function flagsOfIndices(idx: Int32Array | undefined, n: number, name: string): Uint8Array {
  if (idx === undefined) throw new ArgumentError(`roselora: sensitivity selection needs state.indices.${name} (made by roselora.init?)`);
  const f = new Uint8Array(n);
  for (const k of idx) {
    if (!(k >= 0 && k < n)) throw new ArgumentError(`roselora: state.indices.${name} holds ${k}, outside 0..${n - 1}`);
    f[k] = 1;
  }
  return f;
}

/**
 * The current supports as 0/1 flags over A [r, in] and B [out, r]: the stored indices (sensitivity
 * selection) or the top-k |value| of `a` and `b` (magnitude selection; by default the state's params).
 */
export function roseloraSupport(state: AdapterState<RoseLoRAConfig>, a = state.params.lora_A!, b = state.params.lora_B!): { a: Uint8Array; b: Uint8Array } {
  const [out, inp] = state.shape;
  const r = state.config.r;
  if (state.config.selection === 'magnitude') {
    const { maskA, maskB } = roseloraMasks(state, a, b);
    return { a: flagsOfMask(maskA, r * inp), b: flagsOfMask(maskB, out * r) };
  }
  const idx = (state as Partial<IndexedAdapterState<RoseLoRAConfig>>).indices ?? {};
  return { a: flagsOfIndices(idx.roselora_A, r * inp, 'roselora_A'), b: flagsOfIndices(idx.roselora_B, out * r, 'roselora_B') };
}

/**
 * The scheduled densities before step `step` (1-based) of `steps`, when the sensitivity schedule
 * re-selects then (else undefined): with tᵢ = round(scheduleStart · steps), t_e = round(scheduleEnd · steps),
 * d(t) = target + (1 − target) · (1 − (t − tᵢ) / (t_e − tᵢ))³ for tᵢ < t ≤ t_e, due every scheduleEvery
 * steps after tᵢ and at t_e. Before tᵢ the supports are dense; after t_e they stay fixed.
 */
export function roseloraDensityAt(c: RoseLoRAConfig, step: number, steps: number): { densityA: number; densityB: number } | undefined {
  const t0 = Math.round(c.scheduleStart * steps);
  const t1 = Math.max(t0 + 1, Math.round(c.scheduleEnd * steps));
  if (step <= t0 || step > t1) return undefined;
  if ((step - t0) % c.scheduleEvery !== 0 && step !== t1) return undefined;
  const left = (1 - (step - t0) / (t1 - t0)) ** 3;
  return { densityA: c.densityA + (1 - c.densityA) * left, densityB: c.densityB + (1 - c.densityB) * left };
}

/** Kept flat positions: top-k per row of A's scores [r, in], top-k per column of B's [out, r] (ties: lower index). */
export function roseloraSelect(scoresA: Float32Tensor, scoresB: Float32Tensor, kA: number, kB: number): { roselora_A: Int32Array; roselora_B: Int32Array } {
  const pos = (m: Mask, n: number) => Int32Array.from({ length: n }, (_, k) => k).filter((k) => isKept(m, k));
  return {
    roselora_A: pos(perRowTopKMask(scoresA, kA), scoresA.data.length),
    roselora_B: pos(perColumnTopKMask(scoresB, kB), scoresB.data.length),
  };
}

function masked(t: Float32Tensor, keep: Uint8Array): Float32Tensor {
  return tensor(Float32Array.from(t.data, (v, k) => (keep[k] === 1 ? v : 0)), t.shape);
}

function sparseFactors(state: AdapterState<RoseLoRAConfig>): { a: Float32Tensor; b: Float32Tensor } {
  const keep = roseloraSupport(state);
  return { a: masked(state.params.lora_A!, keep.a), b: masked(state.params.lora_B!, keep.b) };
}

export const roseloraVariant = makeSparseVariant<RoseLoRAConfig>({
  name: 'roselora',
  describe: 'RoseLoRA: scaling · B A with top-k rows of A and top-k columns of B (by smoothed sensitivity on a cubic schedule, or by |value|)',
  paper: 'Wang et al. 2024, RoseLoRA: Row and Column-wise Sparse Low-rank Adaptation of Pre-trained Language Model for Knowledge Editing and Fine-tuning',
  differs: [
    '∂L/∂θ in the sensitivity is the gradient the trainer applies (after clipping)',
    'the β and schedule defaults are AdaLoRA-style choices',
    'selection: \'magnitude\' (top-k |value|, re-selected at every use) is this library\'s earlier rule beside the paper\'s',
  ],
  schema: roseloraConfigSchema,
  create(base, c, rng): { params: Record<string, Float32Tensor>; indices: Record<string, Int32Array> } {
    const params = loraFactorsFor(base, c.r, rng);
    if (c.selection === 'magnitude') return { params, indices: {} };
    const all = (n: number) => Int32Array.from({ length: n }, (_, k) => k);
    return { params, indices: { roselora_A: all(params.lora_A!.data.length), roselora_B: all(params.lora_B!.data.length) } };
  },
  delta(state) {
    const d = zerosMatrix(state.shape[0], state.shape[1]);
    const { a, b } = sparseFactors(state);
    addLowRank(d, b, a, loraScaling(state.config));
    return d;
  },
  addForward(x, state, y) {
    const { a, b } = sparseFactors(state);
    addLowRankForward(x, b, a, loraScaling(state.config), y);
  },
  count: ([out, inp], c) => c.r * (out + inp),
});
