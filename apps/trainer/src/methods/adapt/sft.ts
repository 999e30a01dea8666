// adapt method 'sft': sparse fine-tuning (SpIEL-style). A delta of indices + values with its own
// sparse Adam, trained in optimize()'s loop with its own update; the tuner's state travels in the
// stage state, so a resumed run continues step for step. The support only uses entries the base
// keeps, so a pruned weight stays pruned. It is random unless the stage names `supportScores`: then
// each layer trains its top entries by that score (|W|; the empirical Fisher E[g²]; |E[g]| as in SAFT;
// E[|W ⊙ g|], the SNIP/Taylor saliency; or LIFT's principal weights |W_r|).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sftConfigSchema, type SFTConfig } from '@sparse/lora-variants';
import { saveSparseDeltas } from '@sparse/lora-variants/node';
import { SparseFineTuner, type SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { isKept } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { exportNameOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { supportScores } from './adapter.js';

type Stage = StageOf<'adapt'>;

export const sftMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sft',
  describe: 'sparse fine-tuning: a delta stored as indices + values, Adam state only for them, its support random or chosen by supportScores (magnitude, fisher, gradient as SAFT, sensitivity as SNIP/Taylor, principal as LIFT), optional drop-and-regrow (@sparse/lora-variants)',
  schema: sftConfigSchema,
  from: '@sparse/lora-variants',
  run: runSFTStage,
};

/**
 * The entries each layer trains: among those the base keeps (a pruned weight stays pruned), the
 * round(density · size) with the largest `supportScores` (ties to the lower index), or random ones when
 * the stage names no criterion. Layers without a mask and without scores are left to the tuner's own
 * random support.
 */
function initialSupports(args: StageArgs<Stage>, layers: LinearInfo[], density: number): Record<string, number[]> {
  const { ctx, stage, index } = args;
  const criterion = stage.supportScores;
  const scores =
    criterion === undefined ? undefined
    : criterion === 'magnitude' ? new Map(layers.map((l) => [l.name, tf.tidy(() => Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array, Math.abs))]))
    : new Map([...supportScores(ctx, stage, index, layers, criterion)].map(([n, t]) => [n, t.data]));
  const supports: Record<string, number[]> = {};
  const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('support');
  for (const l of layers) {
    const mask = ctx.masks.get(l.name);
    const score = scores?.get(l.name);
    if (!mask && !score) continue;
    const kept: number[] = [];
    for (let k = 0; k < l.out * l.in; k++) if (!mask || isKept(mask, k)) kept.push(k);
    const want = Math.min(kept.length, Math.max(1, Math.round(density * l.out * l.in)));
    if (score) {
      kept.sort((a, b) => score[b]! - score[a]! || a - b);
    } else {
      for (let i = kept.length - 1; i > 0; i--) {
        const j = rng.int(0, i + 1);
        [kept[i], kept[j]] = [kept[j]!, kept[i]!];
      }
    }
    supports[l.name] = kept.slice(0, want).sort((a, b) => a - b);
  }
  return supports;
}

async function runSFTStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as SFTConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const weights = Object.fromEntries(layers.map((l) => [l.name, ctx.model.params[l.name]!]));
  if (cfg.every > 0 && layers.some((l) => ctx.masks.has(l.name))) {
    throw new Error(`stages[${index}].config.every: drop-and-regrow could grow pruned entries of a masked weight; use every: 0 on a pruned model`);
  }
  // drawn the same way on resume (the tuner is then built as before and loads its saved state)
  const supports = initialSupports(args, layers, cfg.density);
  const tuner = new SparseFineTuner(weights, {
    density: cfg.density,
    supports,
    seed: ctx.recipe.seed * 1000 + index,
    adam: { lr: stage.lr, weightDecay: cfg.weightDecay },
    ...(cfg.every > 0 ? { regrow: { every: cfg.every, fraction: cfg.regrowFraction } } : {}),
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
    const path = join(dir, `${exportNameOf(ctx.recipe.stages, index)}.safetensors`);
    const bytes = await saveSparseDeltas(path, tuner.deltas());
    ctx.report.files.push({ label: `SFT delta ${label}`, path, bytes, denseBytes: base * 4 });
    if (stage.merge) tuner.merge();
    else ctx.report.notes.push(`${label}: merge: false, so the model goes on without the SFT delta (it is saved in ${path})`);
    return { summary: `sft at density ${cfg.density}, ${trainable} trainable, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? ', merged' : ''}; delta ${bytes} bytes` };
  } finally {
    tuner.dispose();
  }
}
