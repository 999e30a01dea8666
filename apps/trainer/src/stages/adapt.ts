// adapt stage: attach an adapter (any variant with a tfjs form) to the targeted linear layers, train
// only its tensors, save it in the PEFT layout, and merge it (through each base mask unless densify).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { attachAdapters, pruneDynamicRankModel } from '@sparse/lora-variants/tfjs';
import { savePeftAdapter } from '@sparse/lora-variants/node';
import type { StageOf } from '../recipe/schema.js';
import type { RunContext } from '../run/context.js';
import * as tf from '@tensorflow/tfjs-core';
import { HessianAccumulator } from '@sparse/pruners';
import { Random, tensor } from '@sparse/tensor';
import { sampleBatch } from '../data/dataset.js';
import type { LinearInfo } from '../model/types.js';
import { configFields, findMethod } from '../recipe/methods.js';
import { selectLinears, type StageArgs, type StageOutcome } from './common.js';
import { calibrationBatches, capture, type Accumulators } from './prune.js';
import { optimize } from './optimize.js';
import { runMezoStage, runSftStage } from './adapt-direct.js';

/** Attaches the stage's adapter (also used to rebuild it on resume). */
export function attachStageAdapter(ctx: RunContext, stage: StageOf<'adapt'>, index: number, label: string): void {
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const names = layers.map((l) => l.name);
  const weights = Object.fromEntries(names.map((n) => [n, ctx.model.params[n]!]));
  const masks = Object.fromEntries(names.filter((n) => ctx.masks.has(n)).map((n) => [n, ctx.masks.get(n)!]));
  const seed = ctx.recipe.seed * 1000 + index;
  const layerConfig = dataAwareConfigs(ctx, stage, index, layers);
  // biases by their weight's name, for variants with a bias part (SSF's shift)
  const biases = Object.fromEntries(layers.filter((l) => l.bias !== undefined).map((l) => [l.name, ctx.model.params[l.bias!]!]));
  const model = attachAdapters(weights, {
    biases,
    targets: names,
    variant: stage.method,
    config: stage.config,
    seed,
    masks,
    adapterName: label,
    ...(layerConfig ? { layerConfig: (n: string) => layerConfig.get(n) } : {}),
  });
  ctx.adapter = { stage: index, label, variant: stage.method, config: stage.config, targets: names, seed, model };
}

/**
 * Data-aware inits read calibration statistics the recipe cannot spell out: an input covariance per
 * layer (CorDA, Null-LoRA on the inputs' null space) or the loss gradient of each weight (LoRA-SB).
 * Computed here from calibration windows when the method's config has such a field and the recipe
 * left it out.
 */
function dataAwareConfigs(ctx: RunContext, stage: StageOf<'adapt'>, index: number, layers: LinearInfo[]): Map<string, Record<string, unknown>> | undefined {
  const method = findMethod('adapt', stage.method);
  const fields = new Set(configFields(method?.schema).map((f) => f.name));
  const cfg = stage.config as Record<string, unknown>;
  const wantsCov = fields.has('covariance') && cfg.covariance === undefined && cfg.inputs === undefined && (cfg.space === undefined ? !fields.has('space') : cfg.space === 'inputs');
  const wantsGrad = fields.has('gradient') && cfg.gradient === undefined;
  if (!wantsCov && !wantsGrad) return undefined;
  const out = new Map<string, Record<string, unknown>>(layers.map((l) => [l.name, {}]));
  if (wantsCov) {
    const accs = new Map<string, Accumulators>(layers.map((l) => [l.name, { hessian: new HessianAccumulator(l.in, { name: l.name }) }]));
    capture(ctx, calibrationBatches(ctx, index), accs);
    for (const l of layers) {
      const h = accs.get(l.name)!.hessian!.hessian();
      // the accumulator holds H = 2/n XᵀX; the covariance is XᵀX/n
      out.get(l.name)!.covariance = tensor(Float32Array.from(h.data as Float64Array, (x) => x / 2), [l.in, l.in]);
    }
    ctx.log.say(`${stage.method}: input covariances of ${layers.length} layers from calibration data`);
  }
  if (wantsGrad) {
    const data = ctx.data.main.train;
    const len = Math.min(ctx.model.spec.ctx, data.length - 1);
    const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('init-gradient');
    const vars = layers.map((l) => ctx.model.params[l.name]!);
    const sums = layers.map((l) => new Float32Array(l.out * l.in));
    const batches = 4;
    for (let k = 0; k < batches; k++) {
      const b = sampleBatch(data, 8, len, rng);
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => ctx.model.loss(tf.tensor2d(b.inputs, [8, len], 'int32'), tf.tensor2d(b.targets, [8, len], 'int32'), ctx.hooks()), vars);
        vars.forEach((v, i) => {
          const g = grads[v.name]!.dataSync() as Float32Array;
          for (let j = 0; j < g.length; j++) sums[i]![j]! += g[j]! / batches;
        });
      });
    }
    layers.forEach((l, i) => (out.get(l.name)!.gradient = tensor(sums[i]!, [l.out, l.in])));
    ctx.log.say(`${stage.method}: loss gradients of ${layers.length} weights from ${batches} calibration batches`);
  }
  return out;
}

/**
 * The component budget of dynamic-rank before each step (undefined: no pruning at that step):
 * r per layer until `start`, then a cubic decay to `target` per layer at `end` (AdaLoRA's shape),
 * pruning every `every` steps and at `end`.
 */
function rankSchedule(stage: StageOf<'adapt'>, layers: number): (step: number) => number | undefined {
  const r = (stage.config as { r: number }).r;
  const b = stage.rankBudget ?? { target: Math.max(1, Math.ceil(r / 2)), start: 0.2, end: 0.7, every: 10 };
  const from = r * layers;
  const to = Math.max(1, Math.round(b.target * layers));
  const s0 = Math.floor(b.start * stage.steps);
  const s1 = Math.max(s0 + 1, Math.floor(b.end * stage.steps));
  return (step) => {
    if (step <= s0 || (step - s0) % b.every !== 0 && step !== s1) return undefined;
    if (step > s1) return undefined;
    const progress = (step - s0) / (s1 - s0);
    return Math.round(to + (from - to) * Math.pow(1 - progress, 3));
  };
}

export async function runAdaptStage(args: StageArgs<StageOf<'adapt'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  if (stage.method === 'sft') return runSftStage(args);
  if (stage.method === 'mezo' || stage.method === 'sparse-mezo') return runMezoStage(args);
  if (ctx.adapter && ctx.adapter.stage !== index) throw new Error(`${label}: the adapter of '${ctx.adapter.label}' is still attached (merge it first)`);
  if (!ctx.adapter) attachStageAdapter(ctx, stage, index, label);
  const adapter = ctx.adapter!.model;
  const variables = new Map<string, tf.Variable>(adapter.trainableVariables().map((v, k) => [`adapter/${k}`, v]));
  const report = adapter.trainableReport();
  ctx.log.say(`${label}: ${stage.method} on ${report.layers.length} layers, ${report.trainable.toLocaleString('en-US')} trainable parameters (${(report.fraction * 100).toFixed(2)}% of the adapted weights)`);
  const hooks = ctx.hooks();
  adapter.training = true;
  const rankPrune = stage.method === 'dynamic-rank' ? rankSchedule(stage, report.layers.length) : undefined;
  let ranks: Record<string, number> | undefined;
  const r = await optimize(args, stage, {
    variables,
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    ...(rankPrune
      ? {
          beforeStep: (step: number) => {
            const budget = rankPrune(step);
            if (budget !== undefined) ranks = pruneDynamicRankModel(adapter, budget);
          },
        }
      : {}),
  });
  if (ranks) {
    const total = Object.values(ranks).reduce((a, b) => a + b, 0);
    ctx.log.say(`${label}: rank after pruning ${total} components over ${Object.keys(ranks).length} layers (${Object.entries(ranks).map(([n, k]) => `${n.replace(/\.weight$/, '')} ${k}`).join(', ')})`);
    ctx.log.event({ event: 'ranks', stage: index, ranks });
  }
  adapter.training = false;
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: report.trainable, base: report.base });
  // the adapter itself, in the PEFT layout, before it is merged away
  const states = adapter.adapterStates();
  const modules = Object.fromEntries(Object.entries(states).map(([n, s]) => [n.replace(/\.weight$/, ''), s]));
  const dir = join(ctx.dir, 'exports', 'adapters', label.replace(/[^A-Za-z0-9._-]/g, '_'));
  let saved = '';
  try {
    mkdirSync(dir, { recursive: true });
    await savePeftAdapter(dir, modules, { baseModelNameOrPath: null });
    saved = `, saved to ${dir}`;
    ctx.report.files.push({ label: `adapter ${label} (PEFT)`, path: dir, bytes: 0 });
  } catch (err) {
    ctx.report.notes.push(`adapter ${label} was not saved in the PEFT layout: ${(err as Error).message}`);
  }
  if (stage.merge) {
    adapter.mergeAndUnload({ densify: stage.densify });
    if (stage.densify) {
      for (const n of ctx.adapter!.targets) ctx.masks.delete(n);
      if (ctx.masks.size === 0) ctx.pattern = undefined;
    }
    ctx.adapter = undefined;
  }
  return { summary: `${stage.method}, ${report.trainable} trainable, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? `, merged${stage.densify ? ' (densified)' : ' through the masks'}` : ''}${saved}` };
}
