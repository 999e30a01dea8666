// The exploration state of the 'exploration' DST method (dst.ts): for every entry of every targeted layer,
// the number of the stage's steps during which it was active (in its layer's mask), and the upper-confidence
// bonus c · sqrt(ln t / (1 + n)) an inactive entry's regrowth score gets from it.
//
// The counts are brought up to date lazily: masks change only at updates, so at an update after t steps
// done every entry active since the previous one (at `since` steps done) was active for t − since more
// steps. A checkpoint keeps the counts as of `since` (and `since`); with the run's masks it holds, the
// resumed stage continues the same sums, so the counts stay exact across a resume.

import { maskIndices, type Mask } from '@sparse/masks';
import type { LinearInfo } from '../../model/types.js';

/** What a checkpoint keeps (stage state 'activity'); typed arrays go into the checkpoint file as int32 tensors. */
export interface ActivityState {
  since: number;
  counts: Record<string, Int32Array>;
}

export class ActivityCounts {
  private constructor(
    readonly counts: Map<string, Int32Array>,
    private at: number,
  ) {}

  /** Zero counts for `layers` ([out, in]) at 0 steps done. */
  static fresh(layers: readonly LinearInfo[]): ActivityCounts {
    return new ActivityCounts(new Map(layers.map((l) => [l.name, new Int32Array(l.out * l.in)])), 0);
  }

  /** The counts a checkpoint kept; each layer's must be there with its size. */
  static fromState(state: ActivityState, layers: readonly LinearInfo[]): ActivityCounts {
    const counts = new Map<string, Int32Array>();
    for (const l of layers) {
      const c = state.counts[l.name];
      if (!(c instanceof Int32Array) || c.length !== l.out * l.in) throw new Error(`checkpoint: the exploration counts of ${l.name} are missing or not ${l.out * l.in} int32 values`);
      counts.set(l.name, Int32Array.from(c));
    }
    if (!Number.isInteger(state.since) || state.since < 0) throw new Error(`checkpoint: exploration counts 'since' must be a non-negative integer, got ${String(state.since)}`);
    return new ActivityCounts(counts, state.since);
  }

  /** Steps done when the counts were last brought up to date. */
  get since(): number {
    return this.at;
  }

  /** Brings the counts up to `t` steps done: every entry active in `maskOf(layer)` (the masks held since `since`) gains t − since. */
  advance(t: number, maskOf: (name: string) => Mask): void {
    if (!Number.isInteger(t) || t < this.at) throw new Error(`ActivityCounts.advance: t must be an integer >= ${this.at}, got ${t}`);
    const d = t - this.at;
    if (d > 0) {
      for (const [name, c] of this.counts) for (const i of maskIndices(maskOf(name))) c[i] = c[i]! + d;
    }
    this.at = t;
  }

  state(): ActivityState {
    return { since: this.at, counts: Object.fromEntries([...this.counts].map(([n, c]) => [n, Int32Array.from(c)])) };
  }
}

/** c · sqrt(ln t / (1 + n)) for every entry with count n, after t >= 1 steps done (0 at t = 1). */
export function explorationBonus(counts: Int32Array, t: number, c: number): Float32Array {
  if (!Number.isInteger(t) || t < 1) throw new Error(`explorationBonus: t must be a positive integer, got ${t}`);
  const lnT = Math.log(t);
  return Float32Array.from(counts, (n) => c * Math.sqrt(lnT / (1 + n)));
}
