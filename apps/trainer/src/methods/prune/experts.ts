// prune method 'experts': task-specific expert pruning of mixture-of-experts layers
// (@sparse/pruners RoutingAccumulator / expertsToKeep / expertsToDrop). Each MoE layer keeps its `keep`
// most used experts; the model is then rebuilt with `keep` experts per layer (router rows and expert
// MLPs of the others removed), so it is smaller, not just masked.
//
// One-shot (no `progressive`): tokens of the calibration windows of the stage's `data` (the task's:
// `data: shifted`) are routed through the model and counted. Progressive (Chen et al. 2022, "Task-Specific
// Expert Pruning for Sparse Mixture-of-Experts"): every weight fine-tunes on the stage's data for
// progressive.steps steps; the routing of the training batches is counted per layer, and after every
// `every` steps each layer drops its `drop` least-used active experts (counted since its last drop) until
// `keep` remain. A dropped expert leaves the routing at once: its router logit gets -1e9 (the router's
// product goes through the linearProduct hook), so no token picks it while an active one is left and its
// gate is exp(-1e9) = 0, i.e. the remaining gates are re-normalized over the active experts. The active
// sets and the windows' counts ride in the stage state, so a run stopped mid-stage resumes exactly.
//
// `keep` may be below the router's top-k: the rebuilt model routes each token to min(topK, keep) experts
// with gates softmax over their logits (renormalizedRouting of @sparse/pruners is that definition).
// Differs from the paper: the paper drops down to one expert on its own schedule and counts usage as the
// share of tokens routed to an expert ("professional degree"); here `keep`, `every`, `drop` and the metric
// (frequency or gate mass) are the recipe's, and the fine-tuning uses the trainer's Adam, warmup + cosine.

import * as tf from '@tensorflow/tfjs-core';
import { expertDropsAt, expertPruneConfigSchema, expertsToDrop, expertsToKeep, RoutingAccumulator, type ExpertPruneConfig, type RoutingAccumulatorState } from '@sparse/pruners';
import { createModel } from '../../model/index.js';
import type { ForwardHooks, LinearInfo, ModelSpec } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { calibrationBatches } from '../../stages/calibration.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';

const EXPERT = /^(.*\.mlp\.experts\.)(\d+)(\..*)$/;
const BLOCK = /(?:^h|\.layers)\.(\d+)\./;

export const expertsMethod: TrainerMethod<'prune'> = {
  kind: 'prune',
  name: 'experts',
  describe:
    "task-specific expert pruning of MoE layers: keep the experts the router uses most on the stage's data, one-shot from calibration windows or progressively while fine-tuning (Chen et al. 2022; differs: keep/every/drop are the recipe's, not the paper's drop-to-one schedule); keep may go below the router's top-k (gates re-normalized); the model is rebuilt smaller",
  paper: 'Chen et al. 2022, Task-Specific Expert Pruning for Sparse Mixture-of-Experts',
  differs: [
    'keep, every, drop and the metric (frequency or gate mass) are the recipe\'s; the paper drops down to one expert on its own schedule and counts usage as the share of tokens routed to an expert',
    'the fine-tuning uses the trainer\'s Adam with warmup + cosine',
  ],
  schema: expertPruneConfigSchema,
  from: '@sparse/pruners',
  run: runExpertPruneStage,
};

type MoE = { experts: number; topK: number };

/** What a checkpoint inside a progressive stage carries: each layer's active experts and its usage window. */
interface ProgressiveState {
  active: number[][];
  windows: RoutingAccumulatorState[];
}

/**
 * Hooks that route around dropped experts (their router logits get -1e9) and count the routing of the
 * active ones: each token's first min(topK, active) choices, which are active ones since a dropped
 * expert's logit is below every active one's.
 */
export function activeRoutingHooks(base: ForwardHooks, params: Readonly<Record<string, tf.Tensor>>, moe: MoE, active: readonly (readonly number[])[], accs: readonly RoutingAccumulator[]): ForwardHooks {
  const offsets = active.map((a) => {
    if (a.length === moe.experts) return undefined;
    const m = new Float32Array(moe.experts).fill(-1e9);
    for (const e of a) m[e] = 0;
    return m;
  });
  return {
    ...base,
    linearProduct: (info: LinearInfo, x: tf.Tensor2D) => {
      if (info.role !== 'moe.router') return base.linearProduct?.(info, x);
      const p = params[info.name]!;
      const y: tf.Tensor2D = tf.matMul(x, (base.weight?.(info.name, p) ?? p) as tf.Tensor2D, false, true);
      const off = offsets[info.block];
      return off ? tf.add<tf.Tensor2D>(y, tf.tensor1d(off)) : y;
    },
    routing: (block: number, chosen: tf.Tensor2D, gates: tf.Tensor2D) => {
      const k = Math.min(moe.topK, active[block]!.length);
      const [n] = chosen.shape;
      const c = chosen.dataSync();
      const g = gates.dataSync();
      const cc = new Int32Array(n * k);
      const gg = new Float32Array(n * k);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < k; j++) {
          cc[r * k + j] = c[r * moe.topK + j]!;
          gg[r * k + j] = g[r * moe.topK + j]!;
        }
      }
      accs[block]!.add(cc, gg, k);
      base.routing?.(block, chosen, gates);
    },
  };
}

/** Progressive dropping while fine-tuning every weight; returns each layer's active experts at the end. */
async function progressiveDrop(args: StageArgs<StageOf<'prune'>>, cfg: ExpertPruneConfig, moe: MoE, accs: RoutingAccumulator[]): Promise<{ active: number[][]; summary: string }> {
  const { ctx, stage, index, label } = args;
  const p = cfg.progressive!;
  const saved = args.resume?.stageState?.experts as ProgressiveState | undefined;
  const active: number[][] = saved ? saved.active.map((a) => [...a]) : accs.map(() => Array.from({ length: moe.experts }, (_, e) => e));
  if (saved) accs.forEach((a, b) => a.load(saved.windows[b]!));
  const schedule = { experts: moe.experts, keep: cfg.keep, every: p.every, drop: p.drop };
  let hooks = activeRoutingHooks(ctx.hooks({ maskBase: true }), ctx.model.params, moe, active, accs);
  const r = await optimize(args, { steps: p.steps, batch: p.batch, lr: p.lr, minLrRatio: 0.1, clipNorm: 1, checkpointEvery: p.checkpointEvery, data: stage.data }, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    // the drop after step t happens before step t + 1 (so a checkpoint at t holds t's counts, not yet dropped)
    beforeStep: (step) => {
      const n = expertDropsAt(step - 1, schedule);
      if (n === 0) return;
      accs.forEach((acc, b) => {
        const scores = acc.scores(cfg.metric);
        const dropped = expertsToDrop(scores, active[b]!, Math.min(n, active[b]!.length - cfg.keep));
        active[b] = active[b]!.filter((e) => !dropped.includes(e));
        ctx.log.event({ event: 'expert-drop', stage: index, label, step: step - 1, block: b, dropped, active: active[b], scores: Array.from(scores) });
        acc.reset();
      });
      hooks = activeRoutingHooks(ctx.hooks({ maskBase: true }), ctx.model.params, moe, active, accs);
    },
    stageState: () => ({ experts: { active, windows: accs.map((a) => a.state()) } satisfies ProgressiveState }),
  });
  return { active, summary: `fine-tuned ${p.steps} steps dropping ${p.drop} per layer every ${p.every}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}` };
}

async function runExpertPruneStage(args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as ExpertPruneConfig;
  const moe = ctx.model.spec.moe as MoE | undefined;
  if (!moe) throw new Error(`stages[${index}].method: 'experts' prunes mixture-of-experts layers; this model has none (set model.moe)`);
  if (cfg.keep > moe.experts) throw new Error(`stages[${index}].config.keep: must be in 1..${moe.experts} (the model's experts per layer), got ${cfg.keep}`);
  if (ctx.adapter) throw new Error(`${label}: an adapter is attached and not merged; merge it before pruning`);
  const accs = Array.from({ length: ctx.model.blocks }, (_, b) => new RoutingAccumulator(moe.experts, { name: `block ${b}` }));
  let kept: number[][];
  let how: string;
  if (cfg.progressive) {
    const done = await progressiveDrop(args, cfg, moe, accs);
    // a schedule too short to reach `keep` ends with one last drop by the current window's usage
    kept = done.active.map((a, b) => (a.length > cfg.keep ? a.filter((e) => !expertsToDrop(accs[b]!.scores(cfg.metric), a, a.length - cfg.keep).includes(e)) : a));
    how = done.summary;
  } else {
    const all = accs.map(() => Array.from({ length: moe.experts }, (_, e) => e));
    const hooks = activeRoutingHooks(ctx.hooks(), ctx.model.params, moe, all, accs);
    for (const { ids, b, len } of calibrationBatches(ctx, index, stage.data)) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
    kept = accs.map((a) => expertsToKeep(a.scores(cfg.metric), cfg.keep));
    how = `by ${cfg.metric} on ${accs[0]!.tokens} calibration tokens`;
  }
  const topK = Math.min(moe.topK, cfg.keep);
  const spec = { ...ctx.model.spec, moe: { experts: cfg.keep, topK } } as ModelSpec;
  const old = ctx.model.params;
  const rename = (name: string): string | undefined => {
    const m = EXPERT.exec(name);
    if (!m) return name;
    const block = Number(BLOCK.exec(name)![1]);
    const pos = kept[block]!.indexOf(Number(m[2]));
    return pos < 0 ? undefined : `${m[1]}${pos}${m[3]}`;
  };
  const values = new Map<string, Float32Array>();
  for (const [name, v] of Object.entries(old)) {
    if (name.endsWith('mlp.router.weight')) {
      const block = Number(BLOCK.exec(name)![1]);
      const d = v.shape[1]!;
      const all = v.dataSync() as Float32Array;
      const rows = new Float32Array(cfg.keep * d);
      kept[block]!.forEach((e, i) => rows.set(all.subarray(e * d, (e + 1) * d), i * d));
      values.set(name, rows);
      continue;
    }
    const to = rename(name);
    if (to !== undefined) values.set(to, Float32Array.from(v.dataSync() as Float32Array));
  }
  const masks = [...ctx.masks].flatMap(([n, m]) => (n.endsWith('mlp.router.weight') ? [] : rename(n) === undefined ? [] : [[rename(n)!, m] as const]));
  const before = ctx.model.numParams();
  const next = createModel(spec, { values });
  ctx.model.dispose();
  ctx.replaceModel(next);
  ctx.masks.clear();
  for (const [n, m] of masks) ctx.setMask(n, m);
  const usage = kept.map((k, b) => `block ${b}: kept ${k.join(',')} of ${moe.experts}`).join('; ');
  const below = topK < moe.topK ? `; top-${moe.topK} routing becomes top-${topK} over the kept experts (gates re-normalized)` : '';
  ctx.log.say(`${label}: expert pruning ${how} -> ${usage}${below}; ${before.toLocaleString('en-US')} -> ${next.numParams().toLocaleString('en-US')} parameters`);
  ctx.log.event({ event: 'experts', stage: index, kept, topK, scores: accs.map((a) => Array.from(a.scores(cfg.metric))), counts: accs.map((a) => Array.from(a.counts)), tokens: accs.map((a) => a.tokens) });
  return { summary: `kept ${cfg.keep} of ${moe.experts} experts per layer (${usage})${below}; ${how}; ${before} -> ${next.numParams()} parameters` };
}
