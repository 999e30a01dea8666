// train method 'dpo': Direct Preference Optimization (Rafailov et al. 2023) on preference pairs
// {prompt, chosen, rejected} from a JSONL file. The reference policy is the model as the stage found
// it: its weights are snapshotted at the stage start and every pair's reference log-probabilities
// computed from that frozen copy once (they travel in the stage state, so a resumed stage uses the
// same ones). The loss is −log σ(β[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))]), the
// log-probabilities summed over response tokens only. With prefixSharing each pair is ONE sequence
// [prompt | chosen | rejected] under @sparse/attention's prefix-sharing mask (each response sees the
// prompt and itself, never the other) with position ids continuing from the prompt for both
// responses, so the prompt is encoded once; without it, [prompt | chosen] and [prompt | rejected]
// are two sequences. Both give the same log-probabilities.

import { readFileSync } from 'node:fs';
import { prefixSharing as prefixSharingPattern, toBlockMask } from '@sparse/attention';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { DataFileError } from '../../data/files.js';
import { jsonlRecords } from '../../data/jsonl.js';
import type { Tokenizer } from '../../data/tokenizer.js';
import { layoutAllows, layoutFromPredicate, specLayout, type AttentionLayout, type AttentionSpec, type BatchAttention } from '../../model/attention-op.js';
import type { ForwardHooks, LanguageModel } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { refuseAttachedAdapter } from './weights.js';

export const dpoConfigSchema = z.strictObject({
  /** The JSONL file of pairs (default: the recipe's data.path, when its data is a JSONL file). */
  file: z.string().min(1).optional(),
  /** Field names of the prompt, the preferred and the dispreferred response. */
  prompt: z.string().min(1).default('prompt'),
  chosen: z.string().min(1).default('chosen'),
  rejected: z.string().min(1).default('rejected'),
  /** Inverse temperature of the implicit reward (how far the policy may move from the reference). */
  beta: z.number().positive().default(0.1),
  /** Each pair as one sequence [prompt | chosen | rejected] under the prefix-sharing mask. */
  prefixSharing: z.boolean().default(true),
  /** Tile side of the attention layouts. */
  blockSize: z.int().min(1).default(8),
});
export type DPOConfig = z.output<typeof dpoConfigSchema>;

/** One preference pair as text. */
export interface PreferenceText {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** One preference pair as token ids. */
export interface PreferencePair {
  prompt: Int32Array;
  chosen: Int32Array;
  rejected: Int32Array;
}

/** The pairs of a JSONL text (one object per line, blank lines skipped); errors name the line. */
export function parsePreferenceJSONL(text: string, source: string, fields: { prompt: string; chosen: string; rejected: string } = { prompt: 'prompt', chosen: 'chosen', rejected: 'rejected' }): PreferenceText[] {
  const out: PreferenceText[] = [];
  for (const { rec, where } of jsonlRecords(text, source, [fields.prompt, fields.chosen, fields.rejected])) {
    for (const f of [fields.chosen, fields.rejected]) if (rec[f]!.length === 0) throw new DataFileError(source, `${where}: field "${f}" is empty`);
    out.push({ prompt: rec[fields.prompt]!, chosen: rec[fields.chosen]!, rejected: rec[fields.rejected]! });
  }
  if (out.length === 0) throw new DataFileError(source, `${source} has no preference pairs`);
  return out;
}

/**
 * Token ids of a pair, cut to fit a context of `ctx`: the prompt loses tokens from its start (at
 * least one is kept), then the responses from their ends. Shared: prompt + chosen + rejected ≤ ctx;
 * else prompt + the longer response ≤ ctx.
 */
export function encodePair(text: PreferenceText, tokenizer: Tokenizer, ctx: number, shared: boolean): PreferencePair {
  let prompt = tokenizer.encode(text.prompt);
  let chosen = tokenizer.encode(text.chosen);
  let rejected = tokenizer.encode(text.rejected);
  if (prompt.length === 0) throw new DataFileError('preference pairs', `a pair has an empty prompt after tokenizing (${JSON.stringify(text.prompt)})`);
  const need = () => prompt.length + (shared ? chosen.length + rejected.length : Math.max(chosen.length, rejected.length));
  const excess = need() - ctx;
  if (excess > 0) prompt = prompt.subarray(Math.min(excess, prompt.length - 1));
  while (need() > ctx) {
    if (chosen.length >= rejected.length && chosen.length > 1) chosen = chosen.subarray(0, chosen.length - 1);
    else if (rejected.length > 1) rejected = rejected.subarray(0, rejected.length - 1);
    else throw new DataFileError('preference pairs', `a pair cannot fit the model context of ${ctx} tokens`);
  }
  return { prompt, chosen, rejected };
}

/** A batch of pairs laid out for one forward pass (plain arrays). */
export interface PackedPairs {
  /** Sequences and their length (padded with token 0 at the end). */
  rows: number;
  t: number;
  ids: Int32Array;
  /** Per row and position: the token it predicts for the chosen (rejected) response and whether it counts. */
  targetsC: Int32Array;
  selC: Float32Array;
  targetsR: Int32Array;
  selR: Float32Array;
  /** Prefix sharing: the per-sequence layouts and position ids. */
  attention?: BatchAttention;
  /** Pairs in the batch (rows = pairs shared, 2 * pairs otherwise: chosen rows, then rejected rows). */
  pairs: number;
}

/**
 * Lays out pairs. Shared: one row per pair [prompt | chosen | rejected], the prefix-sharing pattern
 * (intersected with the model's static pattern, read at the position ids) and position ids 0..P-1,
 * P.., P..; the first token of either response is predicted at the prompt's last position. Separate:
 * rows [prompt | chosen] then [prompt | rejected] with ordinary positions.
 */
export function packPairs(pairs: readonly PreferencePair[], opts: { prefixSharing: boolean; blockSize: number; ctx: number; pattern?: AttentionSpec }): PackedPairs {
  const n = pairs.length;
  const shared = opts.prefixSharing;
  const lens = shared ? pairs.map((p) => p.prompt.length + p.chosen.length + p.rejected.length) : pairs.flatMap((p) => [p.prompt.length + p.chosen.length]).concat(pairs.map((p) => p.prompt.length + p.rejected.length));
  const rows = lens.length;
  const t = Math.max(...lens);
  const ids = new Int32Array(rows * t);
  const targetsC = new Int32Array(rows * t);
  const targetsR = new Int32Array(rows * t);
  const selC = new Float32Array(rows * t);
  const selR = new Float32Array(rows * t);
  const mark = (row: number, predictedAt: number, token: number, which: 'c' | 'r') => {
    const at = row * t + predictedAt;
    if (which === 'c') {
      targetsC[at] = token;
      selC[at] = 1;
    } else {
      targetsR[at] = token;
      selR[at] = 1;
    }
  };
  if (!shared) {
    pairs.forEach((p, i) => {
      for (const [row, resp, which] of [[i, p.chosen, 'c'], [n + i, p.rejected, 'r']] as const) {
        ids.set(p.prompt, row * t);
        ids.set(resp, row * t + p.prompt.length);
        for (let k = 0; k < resp.length; k++) mark(row, p.prompt.length - 1 + k, resp[k]!, which);
      }
    });
    return { rows, t, ids, targetsC, selC, targetsR, selR, pairs: n };
  }
  const positions = new Int32Array(rows * t);
  const layouts: AttentionLayout[] = [];
  const staticLayout = opts.pattern ? specLayout(opts.pattern, opts.ctx) : undefined;
  pairs.forEach((p, i) => {
    const P = p.prompt.length;
    const c = p.chosen.length;
    const r = p.rejected.length;
    ids.set(p.prompt, i * t);
    ids.set(p.chosen, i * t + P);
    ids.set(p.rejected, i * t + P + c);
    for (let k = 0; k < c; k++) mark(i, k === 0 ? P - 1 : P + k - 1, p.chosen[k]!, 'c');
    for (let k = 0; k < r; k++) mark(i, k === 0 ? P - 1 : P + c + k - 1, p.rejected[k]!, 'r');
    const ps = prefixSharingPattern({ prompt: P, responses: [c, r] });
    const len = ps.length;
    positions.set(ps.positionIds, i * t);
    // padding: positions 0, each pad token sees itself only (nothing real looks at it)
    const pos = (j: number) => (j < len ? ps.positionIds[j]! : 0);
    if (len === t && !staticLayout) layouts.push(toBlockMask(ps.pattern, { seq: t, blockSize: opts.blockSize }));
    else {
      layouts.push(
        layoutFromPredicate(t, opts.blockSize, (a, b) => {
          if (a >= len || b >= len) return a === b;
          return ps.pattern.allowed(a, b) && (!staticLayout || layoutAllows(staticLayout, pos(a), pos(b)));
        }),
      );
    }
  });
  return { rows, t, ids, targetsC, selC, targetsR, selR, attention: { layouts, positions }, pairs: n };
}

/** Summed response log-probabilities [pairs] of chosen and rejected under the model (differentiable). */
export function pairLogProbs(model: LanguageModel, packed: PackedPairs, hooks: ForwardHooks = {}): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  const { rows, t, pairs } = packed;
  const vocab = model.spec.vocab;
  const ids = tf.tensor2d(packed.ids, [rows, t], 'int32');
  const logits = model.logits2d(ids, packed.attention ? { ...hooks, attention: packed.attention } : hooks);
  const logp = tf.logSoftmax(logits);
  const picked = (targets: Int32Array, sel: Float32Array) => {
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), vocab), 'float32');
    const perPos = tf.sum(tf.mul(logp, onehot), 1);
    return tf.sum(tf.mul(tf.reshape(perPos, [rows, t]), tf.tensor2d(sel, [rows, t])), 1) as tf.Tensor1D;
  };
  const c = picked(packed.targetsC, packed.selC);
  const r = picked(packed.targetsR, packed.selR);
  if (rows === pairs) return { chosen: c, rejected: r };
  return { chosen: tf.slice(c, [0], [pairs]), rejected: tf.slice(r, [pairs], [pairs]) };
}

/** The DPO loss: mean over pairs of −log σ(β[(π_c − ref_c) − (π_r − ref_r)]). */
export function dpoLoss(policyChosen: tf.Tensor1D, policyRejected: tf.Tensor1D, refChosen: tf.Tensor1D, refRejected: tf.Tensor1D, beta: number): tf.Scalar {
  const z = tf.mul(tf.sub(tf.sub(policyChosen, refChosen), tf.sub(policyRejected, refRejected)), beta);
  // −log σ(z) = softplus(−z) (tf.logSigmoid's gradient reads a disposed input inside variableGrads)
  return tf.mean(tf.softplus(tf.neg(z))) as tf.Scalar;
}

/** Where the pairs come from: the config's file, else the recipe's JSONL data file. */
function pairsFile(args: StageArgs<StageOf<'train'>>, cfg: DPOConfig): string {
  if (cfg.file !== undefined) return cfg.file;
  const data = args.ctx.recipe.data;
  if (data.source === 'jsonl' && data.path !== undefined && data.path !== '-') return data.path;
  throw new Error(`${args.label}: dpo needs preference pairs: set config.file, or use a JSONL data file (data: { source: jsonl, path: ... })`);
}

/** Reference or policy log-probabilities of every pair, [2 * pairs] (chosen, rejected interleaved), without gradients. */
function allLogProbs(model: LanguageModel, pairs: readonly PreferencePair[], batch: number, opts: Parameters<typeof packPairs>[1], hooks: ForwardHooks): Float32Array {
  const out = new Float32Array(2 * pairs.length);
  for (let s = 0; s < pairs.length; s += batch) {
    const part = pairs.slice(s, s + batch);
    tf.tidy(() => {
      const { chosen, rejected } = pairLogProbs(model, packPairs(part, opts), hooks);
      const c = chosen.dataSync();
      const r = rejected.dataSync();
      for (let i = 0; i < part.length; i++) {
        out[2 * (s + i)] = c[i]!;
        out[2 * (s + i) + 1] = r[i]!;
      }
    });
  }
  return out;
}

/** Mean reward margin β[(π_c − ref_c) − (π_r − ref_r)], the share of pairs where it is positive, and the mean log π(c) − log π(r). */
export function preferenceStats(policy: Float32Array, reference: Float32Array, beta: number): { rewardMargin: number; accuracy: number; logProbMargin: number } {
  const n = policy.length / 2;
  let margin = 0;
  let right = 0;
  let lp = 0;
  for (let i = 0; i < n; i++) {
    const m = beta * (policy[2 * i]! - reference[2 * i]! - (policy[2 * i + 1]! - reference[2 * i + 1]!));
    margin += m;
    if (m > 0) right++;
    lp += policy[2 * i]! - policy[2 * i + 1]!;
  }
  return { rewardMargin: margin / n, accuracy: right / n, logProbMargin: lp / n };
}

async function runDPO(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as DPOConfig;
  refuseAttachedAdapter(args);
  const file = pairsFile(args, cfg);
  const texts = parsePreferenceJSONL(readFileSync(file, 'utf8'), file, cfg);
  const spec = ctx.model.spec;
  const pairs = texts.map((p) => encodePair(p, ctx.data.main.tokenizer, spec.ctx, cfg.prefixSharing));
  const opts = { prefixSharing: cfg.prefixSharing, blockSize: cfg.blockSize, ctx: spec.ctx, ...(spec.attention ? { pattern: spec.attention as AttentionSpec } : {}) };
  // pruned weights stay pruned; the reference is the model as this stage found it (frozen)
  const hooks = ctx.hooks({ maskBase: true });
  const saved = args.resume?.stageState?.dpoReference;
  const reference = saved !== undefined ? Float32Array.from(saved as ArrayLike<number>) : allLogProbs(ctx.model, pairs, stage.batch, opts, hooks);
  if (reference.length !== 2 * pairs.length) throw new Error(`${label}: the checkpoint's reference log-probabilities cover ${reference.length / 2} pairs, the file has ${pairs.length}`);
  // the reference is the stage-start model: its own statistics are the stage's starting point
  const before = preferenceStats(reference, reference, cfg.beta);
  ctx.log.say(`${label}: DPO on ${pairs.length} preference pairs from ${file} (beta ${cfg.beta}, ${cfg.prefixSharing ? 'prefix sharing: one sequence per pair' : 'two sequences per pair'})`);
  if (saved === undefined) ctx.log.event({ event: 'dpo', stage: index, label, at: 'start', pairs: pairs.length, ...before });
  // a fixed shuffled order from the recipe seed, walked cyclically: step s's pairs depend on s alone
  const order = Array.from(pairs.keys());
  const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('pairs');
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const variables = new Map(Object.entries(ctx.model.params));
  const r = await optimize(args, stage, {
    variables,
    loss: (_ids, _targets, step) => {
      const pick = Array.from({ length: Math.min(stage.batch, pairs.length) }, (_, i) => order[((step - 1) * stage.batch + i) % pairs.length]!);
      const { chosen, rejected } = pairLogProbs(ctx.model, packPairs(pick.map((k) => pairs[k]!), opts), hooks);
      const refC = tf.tensor1d(pick.map((k) => reference[2 * k]!));
      const refR = tf.tensor1d(pick.map((k) => reference[2 * k + 1]!));
      return dpoLoss(chosen, rejected, refC, refR, cfg.beta);
    },
    stageState: () => ({ dpoReference: reference }),
  });
  const after = preferenceStats(allLogProbs(ctx.model, pairs, stage.batch, opts, hooks), reference, cfg.beta);
  ctx.log.event({ event: 'dpo', stage: index, label, at: 'end', pairs: pairs.length, ...after });
  ctx.report.notes.push(`${label}: DPO reward margin ${before.rewardMargin.toFixed(4)} -> ${after.rewardMargin.toFixed(4)}, preference accuracy ${(after.accuracy * 100).toFixed(1)}%, mean log p(chosen) - log p(rejected) ${before.logProbMargin.toFixed(3)} -> ${after.logProbMargin.toFixed(3)}`);
  return { summary: `DPO loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}, reward margin ${after.rewardMargin.toFixed(4)}, accuracy ${(after.accuracy * 100).toFixed(1)}%` };
}

export const dpoMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'dpo',
  describe: 'Direct Preference Optimization on {prompt, chosen, rejected} JSONL pairs against the stage-start model as the frozen reference; prefixSharing packs each pair as one sequence under the prefix-sharing attention mask',
  paper: 'Rafailov et al. 2023, Direct Preference Optimization: Your Language Model is Secretly a Reward Model',
  differs: [],
  schema: dpoConfigSchema,
  from: '@sparse/trainer',
  run: runDPO,
};
