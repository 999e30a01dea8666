// prune method 'experts': task-specific expert pruning of mixture-of-experts layers
// (@sparse/pruners RoutingAccumulator / expertsToKeep). Calibration tokens are routed through the
// model; each MoE layer keeps its `keep` most used experts; the model is rebuilt with `keep` experts
// per layer (router rows and expert MLPs of the others removed), so it is smaller, not just masked.

import * as tf from '@tensorflow/tfjs-core';
import { expertPruneConfigSchema, expertsToKeep, RoutingAccumulator, type ExpertPruneConfig } from '@sparse/pruners';
import { createModel } from '../../model/index.js';
import type { ModelSpec } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { calibrationBatches } from '../../stages/calibration.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';

const EXPERT = /^(.*\.mlp\.experts\.)(\d+)(\..*)$/;
const BLOCK = /(?:^h|\.layers)\.(\d+)\./;

export const expertsMethod: TrainerMethod<'prune'> = {
  kind: 'prune',
  name: 'experts',
  describe: 'task-specific expert pruning of MoE layers: keep the experts the router uses most on calibration data from the stage\'s data (the model is rebuilt smaller)',
  schema: expertPruneConfigSchema,
  from: '@sparse/pruners',
  run: runExpertPruneStage,
};

async function runExpertPruneStage(args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as ExpertPruneConfig;
  const moe = ctx.model.spec.moe as { experts: number; topK: number } | undefined;
  if (!moe) throw new Error(`stages[${index}].method: 'experts' prunes mixture-of-experts layers; this model has none (set model.moe)`);
  if (cfg.keep > moe.experts || cfg.keep < moe.topK) throw new Error(`stages[${index}].config.keep: must be in ${moe.topK}..${moe.experts} (the router's topK .. experts), got ${cfg.keep}`);
  if (ctx.adapter) throw new Error(`${label}: an adapter is attached and not merged; merge it before pruning`);
  const accs = Array.from({ length: ctx.model.blocks }, (_, b) => new RoutingAccumulator(moe.experts, { name: `block ${b}` }));
  const hooks = {
    ...ctx.hooks(),
    routing: (block: number, chosen: tf.Tensor2D, gates: tf.Tensor2D) => accs[block]!.add(chosen.dataSync(), gates.dataSync(), moe.topK),
  };
  for (const { ids, b, len } of calibrationBatches(ctx, index, stage.data)) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  const kept = accs.map((a) => expertsToKeep(a.scores(cfg.metric), cfg.keep, moe.topK));
  const spec = { ...ctx.model.spec, moe: { experts: cfg.keep, topK: moe.topK } } as ModelSpec;
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
  const usage = accs.map((a, b) => `block ${b}: kept ${kept[b]!.join(',')} of ${moe.experts}`).join('; ');
  ctx.log.say(`${label}: expert pruning by ${cfg.metric} -> ${usage}; ${before.toLocaleString('en-US')} -> ${next.numParams().toLocaleString('en-US')} parameters`);
  ctx.log.event({ event: 'experts', stage: index, kept, scores: accs.map((a) => Array.from(a.scores(cfg.metric))) });
  return { summary: `kept ${cfg.keep} of ${moe.experts} experts per layer (${usage}); ${before} -> ${next.numParams()} parameters` };
}
