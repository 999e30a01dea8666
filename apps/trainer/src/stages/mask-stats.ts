// Mask statistics of an optimizing stage, step by step: what the run's masks on the linear layers
// look like after each step and how they changed since the step before (a DST rewiring, a GMP or
// IMP prune). Every step event of metrics.jsonl gets the model's linear sparsity and the step's
// dense-vs-sparse linear FLOPs; a step whose masks changed (and the stage's first step) also logs
// a 'masks' event with the sparsity of each changed layer, the connections regrown and pruned, and
// the Sparse Architecture Divergence between the two masks; the report keeps one trace per stage.
//
// SAD, the Sparse Architecture Divergence, is Zhou et al. 2021's ("Learning N:M Fine-grained Structured
// Sparse Neural Networks From Scratch", the SR-STE paper, which introduced it; not Liu et al.): the
// number of entries whose mask bit differs between the two masks, ‖M₁ ⊕ M₂‖₀ = regrown + pruned. Events
// also give it per entry of the layers (sadRate, the normalization praxis's implementation logs) and the
// Jaccard distance of the kept sets, 1 − |M₁ ∩ M₂| / |M₁ ∪ M₂| (0 for equal masks, 1 for disjoint ones),
// which earlier versions logged under the name SAD. A layer with no mask counts as all kept.
//
// FLOPs are those of the linear layers only, forward and backward: 2 per weight per token forward,
// 4 backward (input and weight gradients), so 6 · tokens · weights dense and 6 · tokens · kept
// weights sparse. Every token is counted through every linear (a mixture-of-experts model routes
// each token through a few experts, so its dense figure is an upper bound); attention scores,
// embeddings and norms are not counted.

import { andNot, count, type Mask } from '@sparse/masks';
import type { LinearInfo } from '../model/types.js';
import type { RunContext } from '../run/context.js';

/** Per stage, what the report shows of its masks. */
export interface MaskTrace {
  label: string;
  /** Linear sparsity (all linear layers together) after each step. */
  points: { step: number; sparsity: number }[];
  /** Steps after which some mask had changed. */
  updates: number;
  /** Connections made active, summed over layers and updates. */
  regrown: number;
  /** Connections made inactive, summed over layers and updates. */
  pruned: number;
  /** Sum over updates of the update's SAD (entries flipped, all changed layers together; mean = sadSum / updates). */
  sadSum: number;
  /** Sum over updates of the Jaccard distance of the kept sets over the changed layers together. */
  jaccardSum?: number;
  /** Linear FLOPs of the stage's steps so far, dense and at the masks of each step. */
  denseFlops: number;
  sparseFlops: number;
}

/** How one layer's mask changed between two steps. */
export interface MaskChange {
  /** Kept before and after (a missing mask keeps everything). */
  before: number;
  after: number;
  /** Entries kept now and not before, and the reverse. */
  regrown: number;
  pruned: number;
  /** SAD (Zhou et al. 2021): entries whose mask bit differs, ‖before ⊕ after‖₀ = regrown + pruned. */
  sad: number;
  /** 1 − |before ∩ after| / |before ∪ after| (0 when both are empty). */
  jaccard: number;
}

/** The change between two masks of the same shape; `undefined` stands for a mask that keeps all `size` entries. */
export function maskChange(before: Mask | undefined, after: Mask | undefined, size: number): MaskChange {
  const b = before ? count(before) : size;
  const a = after ? count(after) : size;
  // regrown = |after \ before|, pruned = |before \ after|; with a missing side they follow from the counts
  const regrown = after === undefined ? size - b : before === undefined ? 0 : count(andNot(after, before));
  const pruned = before === undefined ? size - a : after === undefined ? 0 : count(andNot(before, after));
  const both = a - regrown;
  const union = b + regrown;
  return { before: b, after: a, regrown, pruned, sad: regrown + pruned, jaccard: union === 0 ? 0 : 1 - both / union };
}

/** Follows the run's masks through one stage's steps. */
export class MaskStats {
  #last: Map<string, Mask | undefined>;
  readonly #layers: LinearInfo[];
  readonly #size: number;
  readonly #trace: MaskTrace;

  constructor(
    private readonly ctx: RunContext,
    private readonly stage: number,
    label: string,
    private readonly tokensPerStep: number,
  ) {
    this.#layers = ctx.linears();
    this.#size = this.#layers.reduce((n, l) => n + l.out * l.in, 0);
    this.#last = this.#snapshot();
    const traces = (ctx.report.maskTraces ??= []);
    let trace = traces.find((t) => t.label === label);
    if (trace === undefined) {
      trace = { label, points: [], updates: 0, regrown: 0, pruned: 0, sadSum: 0, jaccardSum: 0, denseFlops: 0, sparseFlops: 0 };
      traces.push(trace);
    }
    this.#trace = trace;
  }

  #kept: number | undefined;
  readonly #counts = new WeakMap<Mask, number>();

  /** Kept entries of a layer's mask (all of them without one), counted once per mask. */
  #countOf(m: Mask | undefined, l: LinearInfo): number {
    if (m === undefined) return l.out * l.in;
    let c = this.#counts.get(m);
    if (c === undefined) this.#counts.set(m, (c = count(m)));
    return c;
  }

  #snapshot(): Map<string, Mask | undefined> {
    return new Map(this.#layers.map((l) => [l.name, this.ctx.masks.get(l.name)]));
  }

  /** Whether the run has a mask on any linear layer (a dense run logs nothing extra). */
  active(): boolean {
    return this.#layers.some((l) => this.ctx.masks.has(l.name));
  }

  /**
   * After step `step` (1-based) of the stage: the fields the step event gets, and a 'masks' event when
   * the masks differ from the step before or this is the stage's first step. Nothing while the run has
   * no masks and never had any in this stage.
   */
  afterStep(step: number): Record<string, unknown> {
    const now = this.#snapshot();
    const changed = this.#layers.filter((l) => now.get(l.name) !== this.#last.get(l.name));
    if (!this.active() && changed.length === 0) return {};
    // masks are replaced, never changed in place: the total is recounted only when one is replaced
    if (this.#kept === undefined || changed.length > 0) this.#kept = this.#layers.reduce((n, l) => n + this.#countOf(now.get(l.name), l), 0);
    const kept = this.#kept;
    const sparsity = this.#size === 0 ? 0 : 1 - kept / this.#size;
    const flops = { dense: 6 * this.tokensPerStep * this.#size, sparse: 6 * this.tokensPerStep * kept };
    const t = this.#trace;
    t.points.push({ step, sparsity });
    t.denseFlops += flops.dense;
    t.sparseFlops += flops.sparse;
    if (changed.length > 0 || step === 1) {
      const layers: Record<string, number> = {};
      const regrown: Record<string, number> = {};
      const pruned: Record<string, number> = {};
      const sad: Record<string, number> = {};
      const sadRate: Record<string, number> = {};
      const jaccard: Record<string, number> = {};
      let inter = 0;
      let union = 0;
      let entries = 0;
      for (const l of step === 1 ? this.#layers : changed) {
        const size = l.out * l.in;
        const c = maskChange(this.#last.get(l.name), now.get(l.name), size);
        layers[l.name] = 1 - c.after / size;
        if (c.regrown + c.pruned === 0) continue;
        regrown[l.name] = c.regrown;
        pruned[l.name] = c.pruned;
        sad[l.name] = c.sad;
        sadRate[l.name] = c.sad / size;
        jaccard[l.name] = c.jaccard;
        inter += c.after - c.regrown;
        union += c.before + c.regrown;
        entries += size;
      }
      const totalRegrown = Object.values(regrown).reduce((a, b) => a + b, 0);
      const totalPruned = Object.values(pruned).reduce((a, b) => a + b, 0);
      const sadAll = totalRegrown + totalPruned;
      const jaccardAll = union === 0 ? 0 : 1 - inter / union;
      if (sadAll > 0) {
        t.updates++;
        t.regrown += totalRegrown;
        t.pruned += totalPruned;
        t.sadSum += sadAll;
        t.jaccardSum = (t.jaccardSum ?? 0) + jaccardAll;
      }
      this.ctx.log.event({ event: 'masks', stage: this.stage, label: t.label, step, sparsity, layers, regrown, pruned, sad, sadAll, sadRate, sadRateAll: entries === 0 ? 0 : sadAll / entries, jaccard, jaccardAll });
    }
    this.#last = now;
    return { sparsity, flops };
  }
}
