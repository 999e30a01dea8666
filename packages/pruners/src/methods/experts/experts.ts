// Mixture-of-experts expert pruning (task-specific, after Lu et al. 2024, "Not All Experts are Equal"):
// route calibration tokens of the target task through each MoE layer, score every expert by how much
// the router uses it, and keep the `keep` best experts of each layer. What the scores mean:
//   frequency: the fraction of (token, slot) routing decisions that chose the expert;
//   gate:      the summed gate weight the expert received (frequency weighted by confidence).
// Removing an expert is structural (its router row and its MLP go away), so it is done by the model's
// owner; this module decides which experts stay.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';

export const expertPruneConfigSchema = z.strictObject({
  /** Experts kept in every MoE layer (at least the router's top-k). */
  keep: z.int('keep must be an integer').min(1, 'keep must be at least 1'),
  metric: z.enum(['frequency', 'gate']).default('gate'),
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
}

/** The `keep` highest-scoring experts, in increasing index order; ties keep the lower index. */
export function expertsToKeep(scores: ArrayLike<number>, keep: number, topK = 1): number[] {
  const n = scores.length;
  if (!Number.isInteger(keep) || keep < 1 || keep > n) throw new ArgumentError(`expertsToKeep: keep must be in 1..${n}, got ${keep}`);
  if (keep < topK) throw new ArgumentError(`expertsToKeep: keep (${keep}) must be at least the router's topK (${topK})`);
  const order = Array.from({ length: n }, (_, e) => e).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, keep).sort((a, b) => a - b);
}
