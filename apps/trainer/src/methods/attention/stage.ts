// The sparse-attention methods of @sparse/attention as attention-stage methods: every registered method
// is one entry here. The stage installs an attention record in the run (every later forward pass
// applies it: evaluate, fine-tuning, and the attention.json an export writes for `sparse-train
// generate`); seer first captures each layer's q and k on the calibration windows (frozen model) and
// trains one gate per layer by distillation. The stage measures what it computes on the calibration
// windows, and optionally fine-tunes every weight with the sparse attention active.

import * as tf from '@tensorflow/tfjs-core';
import type { AttentionMethod } from '@sparse/attention';
import { trainSeerGate, type SeerSample } from '@sparse/attention/tfjs';
import type { z } from 'zod';
import type { StageOf } from '../../recipe/schema.js';
import type { AttentionCounts, AttentionState, RunContext } from '../../run/context.js';
import { calibrationBatches } from '../../stages/calibration.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import { refuseAttachedAdapter } from '../train/weights.js';
import type { TrainerMethod } from '../types.js';
import { describeSummary, emptyCounts, summarizeCounts, type KVSummary, type TileSummary } from './counts.js';
import { attentionMethodOf, gateToJSON } from './hooks.js';

type Batches = readonly { ids: Int32Array; b: number; len: number }[];

/** Each layer's q [heads, T, hd] and k [kvHeads, T, hd] per calibration sequence (the model as it is, dense attention). */
export function captureQK(ctx: RunContext, batches: Batches): SeerSample[][] {
  const layers: SeerSample[][] = [];
  const base = ctx.hooks();
  const hooks = {
    ...base,
    attentionMask: (block: number, q: tf.Tensor3D, k: tf.Tensor3D, b: number, t: number) => {
      const heads = q.shape[0] / b;
      const kvHeads = k.shape[0] / b;
      const hd = q.shape[2];
      const qa = q.dataSync() as Float32Array;
      const ka = k.dataSync() as Float32Array;
      const out = (layers[block] ??= []);
      for (let s = 0; s < b; s++) {
        out.push({ shape: { heads, kvHeads, seq: t, headDim: hd }, q: qa.slice(s * heads * t * hd, (s + 1) * heads * t * hd), k: ka.slice(s * kvHeads * t * hd, (s + 1) * kvHeads * t * hd) });
      }
      return undefined;
    },
  };
  for (const { ids, b, len } of batches) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  return layers;
}

/** Kv heads of the model (rows per token of its KV cache). */
export function kvHeadsOf(ctx: RunContext): number {
  const s = ctx.model.spec as { heads?: number; kvHeads?: number };
  return s.kvHeads ?? s.heads ?? 1;
}

/** Forward passes over `batches` with the run's attention active; the counts' summary (undefined without an attention record). */
export function measureAttention(ctx: RunContext, batches: Batches): TileSummary | KVSummary | undefined {
  if (!ctx.attention || batches.length === 0) return undefined;
  const counts: AttentionCounts = emptyCounts();
  ctx.attentionCounts = counts;
  try {
    const hooks = ctx.hooks();
    for (const { ids, b, len } of batches) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  } finally {
    ctx.attentionCounts = undefined;
  }
  return summarizeCounts(counts, batches[0]!.len, kvHeadsOf(ctx));
}

/** Trains seer's gate of every layer on the calibration windows; the state holds them (plain arrays) and the losses. */
function trainGates(args: StageArgs<StageOf<'attention'>>, config: Record<string, unknown>, batches: Batches): AttentionState {
  const { ctx, index, label } = args;
  const layers = captureQK(ctx, batches);
  const c = config as { blockSize: number; gateDim: number; steps: number; learningRate: number; seed: number; causal: boolean };
  const gates: NonNullable<AttentionState['gates']> = [];
  const before: number[] = [];
  const after: number[] = [];
  for (let l = 0; l < layers.length; l++) {
    const r = trainSeerGate(layers[l]!, { blockSize: c.blockSize, gateDim: c.gateDim, steps: c.steps, learningRate: c.learningRate, seed: c.seed + l, causal: c.causal });
    gates.push(gateToJSON(r.gate));
    before.push(r.losses[0]!);
    after.push(r.losses.at(-1)!);
  }
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / Math.max(1, x.length);
  ctx.log.event({ event: 'attention-gate', stage: index, label, method: args.stage.method, layers: layers.length, samples: layers[0]?.length ?? 0, steps: c.steps, lossBefore: before, lossAfter: after });
  ctx.log.say(`${label}: trained ${layers.length} ${args.stage.method} gates (${c.steps} steps on ${layers[0]?.length ?? 0} sequences each): distillation loss ${mean(before).toFixed(4)} -> ${mean(after).toFixed(4)} (mean KL per query block)`);
  ctx.report.notes.push(`${label}: ${args.stage.method} gates trained on ${layers[0]?.length ?? 0} calibration sequences, distillation loss (mean KL per query block) per layer ${before.map((b, l) => `${b.toFixed(4)} -> ${after[l]!.toFixed(4)}`).join(', ')}`);
  return { gates, gateLoss: { before, after } };
}

/** Fine-tunes every weight for the stage's steps with the run's state (masks, sparse attention) active. */
async function fineTune(args: StageArgs<StageOf<'attention'>>): Promise<string> {
  const { ctx, stage } = args;
  if (stage.steps === 0) return '';
  refuseAttachedAdapter(args);
  const hooks = ctx.hooks({ maskBase: true });
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
  });
  return r.losses.length ? `; fine-tuned ${stage.steps} steps, final loss ${r.losses.at(-1)!.toFixed(4)}` : '';
}

/** The attention-stage method running a @sparse/attention method. */
export function attentionStageMethod(def: AttentionMethod): TrainerMethod<'attention'> {
  return {
    kind: 'attention',
    name: def.name,
    describe: def.describe,
    paper: def.paper,
    differs: def.differs,
    schema: def.schema as z.ZodType,
    from: '@sparse/attention',
    async run(args: StageArgs<StageOf<'attention'>>): Promise<StageOutcome> {
      const { ctx, stage, index, label } = args;
      let note = '';
      // a resumed fine-tuning keeps the attention its checkpoint restored
      if (!(args.resume && ctx.attention?.stage === index)) {
        if (ctx.attention) ctx.log.say(`${label}: replaces the sparse attention of ${ctx.attention.label}`);
        ctx.attention = undefined;
        const config = stage.config;
        // stage.config was parsed by the method's schema (defaults written out); the record keeps it as given to the hooks
        attentionMethodOf({ method: def.name, config }, label);
        const batches = calibrationBatches(ctx, index, stage.calibrationData);
        const state: AttentionState = def.target === 'block-mask' && def.needs?.includes('gate') ? trainGates(args, config, batches) : {};
        ctx.attention = { stage: index, label, method: def.name, config, state };
        const summary = measureAttention(ctx, batches);
        if (summary) {
          ctx.log.event({ event: 'attention', stage: index, label, method: def.name, ...summary });
          note = `; on the calibration windows ${describeSummary(summary)}`;
          ctx.log.say(`${label}: ${def.name}${note.slice(1)}`);
        }
      }
      const tuned = await fineTune(args);
      return { summary: `${def.name}${note}${tuned}` };
    },
  };
}
