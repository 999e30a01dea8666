// Dynamic rank (Mao et al., "DoRA: Enhancing Parameter-Efficient Fine-Tuning with Dynamic Rank
// Distribution"): a LoRA update split into rank-1 components, ΔW = scaling · Σ_i g_i b_i a_iᵀ, whose
// components are pruned during training by importance, so the rank budget flows to the layers that need
// it. g [r] is a frozen 0/1 gate (all 1 at init); pruning turns gates off. Importance of component i:
// its size ‖scaling · b_i a_iᵀ‖_F = scaling ‖b_i‖ ‖a_i‖ (default), or, given the gradient G = ∂L/∂W, the
// first-order loss change of removing it, |⟨G, scaling · b_i a_iᵀ⟩|. Trainable: r (out + in) at attach,
// active · (out + in) after pruning (the pruned components get no gradient: their gate is 0).
import { ArgumentError, matmul, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { checkState, floatMatrix } from '../helpers/common.js';
import type { AdapterState } from '../types.js';
import { loraFactors } from '../lora/variant.js';
import { defineFamilyVariant } from '../helpers/family.js';
import { dynamicRankConfigSchema, type DynamicRankConfig } from './config.js';

export const DYNAMIC_RANK_FROZEN = ['rank_gate'] as const;

export function dynamicRankScaling(c: DynamicRankConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

/** A's rows scaled by scaling · g_i: ΔW = B (gated A). */
function gatedA(state: AdapterState<DynamicRankConfig>): Float32Tensor {
  const a = state.params.lora_A!;
  const g = state.params.rank_gate!.data;
  const s = dynamicRankScaling(state.config);
  const inp = a.shape[1]!;
  return tensor(Float32Array.from(a.data, (v, k) => v * g[Math.floor(k / inp)]! * s), a.shape);
}

export const dynamicRankVariant = defineFamilyVariant<DynamicRankConfig>({
  name: 'dynamic-rank',
  describe: 'Dynamic rank: LoRA as gated rank-1 components b_i a_iᵀ, pruned by importance during training',
  paper: 'Mao et al. 2024, DoRA: Enhancing Parameter-Efficient Fine-Tuning with Dynamic Rank Distribution',
  differs: [],
  schema: dynamicRankConfigSchema,
  init(base, c, rng) {
    const [out, inp] = base.shape as [number, number];
    return {
      ...loraFactors(out, inp, c.r, rng),
      rank_gate: tensor(new Float32Array(c.r).fill(1), [c.r]),
    };
  },
  delta: (state) => matmul(state.params.lora_B!, gatedA(state)),
  forwardDelta: (x, state) => matmul(matmul(x, gatedA(state), { transB: true }), state.params.lora_B!, { transB: true }),
  trainable: (shape, c) => c.r * (shape[0] + shape[1]),
});

function checkDynamic(state: AdapterState, where: string): AdapterState<DynamicRankConfig> {
  checkState(state, 'dynamic-rank', where);
  return state as AdapterState<DynamicRankConfig>;
}

/** Components still switched on. */
export function activeRank(state: AdapterState): number {
  return Array.from(checkDynamic(state, 'activeRank').params.rank_gate!.data).filter((g) => g !== 0).length;
}

/** Trainable scalars left after pruning: active · (out + in). */
export function dynamicRankTrainableCount(state: AdapterState): number {
  return activeRank(state) * (state.shape[0] + state.shape[1]);
}

export interface DynamicRankScoreOptions {
  /** ∂L/∂W [out, in]: score by |⟨G, ΔW_i⟩| instead of ‖ΔW_i‖_F. */
  gradient?: Tensor;
}

/** Importance of each rank-1 component (0 for pruned ones). */
export function dynamicRankScores(state: AdapterState, opts: DynamicRankScoreOptions = {}): Float64Array {
  const s = checkDynamic(state, 'dynamicRankScores');
  const [out, inp] = s.shape;
  const { r } = s.config;
  const a = s.params.lora_A!.data;
  const b = s.params.lora_B!.data;
  const gate = s.params.rank_gate!.data;
  const scale = dynamicRankScaling(s.config);
  const g = opts.gradient === undefined ? undefined : floatMatrix(opts.gradient, 'dynamicRankScores', 'gradient');
  if (g !== undefined && (g.shape[0] !== out || g.shape[1] !== inp)) {
    throw new ShapeError(`dynamicRankScores: gradient is [${g.shape.join(', ')}] but the weight is [${out}, ${inp}]`);
  }
  const scores = new Float64Array(r);
  for (let i = 0; i < r; i++) {
    if (gate[i] === 0) continue;
    if (g === undefined) {
      let nb = 0;
      let na = 0;
      for (let o = 0; o < out; o++) nb += b[o * r + i]! ** 2;
      for (let j = 0; j < inp; j++) na += a[i * inp + j]! ** 2;
      scores[i] = Math.abs(scale) * Math.sqrt(nb * na);
    } else {
      // ⟨G, b aᵀ⟩ = bᵀ G a
      let acc = 0;
      for (let o = 0; o < out; o++) {
        const bo = b[o * r + i]!;
        if (bo === 0) continue;
        let ga = 0;
        for (let j = 0; j < inp; j++) ga += g.data[o * inp + j]! * a[i * inp + j]!;
        acc += bo * ga;
      }
      scores[i] = Math.abs(scale * acc);
    }
  }
  return scores;
}

/**
 * Keeps the `budget` most important active components over all layers together (the paper's dynamic
 * distribution: a layer whose components matter more keeps more rank) and switches the others off.
 * Returns new states; ties go to the lower layer/component index. `gradients` are per layer name.
 */
export function pruneDynamicRank(
  states: Readonly<Record<string, AdapterState>>,
  budget: number,
  opts: { gradients?: Readonly<Record<string, Tensor>> } = {},
): Record<string, AdapterState> {
  const entries = Object.entries(states);
  const total = entries.reduce((n, [, s]) => n + activeRank(s), 0);
  if (!Number.isInteger(budget) || budget < 0 || budget > total) {
    throw new ArgumentError(`pruneDynamicRank: budget must be an integer in [0, ${total}] (the active components), got ${String(budget)}`);
  }
  const all: { layer: number; i: number; score: number }[] = [];
  entries.forEach(([n, s], layer) => {
    const gate = s.params.rank_gate!.data;
    dynamicRankScores(s, { gradient: opts.gradients?.[n] }).forEach((score, i) => {
      if (gate[i] !== 0) all.push({ layer, i, score });
    });
  });
  all.sort((x, y) => y.score - x.score || x.layer - y.layer || x.i - y.i);
  const keep = new Set(all.slice(0, budget).map((c) => `${c.layer}:${c.i}`));
  return Object.fromEntries(
    entries.map(([n, s], layer) => {
      const gate = Float32Array.from(s.params.rank_gate!.data, (g, i) => (g !== 0 && keep.has(`${layer}:${i}`) ? 1 : 0));
      return [n, { ...s, params: { ...s.params, rank_gate: tensor(gate, [gate.length]) } }];
    }),
  );
}

/**
 * The component budget over `layers` layers before step `step` (1-based) of `steps`, or undefined when
 * no pruning is due then: r per layer until `start`, then a cubic decay to `target` per layer at `end`
 * (config.rankBudget, default target ⌈r/2⌉, start 0.2, end 0.7, every 10 steps and at `end`).
 */
export function rankBudgetAt(config: DynamicRankConfig, step: number, steps: number, layers: number): number | undefined {
  const b = config.rankBudget ?? { target: Math.max(1, Math.ceil(config.r / 2)), start: 0.2, end: 0.7, every: 10 };
  const from = config.r * layers;
  const to = Math.max(1, Math.round(b.target * layers));
  const s0 = Math.floor(b.start * steps);
  const s1 = Math.max(s0 + 1, Math.floor(b.end * steps));
  if (step <= s0 || step > s1 || ((step - s0) % b.every !== 0 && step !== s1)) return undefined;
  const progress = (step - s0) / (s1 - s0);
  return Math.round(to + (from - to) * Math.pow(1 - progress, 3));
}
