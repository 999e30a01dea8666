// adapt method 'diff-pruning' (Guo et al., "Parameter-Efficient Transfer Learning with Diff Pruning"):
// every targeted weight gets a dense diff w and a stretched hard-concrete gate per entry (DiffPruning of
// @sparse/lora-variants), the forward pass uses W + z ⊙ w with a fresh gate sample z each step, and the
// loss adds λ times the expected fraction of open gates (the L0 penalty, normalized by the number of
// entries). At the end the delta is ẑ ⊙ w with the deterministic gate ẑ, cut to the `density` largest
// |ẑ ⊙ w| when asked (the paper's magnitude projection), saved like an SFT delta and merged.
//
// On a pruned base the diff goes through the mask (pruned entries stay exactly 0) unless `densify`.
// Resume is exact: w, log α and each layer's gate-noise stream ride in the stage state, their Adam
// moments in the checkpoint's optimizer state.
//
// Departures from the paper: the penalty is normalized by the entry count (λ independent of model
// size), and the projection to a fixed budget ends the stage instead of being followed by further
// fine-tuning of the kept entries (add an `sft` stage for that).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { diffPruningConfigSchema, mergeSparseDelta, type DiffPruningConfig, type SparseDelta } from '@sparse/lora-variants';
import { saveSparseDeltas } from '@sparse/lora-variants/node';
import { DiffPruning, type DiffPruningState } from '@sparse/lora-variants/tfjs';
import { isKept } from '@sparse/masks';
import * as tf from '@tensorflow/tfjs-core';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, exportNameOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { TrainerMethod } from '../types.js';
import { NO_ADAPTERS_FOR_IST, refuseStageIST } from './ist.js';

type Stage = StageOf<'adapt'>;

export const diffPruningMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'diff-pruning',
  describe: 'diff pruning (Guo et al.): a dense diff with a hard-concrete L0 gate per entry, the deterministic gated diff kept as a sparse delta (optionally cut to a density by magnitude) and merged (@sparse/lora-variants)',
  paper: 'Guo et al. 2021, Parameter-Efficient Transfer Learning with Diff Pruning',
  differs: [
    'the L0 penalty is normalized by the entry count (λ independent of model size)',
    'the projection to a fixed budget ends the stage instead of being followed by fine-tuning of the kept entries (add an sft stage for that)',
  ],
  schema: diffPruningConfigSchema,
  from: '@sparse/lora-variants',
  sparseDelta: true,
  run: runDiffPruningStage,
  checkStage: (stage) => refuseStageIST(stage, NO_ADAPTERS_FOR_IST),
};

async function runDiffPruningStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as DiffPruningConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const weights = Object.fromEntries(layers.map((l) => [l.name, ctx.model.params[l.name]!]));
  const dp = new DiffPruning(weights, { initLogAlpha: cfg.initLogAlpha, beta: cfg.beta, gamma: cfg.gamma, zeta: cfg.zeta, seed: ctx.recipe.seed * 1000 + index });
  try {
    const saved = args.resume?.stageState?.diff as DiffPruningState | undefined;
    if (saved) dp.load(saved);
    const masks = new Map(stage.densify ? [] : layers.filter((l) => ctx.masks.has(l.name)).map((l) => [l.name, ctx.maskTensor(l.name)!]));
    const entries = layers.reduce((n, l) => n + l.out * l.in, 0);
    const variables = new Map<string, tf.Variable>();
    for (const l of layers) {
      variables.set(`diff/${l.name}/values`, dp.values[l.name]!);
      variables.set(`diff/${l.name}/logAlpha`, dp.logAlpha[l.name]!);
    }
    ctx.log.say(`${label}: diff pruning ${layers.length} layers, ${(2 * entries).toLocaleString('en-US')} trainable (diff + gate), λ ${cfg.lambda}`);
    /** W + z ⊙ w, through the base mask. */
    const effective = (name: string) => {
      const w = dp.effectiveWeight(name);
      const m = masks.get(name);
      return m ? tf.mul(w, m) : w;
    };
    const { losses } = await optimize(args, stage, {
      variables,
      loss: (ids, targets) => {
        const task = ctx.model.loss(ids, targets, { weight: (name, p) => (name in weights ? effective(name) : p) });
        return tf.add(task, tf.mul(dp.penalty(), cfg.lambda / entries)) as tf.Scalar;
      },
      stageState: () => ({ diff: dp.state() }),
    });
    // the deterministic gates, the budget cut, then nothing outside the mask
    const deltas: Record<string, SparseDelta> = {};
    const extracted = dp.extract(cfg.density !== undefined ? { density: cfg.density } : {});
    for (const l of layers) {
      const raw = extracted[l.name]!;
      const mask = stage.densify ? undefined : ctx.masks.get(l.name);
      if (!mask) {
        deltas[l.name] = raw;
        continue;
      }
      const keep = Array.from(raw.indices.keys()).filter((i) => isKept(mask, raw.indices[i]!));
      deltas[l.name] = { shape: raw.shape, indices: Int32Array.from(keep, (i) => raw.indices[i]!), values: Float32Array.from(keep, (i) => raw.values[i]!) };
    }
    const kept = Object.values(deltas).reduce((n, d) => n + d.indices.length, 0);
    ctx.report.adapters.push({ name: label, variant: 'diff-pruning', trainable: 2 * entries, base: entries });
    const dir = join(ctx.dir, 'exports', 'sft');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${exportNameOf(ctx.recipe.stages, index)}.safetensors`);
    const bytes = await saveSparseDeltas(path, deltas);
    ctx.report.files.push({ label: `diff-pruning delta ${label}`, path, bytes, denseBytes: entries * 4 });
    if (stage.merge) {
      for (const l of layers) {
        const v = ctx.model.params[l.name]!;
        assignValues(v, mergeSparseDelta(coreOf(v), deltas[l.name]!).data);
      }
    } else ctx.report.notes.push(`${label}: merge: false, so the model goes on without the diff (it is saved in ${path})`);
    return { summary: `diff pruning: ${kept} of ${entries} entries in the delta (${((kept / entries) * 100).toFixed(2)}%), final loss ${losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? ', merged' : ''}; delta ${bytes} bytes` };
  } finally {
    dp.dispose();
  }
}

