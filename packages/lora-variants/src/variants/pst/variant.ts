// PST (Li et al., "Parameter-Efficient Sparsity for Large Language Models Fine-Tuning"): sparse-aware
// fine-tuning where the weight stays frozen and only small matrices train. The layer runs
//   W' = M ⊙ (W + beta · U V),   M = top-k of S,   S = |W + beta · U V| + alpha1 · A B + alpha2 · (r 1ᵀ + 1 cᵀ)
// with U V a LoRA update (U [out, r] from 0, V [r, in] ~ U(±1/√in)) and S the importance score: the
// data-free magnitude plus a data-driven part that is low rank (A [out, scoreRank] ~ U(±1/√scoreRank),
// B from 0) and structured (row scores r [out], column scores c [in], from 0). The magnitude term follows
// the authors' code (|W + beta U V|; it is |W| until U V moves). M is hard in the forward and passes its
// gradient straight through to the data-driven scores (movement pruning's estimator); the magnitude
// term gets none. The sparsity of M follows a cubic schedule to `sparsity` (`pstSparsityAt`); the current
// level is the frozen one-element param `pst_sparsity`, which the training loop sets before each step.
// On a pruned base M only keeps base entries (k = min(kept by the base, round((1 − level) · n))), so a
// base at or above the level gives M = the base mask exactly. The merge writes M ⊙ (W + beta · U V) and
// the layer's mask becomes M (`maskAfterMerge`, = `pstMask`); it removes weights, so there is no unmerge and no densify.
import { count, isKept, keepCount, maskFromTensor, sparsityAt, topKMask, type Mask } from '@sparse/masks';
import { ArgumentError, matmul, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { checkShape, checkState, floatMatrix, mergeMask, parseWith } from '../helpers/common.js';
import type { AdapterState, AdapterVariant } from '../types.js';
import { matmulT } from '../helpers/sparse.js';
import { pstConfigSchema, type PSTConfig } from './config.js';

const NAME = 'pst';
const where = (op: string) => `${NAME}.${op}`;

/** Params that do not train: the current sparsity level. */
export const PST_FROZEN = ['pst_sparsity'] as const;

/**
 * The level of M at `step` of `totalSteps` (steps 1..T, the trainer's numbering): Zhu & Gupta's cubic ramp
 * from initialSparsity at begin = floor(scheduleStart · T) to sparsity at max(begin + 1, floor(scheduleEnd · T)),
 * held after, so step T always runs at the target.
 */
export function pstSparsityAt(config: unknown, step: number, totalSteps: number): number {
  const c = parseWith(pstConfigSchema, config, NAME);
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) throw new ArgumentError(`pstSparsityAt: totalSteps must be a positive integer, got ${String(totalSteps)}`);
  const begin = Math.floor(c.scheduleStart * totalSteps);
  const end = Math.max(begin + 1, Math.floor(c.scheduleEnd * totalSteps));
  return sparsityAt({ kind: 'cubic', initial: c.initialSparsity, final: c.sparsity, begin, end }, step);
}

/**
 * The top-k of `scores` among the kept entries of `candidates`, k = min(count(candidates), round((1 −
 * level) · n)); ties go to the lower flat index.
 */
export function pstKeepMask(scores: Tensor, candidates: Mask, level: number, at = 'pstKeepMask'): Mask {
  if (typeof level !== 'number' || !(level >= 0 && level < 1)) throw new ArgumentError(`${at}: pst_sparsity must be in [0, 1), got ${String(level)}`);
  const n = scores.shape.reduce((a, b) => a * b, 1);
  if (candidates.shape.length !== scores.shape.length || candidates.shape.some((d, i) => d !== scores.shape[i])) {
    throw new ShapeError(`${at}: base mask [${candidates.shape.join(', ')}] differs from scores [${scores.shape.join(', ')}]`);
  }
  const s = new Float64Array(n);
  const src = floatMatrix(scores, at, 'scores').data;
  for (let q = 0; q < n; q++) s[q] = isKept(candidates, q) ? src[q]! : -Infinity;
  const k = Math.min(count(candidates), keepCount(n, level, at));
  return topKMask(tensor(s, scores.shape), k);
}

interface PSTParts {
  st: AdapterState<PSTConfig>;
  /** W + beta · U V. */
  adapted: Float32Tensor;
  level: number;
}

function pstParts(state: AdapterState, base: Tensor, op: string): PSTParts {
  checkState(state, NAME, where(op));
  const st = state as AdapterState<PSTConfig>;
  checkShape(base, st, where(op), 'base');
  const [out, inp] = st.shape;
  const { r, scoreRank: rs } = st.config;
  const want: Record<string, number[]> = { pst_U: [out, r], pst_V: [r, inp], pst_A: [out, rs], pst_B: [rs, inp], pst_R: [out], pst_C: [inp], pst_sparsity: [1] };
  for (const [p, shape] of Object.entries(want)) {
    const t = st.params[p];
    if (t?.dtype !== 'float32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(`${where(op)}: params.${p} must be float32 [${shape.join(', ')}], got ${t ? `${t.dtype} [${t.shape.join(', ')}]` : 'nothing'}`);
    }
  }
  const level = st.params.pst_sparsity!.data[0]!;
  if (!(level >= 0 && level < 1)) throw new ArgumentError(`${where(op)}: params.pst_sparsity must be in [0, 1), got ${level}`);
  const adapted = floatMatrix(base, where(op), 'base');
  const uv = matmul(st.params.pst_U!, st.params.pst_V!);
  for (let q = 0; q < adapted.data.length; q++) adapted.data[q] = adapted.data[q]! + st.config.beta * uv.data[q]!;
  return { st, adapted, level };
}

function scoresOf({ st, adapted }: PSTParts): Float32Tensor {
  const [out, inp] = st.shape;
  const { alpha1, alpha2 } = st.config;
  const ab = matmul(st.params.pst_A!, st.params.pst_B!);
  const r = st.params.pst_R!.data;
  const c = st.params.pst_C!.data;
  const s: Float32Tensor = tensor(new Float32Array(out * inp), [out, inp]);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inp; j++) {
      const q = i * inp + j;
      s.data[q] = Math.abs(adapted.data[q]!) + alpha1 * ab.data[q]! + alpha2 * (r[i]! + c[j]!);
    }
  }
  return s;
}

/** The importance scores S [out, in] of the adapter on `base`. */
export function pstScores(state: AdapterState, base: Tensor): Float32Tensor {
  return scoresOf(pstParts(state, base, 'pstScores'));
}

/** M: the entries the layer keeps (inside `opts.mask`, default the base's nonzeros). */
export function pstMask(state: AdapterState, base: Tensor, opts: { mask?: Mask } = {}): Mask {
  const parts = pstParts(state, base, 'pstMask');
  const candidates = mergeMask(floatMatrix(base, 'pstMask', 'base'), { mask: opts.mask }, 'pstMask')!;
  return pstKeepMask(scoresOf(parts), candidates, parts.level, 'pstMask');
}

/** M ⊙ (W + beta · U V) with M chosen inside `mask`. */
function prunedWeight(parts: PSTParts, mask: Mask, at: string): Float32Tensor {
  const m = pstKeepMask(scoresOf(parts), mask, parts.level, at);
  const w = parts.adapted;
  for (let q = 0; q < w.data.length; q++) if (!isKept(m, q)) w.data[q] = 0;
  return w;
}

export const pstVariant: AdapterVariant<PSTConfig> = {
  kind: 'adapter',
  name: NAME,
  describe: 'PST: frozen W, a LoRA update U V and a learned top-k mask from |W| + low-rank + row/column scores, sparsity on a cubic schedule; merges M ⊙ (W + U V)',
  paper: 'Li et al. 2022, Parameter-Efficient Sparsity for Large Language Models Fine-Tuning (PST)',
  differs: [
    'the magnitude term is |W + beta · U V|, as the authors\' code, not |W|',
  ],
  schema: pstConfigSchema,
  parseConfig: (config) => parseWith(pstConfigSchema, config, NAME),
  init(base, config, rng) {
    const c = parseWith(pstConfigSchema, config, NAME);
    const w = floatMatrix(base, where('init'), 'base');
    const [out, inp] = w.shape as [number, number];
    const uni = (n: number, bound: number, r: typeof rng) => Float32Array.from({ length: n }, () => r.uniform(-bound, bound));
    const vr = rng.fork('V');
    const ar = rng.fork('A');
    return {
      variant: NAME,
      shape: [out, inp],
      config: c,
      params: {
        pst_U: tensor(new Float32Array(out * c.r), [out, c.r]),
        pst_V: tensor(uni(c.r * inp, 1 / Math.sqrt(inp), vr), [c.r, inp]),
        pst_A: tensor(uni(out * c.scoreRank, 1 / Math.sqrt(c.scoreRank), ar), [out, c.scoreRank]),
        pst_B: tensor(new Float32Array(c.scoreRank * inp), [c.scoreRank, inp]),
        pst_R: tensor(new Float32Array(out), [out]),
        pst_C: tensor(new Float32Array(inp), [inp]),
        pst_sparsity: tensor(Float32Array.of(c.initialSparsity), [1]),
      },
    };
  },
  /** M ⊙ (W + beta · U V) − W, M inside the base's nonzeros. */
  delta(state, base) {
    const parts = pstParts(state, base, 'delta');
    const w = prunedWeight(parts, maskFromTensor(base), where('delta'));
    const b = floatMatrix(base, where('delta'), 'base');
    for (let q = 0; q < w.data.length; q++) w.data[q] = w.data[q]! - b.data[q]!;
    return w;
  },
  forward(x, base, state) {
    const parts = pstParts(state, base, 'forward');
    const xs = floatMatrix(x, where('forward'), 'x');
    if (xs.shape[1] !== parts.st.shape[1]) throw new ShapeError(`${where('forward')}: x is [${xs.shape.join(', ')}] but the weight takes ${parts.st.shape[1]} inputs`);
    return matmulT(xs, prunedWeight(parts, maskFromTensor(base), where('forward')));
  },
  merge(base, state, opts) {
    if (opts?.densify) throw new ArgumentError(`${where('merge')}: densify has no meaning for PST, whose merge prunes to M inside the base mask`);
    const parts = pstParts(state, base, 'merge');
    return prunedWeight(parts, mergeMask(floatMatrix(base, where('merge'), 'base'), opts, where('merge'))!, where('merge'));
  },
  /** M: the merged weight's support (entries of M where W + beta · U V is exactly 0 stay in it). */
  maskAfterMerge(base, state, opts) {
    if (opts?.densify) throw new ArgumentError(`${where('maskAfterMerge')}: densify has no meaning for PST, whose merge prunes to M inside the base mask`);
    const parts = pstParts(state, base, 'maskAfterMerge');
    return pstKeepMask(scoresOf(parts), mergeMask(floatMatrix(base, where('maskAfterMerge'), 'base'), opts, where('maskAfterMerge'))!, parts.level, where('maskAfterMerge'));
  },
  unmerge() {
    throw new ArgumentError(`${where('unmerge')}: PST's merge removes the weights outside M, so the base cannot be recovered from the merged weight; keep a copy of the base instead`);
  },
  trainableCount(shape, config) {
    const c = parseWith(pstConfigSchema, config, NAME);
    const [out, inp] = shape;
    return (c.r + c.scoreRank) * (out + inp) + out + inp;
  },
};
