// adapt methods 'mezo' and 'sparse-mezo': zeroth-order fine-tuning (MeZO; Sparse MeZO perturbs only
// the smallest-magnitude kept entries). Two forward passes per step, no gradients; the seed stream
// (and Sparse MeZO's masks) travel in the stage state, so a resumed run continues step for step.

import * as tf from '@tensorflow/tfjs-core';
import { mezoConfigSchema, smallMagnitudeMask, sparseMeZOConfigSchema, type MeZOConfig, type SparseMeZOConfig } from '@sparse/lora-variants';
import { mezoStepTf } from '@sparse/lora-variants/tfjs';
import { maskFromBooleans, maskToBooleans } from '@sparse/masks';
import { ArgumentError } from '@sparse/tensor';
import type { StageOf } from '../../recipe/schema.js';
import { selectLinears, stageRng, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';

type Stage = StageOf<'adapt'>;

export const mezoMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'mezo',
  describe: 'MeZO zeroth-order fine-tuning of the targeted weights: forward passes only (@sparse/lora-variants)',
  schema: mezoConfigSchema,
  from: '@sparse/lora-variants',
  run: (args) => runMeZOStage(args, false),
};

export const sparseMeZOMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sparse-mezo',
  describe: 'Sparse MeZO: MeZO on the smallest-magnitude entries only (@sparse/lora-variants)',
  schema: sparseMeZOConfigSchema,
  from: '@sparse/lora-variants',
  run: (args) => runMeZOStage(args, true),
};

async function runMeZOStage(args: StageArgs<Stage>, sparse: boolean): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as MeZOConfig & Partial<SparseMeZOConfig>;
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
    return maskToBooleans(smallMagnitudeMask(kept, cfg.density! * (base ? base.reduce((s, v) => s + (v !== 0 ? 1 : 0), 0) / base.length : 1)));
  });
  const maskArgs = masks.map((m) => (m ? maskFromBooleans(m, [m.length]) : null));
  const seeds = stageRng(args, 'mezo');
  const active = masks.reduce((s, m, i) => s + (m ? m.reduce((a, b) => a + b, 0) : vars[i]!.size), 0);
  ctx.log.say(`${label}: ${sparse ? 'Sparse MeZO' : 'MeZO'} on ${layers.length} layers, ${active.toLocaleString('en-US')} perturbed entries, eps ${cfg.eps}`);
  const hooks = ctx.hooks();
  const { losses } = await optimize(args, stage, {
    update: async (ids, targets, lr) => {
      const r = await mezoStepTf(vars, () => tf.tidy(() => ctx.model.loss(ids, targets, hooks)), { seed: seeds.int(0, 0x7fffffff), lr, eps: cfg.eps, masks: maskArgs });
      return { loss: (r.lossPlus + r.lossMinus) / 2 };
    },
    // the weights are in every checkpoint; the seed stream and Sparse MeZO's masks are not
    stageState: () => ({ mezo: seeds.state(), ...(sparse ? { masks: Object.fromEntries(layers.map((l, i) => [l.name, masks[i]!])) } : {}) }),
  });
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: active, base: vars.reduce((s, v) => s + v.size, 0) });
  return { summary: `${stage.method}, ${active} perturbed entries, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}` };
}
