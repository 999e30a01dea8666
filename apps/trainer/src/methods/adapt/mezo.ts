// adapt methods 'mezo', 'sparse-mezo' and 'sensitive-mezo': zeroth-order fine-tuning (MeZO; Sparse MeZO
// perturbs only the smallest-magnitude kept entries, re-chosen from the current weights every `every`
// steps; sensitive MeZO only the entries of largest empirical Fisher E[g²] on calibration batches, fixed
// for the stage). Two forward passes per step; the seed stream and the masks travel in the stage state,
// so a resumed run continues step for step.

import * as tf from '@tensorflow/tfjs-core';
import { mezoConfigSchema, sensitiveMeZOConfigSchema, smallMagnitudeMask, sparseMeZOConfigSchema, type MeZOConfig, type SensitiveMeZOConfig, type SparseMeZOConfig } from '@sparse/lora-variants';
import { mezoStepTf } from '@sparse/lora-variants/tfjs';
import { maskFromBooleans, maskToBooleans, topKMask } from '@sparse/masks';
import { ArgumentError, tensor } from '@sparse/tensor';
import type { LinearInfo } from '../../model/types.js';
import type { RunContext } from '../../run/context.js';
import type { StageOf } from '../../recipe/schema.js';
import { selectLinears, stageRng, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { supportScores } from './adapter.js';
import { NO_ADAPTERS_FOR_IST, refuseStageIST } from './ist.js';

type Stage = StageOf<'adapt'>;

export const mezoMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'mezo',
  describe: 'MeZO zeroth-order fine-tuning of the targeted weights: forward passes only (@sparse/lora-variants)',
  paper: 'Malladi et al. 2023, Fine-Tuning Language Models with Just Forward Passes (MeZO)',
  differs: [],
  schema: mezoConfigSchema,
  from: '@sparse/lora-variants',
  run: (args) => runMeZOStage(args, 'dense'),
  checkStage: (stage) => refuseStageIST(stage, NO_ADAPTERS_FOR_IST),
};

export const sparseMeZOMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sparse-mezo',
  describe: 'Sparse MeZO: MeZO on the smallest-magnitude entries only, re-chosen from the current weights every `every` steps (@sparse/lora-variants)',
  paper: 'Liu et al. 2024, Sparse MeZO: Less Parameters for Better Performance in Zeroth-Order LLM Fine-Tuning',
  differs: [
    'the paper compares |w| to a per-layer threshold; the re-selection here keeps the count fixed (the `density` smallest of the current weights)',
  ],
  schema: sparseMeZOConfigSchema,
  from: '@sparse/lora-variants',
  run: (args) => runMeZOStage(args, 'sparse'),
  checkStage: (stage) => refuseStageIST(stage, NO_ADAPTERS_FOR_IST),
};

export const sensitiveMeZOMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sensitive-mezo',
  describe: 'MeZO on the most sensitive entries only (extreme sparsity, Guo et al. 2024): the largest empirical Fisher E[g²] on calibration batches, fixed for the stage; the base stays float32 (@sparse/lora-variants)',
  paper: 'Guo et al. 2024, Zeroth-Order Fine-Tuning of LLMs with Extreme Sparsity',
  differs: [
    'the base stays float32 where the paper also quantizes it to 4 bits',
  ],
  schema: sensitiveMeZOConfigSchema,
  from: '@sparse/lora-variants',
  run: (args) => runMeZOStage(args, 'sensitive'),
  checkStage: (stage) => refuseStageIST(stage, NO_ADAPTERS_FOR_IST),
};

type Mode = 'dense' | 'sparse' | 'sensitive';

/** The base mask of each layer as 0/1 bytes, or null where the layer is unpruned. */
function baseMasks(ctx: RunContext, layers: LinearInfo[]): (Uint8Array | null)[] {
  return layers.map((l) => {
    const base = ctx.maskTensor(l.name)?.dataSync() as Float32Array | undefined;
    return base ? Uint8Array.from(base, (v) => (v !== 0 ? 1 : 0)) : null;
  });
}

/**
 * Sparse MeZO's masks from the current weights: in each layer the `density` fraction of its kept
 * entries with the smallest |w| (ties to the lower index); pruned entries never.
 */
export function smallMagnitudeMasks(ctx: RunContext, layers: LinearInfo[], density: number): Uint8Array[] {
  return layers.map((l) => {
    const base = baseMasks(ctx, [l])[0]!;
    const w = ctx.model.params[l.name]!.dataSync() as Float32Array;
    const kept = base ? Float32Array.from(w, (x, k) => (base[k] !== 0 ? x : Infinity)) : w;
    return maskToBooleans(smallMagnitudeMask(kept, density * (base ? base.reduce((s, v) => s + v, 0) / base.length : 1)));
  });
}

/**
 * The sensitive entries: over all targeted layers together, the `density` fraction of their kept
 * entries (round(density x kept), at least 1) with the largest empirical Fisher E[g²] on the stage's
 * calibration batches (`supportBatches` x `batch` windows; ties to the lower index, layers in order).
 */
export function sensitiveMasks(ctx: RunContext, stage: Stage, index: number, layers: LinearInfo[], density: number): Uint8Array[] {
  const fisher = supportScores(ctx, stage, index, layers, 'fisher', 'sensitive-mezo');
  const bases = baseMasks(ctx, layers);
  const scores: number[] = [];
  const where: [number, number][] = [];
  layers.forEach((l, i) => {
    const f = fisher.get(l.name)!.data;
    const base = bases[i];
    for (let k = 0; k < f.length; k++) {
      if (base && base[k] === 0) continue;
      scores.push(f[k]!);
      where.push([i, k]);
    }
  });
  const k = Math.min(scores.length, Math.max(1, Math.round(density * scores.length)));
  const chosen = maskToBooleans(topKMask(tensor(Float32Array.from(scores), [scores.length]), k));
  const masks = layers.map((l) => new Uint8Array(l.out * l.in));
  chosen.forEach((c, j) => {
    if (c) masks[where[j]![0]]![where[j]![1]] = 1;
  });
  return masks;
}

async function runMeZOStage(args: StageArgs<Stage>, mode: Mode): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as MeZOConfig & Partial<SparseMeZOConfig> & Partial<SensitiveMeZOConfig>;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const vars = layers.map((l) => ctx.model.params[l.name]!);
  // never perturb pruned entries; Sparse MeZO further restricts to the smallest-magnitude kept ones
  // (chosen from the weights at the stage's start, then again every `every` steps), sensitive MeZO to
  // those of largest E[g²] (chosen once); a resumed stage reads the current masks from its checkpoint
  const savedMasks = args.resume?.stageState?.masks as Record<string, Uint8Array> | undefined;
  const fromCheckpoint = (): Uint8Array[] =>
    layers.map((l, i) => {
      const m = savedMasks![l.name];
      if (!(m instanceof Uint8Array) || m.length !== vars[i]!.size) throw new ArgumentError(`stages[${index}]: the checkpoint's ${stage.method} mask of '${l.name}' is missing or not ${vars[i]!.size} entries`);
      return m;
    });
  let masks: (Uint8Array | null)[] =
    mode === 'dense'
      ? baseMasks(ctx, layers)
      : savedMasks
        ? fromCheckpoint()
        : mode === 'sparse'
          ? smallMagnitudeMasks(ctx, layers, cfg.density!)
          : sensitiveMasks(ctx, stage, index, layers, cfg.density!);
  let maskArgs = masks.map((m) => (m ? maskFromBooleans(m, [m.length]) : null));
  const seeds = stageRng(args, 'mezo');
  const activeOf = (ms: (Uint8Array | null)[]) => ms.reduce((s, m, i) => s + (m ? m.reduce((a, b) => a + b, 0) : vars[i]!.size), 0);
  const active = activeOf(masks);
  const every = mode === 'sparse' ? cfg.every! : 0;
  const name = { dense: 'MeZO', sparse: 'Sparse MeZO', sensitive: 'sensitive MeZO' }[mode];
  ctx.log.say(`${label}: ${name} on ${layers.length} layers, ${active.toLocaleString('en-US')} perturbed entries${every > 0 ? `, re-chosen every ${every} steps` : ''}, eps ${cfg.eps}`);
  const hooks = ctx.hooks();
  const { losses } = await optimize(args, stage, {
    update: async (ids, targets, lr, step) => {
      const r = await mezoStepTf(vars, () => tf.tidy(() => ctx.model.loss(ids, targets, hooks)), { seed: seeds.int(0, 0x7fffffff), lr, eps: cfg.eps, masks: maskArgs });
      // Sparse MeZO: the mask of the next steps from the weights this step left (deterministic from
      // them, and it rides in the stage state, so a checkpoint after this step resumes with it)
      if (every > 0 && step % every === 0 && step < stage.steps) {
        masks = smallMagnitudeMasks(ctx, layers, cfg.density!);
        maskArgs = masks.map((m) => maskFromBooleans(m!, [m!.length]));
      }
      return { loss: (r.lossPlus + r.lossMinus) / 2 };
    },
    // the weights are in every checkpoint; the seed stream and the masks are not
    stageState: () => ({ mezo: seeds.state(), ...(mode !== 'dense' ? { masks: Object.fromEntries(layers.map((l, i) => [l.name, masks[i]!])) } : {}) }),
  });
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: active, base: vars.reduce((s, v) => s + v.size, 0) });
  return { summary: `${stage.method}, ${active} perturbed entries${every > 0 ? ` (re-chosen every ${every} steps)` : ''}, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}` };
}
