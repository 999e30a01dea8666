// adapt stages that train the weights through their own optimizers rather than tfjs variables:
// sparse fine-tuning (a delta of indices + values with its own sparse Adam) and MeZO / Sparse MeZO
// (two forward passes per step, no gradients). They run in optimize()'s loop with their own update
// and checkpoint every `checkpointEvery` steps like the other stages: the SFT tuner's state and the
// MeZO seed stream (and Sparse MeZO's masks) travel in the stage state, so a resumed run continues
// step for step.

import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { mezoStepTf, SparseFineTuner, type SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { saveSparseDeltas } from '@sparse/lora-variants/node';
import { smallMagnitudeMask } from '@sparse/lora-variants';
import { ArgumentError, Random } from '@sparse/tensor';
import type { z } from 'zod';
import type { mezoConfigSchema, sftConfigSchema, sparseMezoConfigSchema } from '../recipe/methods.js';
import type { StageOf } from '../recipe/schema.js';
import { selectLinears, stageRng, type StageArgs, type StageOutcome } from './common.js';
import { optimize } from './optimize.js';

type Stage = StageOf<'adapt'>;

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
    const saved = args.resume?.stageState?.sft as SparseFineTunerState | undefined;
    if (saved) tuner.load(saved);
    const trainable = tuner.trainableCount();
    const base = layers.reduce((s, l) => s + l.out * l.in, 0);
    ctx.log.say(`${label}: sparse fine-tuning ${layers.length} layers, ${trainable.toLocaleString('en-US')} trainable entries (${((trainable / base) * 100).toFixed(2)}%), optimizer state ${tuner.stateByteLength().toLocaleString('en-US')} bytes`);
    const { losses } = await optimize(args, stage, {
      update: async (ids, targets, lr) => ({ loss: tuner.minimize((ws) => ctx.model.loss(ids, targets, { weight: (name, p) => ws[name] ?? p }), { lr }) }),
      stageState: () => ({ sft: tuner.state() }),
    });
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
  // never perturb pruned entries; Sparse MeZO further restricts to the smallest-magnitude kept ones,
  // chosen from the weights at the stage's start (a resumed stage reads them from its checkpoint)
  const savedMasks = args.resume?.stageState?.masks as Record<string, Uint8Array> | undefined;
  const masks = layers.map((l, i) => {
    const base = ctx.maskTensor(l.name)?.dataSync() as Float32Array | undefined;
    if (!sparse) return base ? Uint8Array.from(base, (v) => (v !== 0 ? 1 : 0)) : null;
    if (savedMasks) {
      const m = savedMasks[l.name];
      if (!(m instanceof Uint8Array) || m.length !== vars[i]!.size) throw new ArgumentError(`stages[${index}]: the checkpoint's Sparse MeZO mask of '${l.name}' is missing or not ${vars[i]!.size} entries`);
      return m;
    }
    const w = vars[i]!.dataSync() as Float32Array;
    const kept = base ? Float32Array.from(w, (x, k) => (base[k] !== 0 ? x : Infinity)) : w;
    return smallMagnitudeMask(kept, cfg.fraction! * (base ? base.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / base.length : 1));
  });
  const seeds = stageRng(args, 'mezo');
  const active = masks.reduce((s, m, i) => s + (m ? m.reduce((a, b) => a + b, 0) : vars[i]!.size), 0);
  ctx.log.say(`${label}: ${sparse ? 'Sparse MeZO' : 'MeZO'} on ${layers.length} layers, ${active.toLocaleString('en-US')} perturbed entries, eps ${cfg.eps}`);
  const hooks = ctx.hooks();
  const { losses } = await optimize(args, stage, {
    update: async (ids, targets, lr) => {
      const r = await mezoStepTf(vars, () => tf.tidy(() => ctx.model.loss(ids, targets, hooks)), { seed: seeds.int(0, 0x7fffffff), lr, eps: cfg.eps, masks });
      return { loss: (r.lossPlus + r.lossMinus) / 2 };
    },
    // the weights are in every checkpoint; the seed stream and Sparse MeZO's masks are not
    stageState: () => ({ mezo: seeds.state(), ...(sparse ? { masks: Object.fromEntries(layers.map((l, i) => [l.name, masks[i]!])) } : {}) }),
  });
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: active, base: vars.reduce((s, v) => s + v.size, 0) });
  return { summary: `${stage.method}, ${active} perturbed entries, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}` };
}
