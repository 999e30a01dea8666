// Mixture-of-experts expert pruning (task-specific, after Lu et al. 2024, "Not All Experts are Equal"):
// route calibration tokens of the target task through each MoE layer, score every expert by how much
// the router uses it, and keep the `keep` best experts of each layer. What the scores mean:
//   frequency: the fraction of (token, slot) routing decisions that chose the expert;
//   gate:      the summed gate weight the expert received (frequency weighted by confidence).
// Removing an expert is structural (its router row and its MLP go away), so it is done by the model's
// owner; this module decides which experts stay.
//
// Progressive dropping (Chen et al. 2022, "Task-Specific Expert Pruning for Sparse Mixture-of-Experts"):
// while the model fine-tunes on the task, every `every` steps each MoE layer drops its `drop` least-used
// active experts (usage counted on the training batches since the last drop) until `keep` remain; a
// dropped expert leaves the routing at once (its logit is -inf). `keep` may be below the router's top-k:
// each token then goes to all min(topK, keep) kept experts, and its gates are the softmax over the chosen
// experts' logits, i.e. the original gates re-normalized over what is left (renormalizedRouting is that
// definition). Differs from the paper: the paper drops down to a single expert on a schedule of its own
// tuning and measures usage by its "professional degree" (the share of tokens routed to an expert);
// here `keep`, `every` and `drop` are the recipe's and `metric` may also be the gate mass.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';

export const expertPruneConfigSchema = z.strictObject({
  /** Experts kept in every MoE layer (below the router's top-k, every token goes to all kept experts). */
  keep: z.int('keep must be an integer').min(1, 'keep must be at least 1'),
  metric: z.enum(['frequency', 'gate']).default('gate'),
  /**
   * Drop experts progressively while fine-tuning every weight on the stage's data (Chen et al. 2022):
   * `steps` steps at `lr`, batch `batch`; after every `every` steps each layer drops its `drop`
   * least-used active experts (usage since the last drop) until `keep` remain. Omitted: one-shot pruning
   * from the calibration windows.
   */
  progressive: z
    .strictObject({
      steps: z.int('progressive.steps must be an integer').min(1, 'progressive.steps must be at least 1'),
      every: z.int('progressive.every must be an integer').min(1, 'progressive.every must be at least 1'),
      drop: z.int('progressive.drop must be an integer').min(1, 'progressive.drop must be at least 1').default(1),
      lr: z.number().positive('progressive.lr must be positive').default(1e-3),
      batch: z.int().min(1, 'progressive.batch must be at least 1').default(8),
      checkpointEvery: z.int().min(1, 'progressive.checkpointEvery must be at least 1').default(100),
    })
    .optional(),
});
export type ExpertPruneConfig = z.output<typeof expertPruneConfigSchema>;
export type ExpertPruneConfigInput = z.input<typeof expertPruneConfigSchema>;

/** Routing statistics of one MoE layer over calibration tokens. */
export class RoutingAccumulator {
  readonly experts: number;
  /** Times each expert was chosen. */
  readonly counts: Float64Array;
  /** Sum of the gate weights each expert received. */
  readonly gateMass: Float64Array;
  tokens = 0;
  readonly name: string | undefined;

  constructor(experts: number, opts: { name?: string } = {}) {
    if (!Number.isInteger(experts) || experts < 1) throw new ArgumentError(`RoutingAccumulator: experts must be a positive integer, got ${experts}`);
    this.experts = experts;
    this.counts = new Float64Array(experts);
    this.gateMass = new Float64Array(experts);
    this.name = opts.name;
  }

  /** chosen [tokens, topK] expert indices and their gates [tokens, topK], row-major. */
  add(chosen: ArrayLike<number>, gates: ArrayLike<number>, topK: number): this {
    const where = `RoutingAccumulator.add${this.name ? ` (${this.name})` : ''}`;
    if (!Number.isInteger(topK) || topK < 1 || topK > this.experts) throw new ArgumentError(`${where}: topK must be in 1..${this.experts}, got ${topK}`);
    if (chosen.length !== gates.length || chosen.length % topK !== 0) {
      throw new ShapeError(`${where}: chosen (${chosen.length}) and gates (${gates.length}) must both be [tokens, ${topK}]`);
    }
    for (let i = 0; i < chosen.length; i++) {
      const e = chosen[i]!;
      const g = gates[i]!;
      if (!Number.isInteger(e) || e < 0 || e >= this.experts) throw new ArgumentError(`${where}: expert index ${e} at ${i} is outside 0..${this.experts - 1}`);
      if (!Number.isFinite(g)) throw new ArgumentError(`${where}: gate ${g} at ${i} is not finite`);
      this.counts[e]! += 1;
      this.gateMass[e]! += g;
    }
    this.tokens += chosen.length / topK;
    return this;
  }

  /** One score per expert: routing frequency or gate mass per calibration token. */
  scores(metric: ExpertPruneConfig['metric']): Float64Array {
    const src = metric === 'frequency' ? this.counts : this.gateMass;
    return Float64Array.from(src, (x) => (this.tokens > 0 ? x / this.tokens : 0));
  }

  /** Starts a new window: counts, gate mass and tokens back to zero. */
  reset(): this {
    this.counts.fill(0);
    this.gateMass.fill(0);
    this.tokens = 0;
    return this;
  }

  /** A copy of the statistics (for checkpoints). */
  state(): RoutingAccumulatorState {
    return { counts: Array.from(this.counts), gateMass: Array.from(this.gateMass), tokens: this.tokens };
  }

  /** Restores a state() of an accumulator with as many experts. */
  load(state: RoutingAccumulatorState): this {
    const where = `RoutingAccumulator.load${this.name ? ` (${this.name})` : ''}`;
    if (state?.counts?.length !== this.experts || state.gateMass?.length !== this.experts) throw new ShapeError(`${where}: the state has ${state?.counts?.length}/${state?.gateMass?.length} counts/gateMass for ${this.experts} experts`);
    if (!(state.tokens >= 0)) throw new ArgumentError(`${where}: tokens must be non-negative, got ${state.tokens}`);
    this.counts.set(state.counts);
    this.gateMass.set(state.gateMass);
    this.tokens = state.tokens;
    return this;
  }
}

export interface RoutingAccumulatorState {
  counts: number[];
  gateMass: number[];
  tokens: number;
}

/** The `keep` highest-scoring experts, in increasing index order; ties keep the lower index. */
export function expertsToKeep(scores: ArrayLike<number>, keep: number): number[] {
  const n = scores.length;
  if (!Number.isInteger(keep) || keep < 1 || keep > n) throw new ArgumentError(`expertsToKeep: keep must be in 1..${n}, got ${keep}`);
  const order = Array.from({ length: n }, (_, e) => e).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, keep).sort((a, b) => a - b);
}

/**
 * Progressive dropping: the `count` active experts with the lowest score (ties drop the higher index,
 * so the lower one stays as in expertsToKeep), in increasing index order. `active` lists the experts
 * still routed to.
 */
export function expertsToDrop(scores: ArrayLike<number>, active: readonly number[], count: number): number[] {
  if (!Number.isInteger(count) || count < 0 || count > active.length) throw new ArgumentError(`expertsToDrop: count must be in 0..${active.length} (the active experts), got ${count}`);
  for (const e of active) if (!Number.isInteger(e) || e < 0 || e >= scores.length) throw new ArgumentError(`expertsToDrop: active expert ${e} is outside 0..${scores.length - 1}`);
  const order = [...active].sort((a, b) => scores[a]! - scores[b]! || b - a);
  return order.slice(0, count).sort((a, b) => a - b);
}

/**
 * How many experts each layer drops after step `step` of a progressive schedule that starts from
 * `experts` active ones: `drop` (fewer at the last drop) at every multiple of `every` until `keep` remain.
 */
export function expertDropsAt(step: number, schedule: { experts: number; keep: number; every: number; drop: number }): number {
  const { experts, keep, every, drop } = schedule;
  if (step < 1 || step % every !== 0) return 0;
  const before = Math.max(keep, experts - drop * (step / every - 1));
  return Math.max(0, Math.min(drop, before - keep));
}

/**
 * Routing after pruning to the experts `kept` (the definition the rebuilt model must match): for each of
 * the `n` tokens, with router logits [n, experts] over the original experts, the min(topK, kept) kept
 * experts with the largest logits (ties to the lower index), and gates softmax over their logits, so they
 * sum to 1 over the chosen experts. `chosen` holds original expert indices, highest logit first.
 */
export function renormalizedRouting(logits: ArrayLike<number>, n: number, experts: number, kept: readonly number[], topK: number): { chosen: Int32Array; gates: Float64Array; k: number } {
  const where = 'renormalizedRouting';
  if (logits.length !== n * experts) throw new ShapeError(`${where}: logits has ${logits.length} entries, expected n · experts = ${n * experts}`);
  if (kept.length < 1) throw new ArgumentError(`${where}: kept must list at least one expert`);
  for (const e of kept) if (!Number.isInteger(e) || e < 0 || e >= experts) throw new ArgumentError(`${where}: kept expert ${e} is outside 0..${experts - 1}`);
  if (!Number.isInteger(topK) || topK < 1) throw new ArgumentError(`${where}: topK must be a positive integer, got ${topK}`);
  const k = Math.min(topK, kept.length);
  const chosen = new Int32Array(n * k);
  const gates = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    const l = (e: number) => logits[r * experts + e]!;
    const order = [...kept].sort((a, b) => l(b) - l(a) || a - b).slice(0, k);
    const max = l(order[0]!);
    const ex = order.map((e) => Math.exp(l(e) - max));
    const z = ex.reduce((s, x) => s + x, 0);
    order.forEach((e, j) => {
      chosen[r * k + j] = e;
      gates[r * k + j] = ex[j]! / z;
    });
  }
  return { chosen, gates, k };
}
