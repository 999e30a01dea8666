// adapt stages that train the weights through their own optimizers rather than tfjs variables:
// sparse fine-tuning (a delta of indices + values with its own sparse Adam) and MeZO / Sparse MeZO
// (two forward passes per step, no gradients). They checkpoint at stage boundaries: a run killed
// inside one repeats the stage from its start, which gives the same result as an uninterrupted run.

import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { mezoStepTf, SparseFineTuner } from '@sparse/lora-variants/tfjs';
import { saveSparseDeltas } from '@sparse/lora-variants/node';
import { smallMagnitudeMask } from '@sparse/lora-variants';
import { Random } from '@sparse/tensor';
import type { z } from 'zod';
import { sampleBatch } from '../data/dataset.js';
import type { mezoConfigSchema, sftConfigSchema, sparseMezoConfigSchema } from '../recipe/methods.js';
import type { StageOf } from '../recipe/schema.js';
import { learningRateAt } from '../train/steps.js';
import { selectLinears, stageRng, windowLength, type StageArgs, type StageOutcome } from './common.js';

type Stage = StageOf<'adapt'>;

/** A stage loop without tfjs optimizers: batches, schedule, progress, metrics. `step` returns the loss. */
async function directLoop(args: StageArgs<Stage>, step: (ids: tf.Tensor2D, targets: tf.Tensor2D, lr: number, k: number) => Promise<number>): Promise<number[]> {
  const { ctx, stage, index, label } = args;
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = windowLength(args, data);
  const rng = stageRng(args);
  const warmup = stage.warmup ?? Math.min(100, Math.floor(stage.steps / 10));
  const progress = ctx.log.stageProgress(`[${index + 1}/${ctx.recipe.stages.length}] ${label}`);
  const curve = { label, points: [] as { step: number; loss: number }[] };
  ctx.report.lossCurves.push(curve);
  const losses: number[] = [];
  const t0 = performance.now();
  for (let k = 1; k <= stage.steps; k++) {
    const lr = learningRateAt(k, stage.steps, stage.lr, warmup, stage.minLrRatio);
    const b = sampleBatch(data, stage.batch, len, rng);
    const ids = tf.tensor2d(b.inputs, [stage.batch, len], 'int32');
    const targets = tf.tensor2d(b.targets, [stage.batch, len], 'int32');
    let loss: number;
    try {
      loss = await step(ids, targets, lr, k);
    } finally {
      tf.dispose([ids, targets]);
    }
    if (!Number.isFinite(loss)) throw new Error(`${label}: loss is ${loss} at step ${k} (try a lower lr)`);
    losses.push(loss);
    const elapsedMs = performance.now() - t0;
    const tokens = k * stage.batch * len;
    progress({ step: k, steps: stage.steps, loss, lr, gradNorm: 0, tokens, elapsedMs, tokensPerSec: tokens / (elapsedMs / 1000), etaMs: (elapsedMs / k) * (stage.steps - k) });
    curve.points.push({ step: k, loss });
    ctx.log.event({ event: 'step', stage: index, label, step: k, steps: stage.steps, loss, lr });
  }
  ctx.log.endProgress();
  return losses;
}

export async function runSftStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as z.output<typeof sftConfigSchema>;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const weights = Object.fromEntries(layers.map((l) => [l.name, ctx.model.params[l.name]!]));
  // the support may only use entries the base keeps: a pruned weight stays pruned
  const supports: Record<string, number[]> = {};
  const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('support');
  for (const l of layers) {
    const mask = ctx.maskTensor(l.name);
    if (!mask) continue;
    const kept: number[] = [];
    (mask.dataSync() as Float32Array).forEach((v, k) => v !== 0 && kept.push(k));
    const want = Math.max(1, Math.round(cfg.density * l.out * l.in));
    for (let i = kept.length - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      [kept[i], kept[j]] = [kept[j]!, kept[i]!];
    }
    supports[l.name] = kept.slice(0, Math.min(want, kept.length)).sort((a, b) => a - b);
  }
  if (Object.keys(supports).length > 0 && cfg.regrowEvery > 0) {
    throw new Error(`stages[${index}].config.regrowEvery: drop-and-regrow could grow pruned entries of a masked weight; use regrowEvery: 0 on a pruned model`);
  }
  const tuner = new SparseFineTuner(weights, {
    density: cfg.density,
    supports,
    seed: ctx.recipe.seed * 1000 + index,
    adam: { lr: stage.lr, weightDecay: cfg.weightDecay },
    ...(cfg.regrowEvery > 0 ? { regrow: { every: cfg.regrowEvery, fraction: cfg.regrowFraction } } : {}),
  });
  try {
    const trainable = tuner.trainableCount();
    const base = layers.reduce((s, l) => s + l.out * l.in, 0);
    ctx.log.say(`${label}: sparse fine-tuning ${layers.length} layers, ${trainable.toLocaleString('en-US')} trainable entries (${((trainable / base) * 100).toFixed(2)}%), optimizer state ${tuner.stateByteLength().toLocaleString('en-US')} bytes`);
    const losses = await directLoop(args, async (ids, targets) =>
      tuner.minimize((ws) => ctx.model.loss(ids, targets, { weight: (name, p) => ws[name] ?? p })),
    );
    ctx.report.adapters.push({ name: label, variant: 'sft', trainable, base });
    const dir = join(ctx.dir, 'exports', 'sft');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}.safetensors`);
    const bytes = await saveSparseDeltas(path, tuner.deltas());
    ctx.report.files.push({ label: `SFT delta ${label}`, path, bytes, denseBytes: base * 4 });
    if (stage.merge) tuner.merge();
    else ctx.report.notes.push(`${label}: merge: false, so the model goes on without the SFT delta (it is saved in ${path})`);
    return { summary: `sft at density ${cfg.density}, ${trainable} trainable, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? ', merged' : ''}; delta ${bytes} bytes` };
  } finally {
    tuner.dispose();
  }
}

export async function runMezoStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const sparse = stage.method === 'sparse-mezo';
  const cfg = stage.config as z.output<typeof mezoConfigSchema> & Partial<z.output<typeof sparseMezoConfigSchema>>;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const vars = layers.map((l) => ctx.model.params[l.name]!);
  // never perturb pruned entries; Sparse MeZO further restricts to the smallest-magnitude kept ones
  const masks = layers.map((l, i) => {
    const base = ctx.maskTensor(l.name)?.dataSync() as Float32Array | undefined;
    const w = vars[i]!.dataSync() as Float32Array;
    if (!sparse) return base ? Uint8Array.from(base, (v) => (v !== 0 ? 1 : 0)) : null;
    const kept = base ? Float32Array.from(w, (x, k) => (base[k] !== 0 ? x : Infinity)) : w;
    const m = smallMagnitudeMask(kept, cfg.fraction! * (base ? base.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / base.length : 1));
    return m;
  });
  const seeds = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('mezo');
  const active = masks.reduce((s, m, i) => s + (m ? m.reduce((a, b) => a + b, 0) : vars[i]!.size), 0);
  ctx.log.say(`${label}: ${sparse ? 'Sparse MeZO' : 'MeZO'} on ${layers.length} layers, ${active.toLocaleString('en-US')} perturbed entries, eps ${cfg.eps}`);
  const hooks = ctx.hooks();
  const losses = await directLoop(args, async (ids, targets, lr) => {
    const r = await mezoStepTf(vars, () => tf.tidy(() => ctx.model.loss(ids, targets, hooks)), { seed: seeds.int(0, 0x7fffffff), lr, eps: cfg.eps, masks });
    return (r.lossPlus + r.lossMinus) / 2;
  });
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: active, base: vars.reduce((s, v) => s + v.size, 0) });
  return { summary: `${stage.method}, ${active} perturbed entries, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}` };
}
