// 'lemo': token elimination for long inputs as an activation method. In each chosen block, the attention's
// input site (attn.qkv or attn.q, the block's first linear input in a forward) scores every token from its
// input row, keeps the `keep` fraction per sequence (always the first `sink` and the last `recent`), and
// zeroes the others' rows; every later linear-input site of the block zeroes the same rows. A zeroed row
// means the token skips the block's attention and MLP compute while the residual stream carries it on.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import type { ActivationMethod, Site, SiteSample, SiteSparsifier } from '../types.js';
import { restoredShared } from '../predict/link.js';
import { deviationFromMean, rowNorms } from './scores.js';
import { selectTokens } from './select.js';

export const lemoConfigSchema = z.strictObject({
  /** Fraction of each sequence's tokens that take part in a chosen block. */
  keep: z.number().gt(0).max(1).default(0.5),
  /** Leading tokens always kept (attention sinks). */
  sink: z.int().min(0).default(4),
  /** Trailing tokens always kept. */
  recent: z.int().min(0).default(16),
  /** Blocks where tokens are eliminated (at least one; the others stay dense). */
  blocks: z.array(z.int().min(0)).min(1),
  /**
   * Tokens per sequence: the rows a site receives are split into sequences of this length (a shorter last
   * part is a sequence of its own). Absent: all rows of a call are one sequence.
   */
  window: z.int().min(1).optional(),
  /**
   * Informativeness from the block input row: 'deviation' (distance from the sequence's mean row) or 'norm'.
   */
  score: z.enum(['deviation', 'norm']).default('deviation'),
});

export type LemoConfig = z.output<typeof lemoConfigSchema>;
export type LemoConfigInput = z.input<typeof lemoConfigSchema>;

/** The roles that decide (the block's attention input) and those that follow the decision. */
const DECIDE_ROLES: ReadonlySet<string> = new Set(['attn.qkv', 'attn.q']);
const FOLLOW_ROLES: ReadonlySet<string> = new Set(['attn.k', 'attn.v', 'attn.out', 'mlp.up', 'mlp.gate', 'mlp.down']);

export type LemoState = { role: 'decide' | 'follow'; block: number };

/** The kept tokens of the current forward of one block. */
class TokenDecision {
  #tokens = -1;
  #keep: Uint8Array | undefined;
  constructor(readonly block: number) {}
  set(tokens: number, keep: Uint8Array): void {
    this.#tokens = tokens;
    this.#keep = keep;
  }
  get(site: string, tokens: number): Uint8Array {
    if (this.#keep === undefined) {
      throw new ArgumentError(`${site}: lemo has no token selection for block ${this.block}: the block's attention input site (attn.qkv / attn.q) must be applied first in each forward (and, after restore, every site restored with the same parsed config object)`);
    }
    if (tokens !== this.#tokens) throw new ShapeError(`${site}: applied to ${tokens} tokens but block ${this.block}'s selection was made for ${this.#tokens}`);
    return this.#keep;
  }
}

/** Keep mask [tokens] over the rows x [tokens, features], sequence by sequence. */
export function lemoSelection(config: LemoConfig, x: ArrayLike<number>, tokens: number, features: number): Uint8Array {
  const window = config.window ?? Math.max(1, tokens);
  const keep = new Uint8Array(tokens);
  for (let start = 0; start < tokens; start += window) {
    const len = Math.min(window, tokens - start);
    const rows = x instanceof Float32Array ? x.subarray(start * features, (start + len) * features) : Array.prototype.slice.call(x, start * features, (start + len) * features) as number[];
    const scores = config.score === 'norm' ? rowNorms(rows, len, features) : deviationFromMean(rows, len, features);
    keep.set(selectTokens(scores, config), start);
  }
  return keep;
}

function zeroRows(x: Float32Array, keep: Uint8Array, features: number): number {
  let kept = 0;
  for (let t = 0; t < keep.length; t++) {
    if (keep[t] === 1) kept += features;
    else x.fill(0, t * features, (t + 1) * features);
  }
  return kept;
}

function sparsifier(config: LemoConfig, site: Site, decision: TokenDecision, role: LemoState['role']): SiteSparsifier {
  const state: LemoState = { role, block: site.block };
  return {
    site: site.name,
    apply(x, tokens) {
      if (!Number.isInteger(tokens) || tokens < 0 || x.length !== tokens * site.features) throw new ShapeError(`${site.name}: x has ${x.length} values, expected ${tokens} tokens x ${site.features} features`);
      if (role === 'decide') decision.set(tokens, lemoSelection(config, x, tokens, site.features));
      return zeroRows(x, decision.get(site.name, tokens), site.features);
    },
    state: () => state,
  };
}

function calibrate(config: LemoConfig, samples: readonly SiteSample[]): SiteSparsifier[] {
  const decisions = new Map<number, TokenDecision>();
  const deciders = new Map<number, string>();
  for (const s of samples) {
    if (!DECIDE_ROLES.has(s.site.role)) continue;
    if (deciders.has(s.site.block)) throw new ArgumentError(`lemo: block ${s.site.block} has two attention input sites (${deciders.get(s.site.block)}, ${s.site.name})`);
    deciders.set(s.site.block, s.site.name);
    decisions.set(s.site.block, new TokenDecision(s.site.block));
  }
  return samples.map((s) => {
    const d = decisions.get(s.site.block);
    if (d === undefined) throw new ArgumentError(`lemo: block ${s.site.block} has no attention input sample (attn.qkv or attn.q), which decides the block's tokens`);
    return sparsifier(config, s.site, d, DECIDE_ROLES.has(s.site.role) ? 'decide' : 'follow');
  });
}

function restore(config: LemoConfig, site: Site, state: unknown): SiteSparsifier {
  const st = state as LemoState | null;
  if (typeof st !== 'object' || st === null || (st.role !== 'decide' && st.role !== 'follow') || st.block !== site.block) {
    throw new ArgumentError(`lemo: restore ${site.name}: not a lemo state of block ${site.block}`);
  }
  if ((st.role === 'decide') !== DECIDE_ROLES.has(site.role)) throw new ArgumentError(`lemo: restore ${site.name}: a '${st.role}' state does not fit role '${site.role}'`);
  return sparsifier(config, site, restoredShared(config, `lemo:${site.block}`, () => new TokenDecision(site.block)), st.role);
}

export const lemoMethod: ActivationMethod<typeof lemoConfigSchema> = {
  kind: 'activation',
  name: 'lemo',
  describe: 'LeMo token elimination (Wang et al. 2025): in chosen blocks the least informative tokens skip attention and MLP; here informativeness is scored from the block input row (no learned pattern predictor) and rows are zeroed, not removed',
  paper: 'Wang et al. 2025, LeMo: Enabling LEss Token Involvement for MOre Context Fine-tuning',
  differs: [
    'LeMo\'s own informativeness measure and its learned pattern predictors are not reproduced: tokens are scored from the block input row (deviation from the mean row, or norm)',
    'dropped tokens\' rows are zeroed, not removed: a dropped token still sits in the other tokens\' attention as a key computed from a zero row',
  ],
  schema: lemoConfigSchema,
  needs: [],
  acts: (config, site) => site.kind === 'linear-input' && config.blocks.includes(site.block) && (DECIDE_ROLES.has(site.role) || FOLLOW_ROLES.has(site.role)),
  calibrate,
  restore,
};
