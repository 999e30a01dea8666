// adapt method 'sft': sparse fine-tuning (SpIEL-style). A delta of indices + values with its own
// sparse Adam, trained in optimize()'s loop with its own update; the tuner's state travels in the
// stage state, so a resumed run continues step for step. The support only uses entries the base
// keeps, so a pruned weight stays pruned.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sftConfigSchema, type SFTConfig } from '@sparse/lora-variants';
import { saveSparseDeltas } from '@sparse/lora-variants/node';
import { SparseFineTuner, type SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { Random } from '@sparse/tensor';
import type { StageOf } from '../../recipe/schema.js';
import { selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';

type Stage = StageOf<'adapt'>;

export const sftMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sft',
  describe: 'sparse fine-tuning: a delta stored as indices + values, Adam state only for them, optional drop-and-regrow (@sparse/lora-variants)',
  schema: sftConfigSchema,
  from: '@sparse/lora-variants',
  run: runSFTStage,
};

async function runSFTStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as SFTConfig;
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
  if (Object.keys(supports).length > 0 && cfg.every > 0) {
    throw new Error(`stages[${index}].config.every: drop-and-regrow could grow pruned entries of a masked weight; use every: 0 on a pruned model`);
  }
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
