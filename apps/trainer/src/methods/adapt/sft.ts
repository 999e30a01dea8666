// adapt method 'sft': sparse fine-tuning (SpIEL-style). A delta of indices + values with its own
// sparse Adam, trained in optimize()'s loop with its own update; the tuner's state travels in the
// stage state, so a resumed run continues step for step. The support only uses entries the base
// keeps, so a pruned weight stays pruned. It is random unless the stage names `supportScores`: then
// each layer trains its top entries by that score (|W|; the empirical Fisher E[g²]; |E[g]| as in SAFT;
// E[|W ⊙ g|], the SNIP/Taylor saliency; or LIFT's principal weights |W_r|).
//
// config.lottery is LT-SFT (Ansell et al. 2022, "Composable Sparse Fine-Tuning for Cross-Lingual
// Transfer"): the stage first trains every targeted entry the base keeps for lottery.steps steps (a
// tuner whose support is all of them), keeps the density share with the largest |Δ| (lotteryTicketSupports:
// one ranking over all targeted weights, or per weight with budget 'layer'), rewinds (a new tuner on that
// support with Δ = 0 and fresh Adam moments, the weights never having left θ0) and trains the ticket for
// the stage's steps. Both phases run inside one optimize() loop of lottery.steps + steps steps, each at
// its own warmup + cosine schedule; the phase and its tuner ride in the stage state, so a run stopped in
// either phase resumes exactly. Differs from the paper: only the targeted linear weights are fine-tuned
// (the paper's full phase moves every parameter but embeddings and layer norms, and K counts them all),
// the full phase is restricted to the entries the base mask keeps, there is no L1 penalty pulling Δ
// toward zero, and there is no gradient clipping (the sparse Adam of every sft stage).
//
// config.compose is composable SFT: the deltas that earlier sft stages saved (merge: false) are added to
// the weights when this stage starts, so it trains on (and, LT-SFT, rewinds to) θ + Σ Δ, and a merge
// leaves θ + Σ Δ + its own Δ: the paper's θ + Δ_language + Δ_task. Differs from the paper: one corpus per
// 'language' here, so the language delta the task delta was trained over is the one composed (the paper
// trains over the source language's delta and swaps in the target language's at inference).
//
// config.ist is IST (Yao et al. 2024, "Layer-wise Importance Matters: Less Memory for Better Performance
// in PEFT of LLMs"; LayerImportance of @sparse/lora-variants): the layers are the transformer blocks; each
// step only the deltas of the blocks drawn by importance move (the others keep their values and Adam
// state), and after every ist.every steps the scores learn from suppression probes: the loss of one batch
// drawn aside (its own seeded stream) with the deltas of each probed set of blocks scaled by
// ist.suppression. Scores, both streams and the last step's blocks ride in the stage state (istSampler of
// ./ist.ts, shared with the LoRA-family stages). Differs from the paper: its PEFT modules are LoRA-style
// adapters, here they are the sparse deltas (the suppression scales Δ; the LoRA-family stages' `ist` field
// samples adapters, as the paper); and when fewer distinct probe sets exist than ist.probes, each is probed once.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { composeSparseDeltas, lotteryTicketSupports, sftConfigSchema, type SFTConfig, type SparseDelta } from '@sparse/lora-variants';
import { loadSparseDeltas, saveSparseDeltas } from '@sparse/lora-variants/node';
import { SparseFineTuner, type SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { isKept, maskIndices } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { exportNameOf, selectLinears, stageLabel, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import { lrAt } from '../../train/steps.js';
import { findMethod, methodsOf } from '../registry.js';
import type { TrainerMethod } from '../types.js';
import { supportScores } from './adapter.js';
import { istSampler, refuseStageIST, type ProbeLoss } from './ist.js';

type Stage = StageOf<'adapt'>;

export const sftMethod: TrainerMethod<'adapt'> = {
  kind: 'adapt',
  name: 'sft',
  describe: 'sparse fine-tuning: a delta stored as indices + values, Adam state only for them, its support random or chosen by supportScores (magnitude, fisher, gradient as SAFT, sensitivity as SNIP/Taylor, principal as LIFT), optional drop-and-regrow; lottery: LT-SFT (Ansell et al. 2022: full fine-tune, keep the top |Δ|, rewind, masked retrain; differs: only the targeted linear weights, inside the base mask, no L1 penalty); compose: adds earlier stages\' deltas first (θ + Δ_lang + Δ_task); ist: IST layer sampling by learned block importance (Yao et al. 2024; differs: the suppressed modules are the sparse deltas; the LoRA-family methods take IST on their adapters, as the paper, in the stage field ist) (@sparse/lora-variants)',
  paper: 'Ansell et al. 2024, Scaling Sparse Fine-Tuning to Large Language Models (SpIEL-style); lottery: Ansell et al. 2022, Composable Sparse Fine-Tuning for Cross-Lingual Transfer (LT-SFT); ist: Yao et al. 2024, Layer-wise Importance Matters: Less Memory for Better Performance in PEFT of LLMs (IST)',
  differs: [
    'lottery: only the targeted linear weights are fine-tuned (the paper\'s full phase moves every parameter but embeddings and layer norms), the full phase stays inside the base mask, no L1 penalty on Δ and no gradient clipping',
    'compose: one corpus per \'language\', so the language delta composed is the one the task delta was trained over (the paper swaps in the target language\'s delta)',
    'ist: the per-layer modules are the sparse deltas rather than LoRA adapters (the LoRA-family methods\' stage field ist samples adapters, as the paper); with fewer distinct probe sets than `probes` each is probed once',
  ],
  schema: sftConfigSchema,
  from: '@sparse/lora-variants',
  sparseDelta: true,
  run: runSFTStage,
  checkStage: (stage) => refuseStageIST(stage, 'takes IST as config.ist (its per-layer modules are the sparse deltas); the stage field ist is for the LoRA-family adapter methods'),
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

/** The flat indices of every entry of a layer the base keeps (all of them without a mask): LT-SFT's full phase. */
function keptSupport(args: StageArgs<Stage>, l: LinearInfo): Int32Array {
  const mask = args.ctx.masks.get(l.name);
  return mask ? maskIndices(mask) : Int32Array.from({ length: l.out * l.in }, (_, k) => k);
}

/**
 * compose: the deltas the named earlier stages saved, summed per weight (composeSparseDeltas) and
 * added to the model's weights. Each name must be an earlier adapt stage whose method saves sparse deltas (sft, diff pruning) and that did not
 * merge (else its delta would be counted twice); a delta may not touch an entry a mask has pruned since.
 */
async function applyComposed(args: StageArgs<Stage>, names: readonly string[]): Promise<string> {
  const { ctx, index } = args;
  const stages = ctx.recipe.stages;
  const byWeight = new Map<string, SparseDelta[]>();
  for (const [j, ref] of names.entries()) {
    const at = `stages[${index}].config.compose[${j}]`;
    const k = stages.findIndex((s, i) => i < index && stageLabel(s, i) === ref);
    if (k < 0) throw new Error(`${at}: no stage before this one is named '${ref}' (earlier stages: ${stages.slice(0, index).map((s, i) => `'${stageLabel(s, i)}'`).join(', ') || 'none'})`);
    const s = stages[k]!;
    if (s.stage !== 'adapt' || findMethod('adapt', s.method)?.sparseDelta !== true) {
      throw new Error(`${at}: '${ref}' is a ${s.stage}${'method' in s ? ` ${s.method}` : ''} stage; compose takes stages whose method saves sparse deltas (${methodsOf('adapt').filter((m) => m.sparseDelta === true).map((m) => m.name).join(', ')})`);
    }
    if (s.merge) throw new Error(`${at}: '${ref}' merged its delta into the weights already (merge: true); give it merge: false to compose it`);
    const deltas = await loadSparseDeltas(join(ctx.dir, 'exports', 'sft', `${exportNameOf(stages, k)}.safetensors`));
    for (const [w, d] of Object.entries(deltas)) byWeight.set(w, [...(byWeight.get(w) ?? []), d]);
  }
  let entries = 0;
  for (const [w, list] of byWeight) {
    const p = ctx.model.params[w];
    if (p === undefined) throw new Error(`stages[${index}].config.compose: a composed delta is for '${w}', which this model does not have`);
    const sum = composeSparseDeltas(list);
    if (p.shape[0] !== sum.shape[0] || p.shape[1] !== sum.shape[1]) throw new Error(`stages[${index}].config.compose: the delta for '${w}' is [${sum.shape.join(', ')}], the weight is [${p.shape.join(', ')}]`);
    const mask = ctx.masks.get(w);
    if (mask) for (const f of sum.indices) if (!isKept(mask, f)) throw new Error(`stages[${index}].config.compose: the composed delta of '${w}' changes entry ${f}, which the mask has pruned`);
    const data = Float32Array.from(p.dataSync() as Float32Array);
    sum.indices.forEach((f, q) => (data[f] = data[f]! + sum.values[q]!));
    const next = tf.tensor(data, p.shape);
    p.assign(next);
    next.dispose();
    entries += sum.indices.length;
  }
  return `${names.map((n) => `'${n}'`).join(' + ')}: ${entries.toLocaleString('en-US')} entries of ${byWeight.size} weights`;
}

/** Where an LT-SFT stage is: training every kept entry, or the ticket after the rewind. */
type LotteryPhase = 'full' | 'ticket';

async function runSFTStage(args: StageArgs<Stage>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as SFTConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const weights = Object.fromEntries(layers.map((l) => [l.name, ctx.model.params[l.name]!]));
  if (cfg.every > 0 && layers.some((l) => ctx.masks.has(l.name))) {
    throw new Error(`stages[${index}].config.every: drop-and-regrow could grow pruned entries of a masked weight; use every: 0 on a pruned model`);
  }
  const lottery = cfg.lottery;
  if (lottery && stage.supportScores !== undefined) throw new Error(`stages[${index}].supportScores: config.lottery chooses the support (the largest |Δ| of the full phase); drop supportScores`);
  // the composed deltas go into the weights once: a checkpoint inside this stage already holds them
  if (cfg.compose && !args.resume) ctx.log.say(`${label}: composed ${await applyComposed(args, cfg.compose)} added to the weights`);
  const seed = ctx.recipe.seed * 1000 + index;
  const adam = { lr: stage.lr, weightDecay: cfg.weightDecay };
  const saved = args.resume?.stageState?.sft as SparseFineTunerState | undefined;
  let phase: LotteryPhase | undefined = lottery ? ((args.resume?.stageState?.lotteryPhase as LotteryPhase | undefined) ?? 'full') : undefined;
  let tuner: SparseFineTuner;
  if (!lottery) {
    // drawn the same way on resume (the tuner is then built as before and loads its saved state)
    tuner = new SparseFineTuner(weights, {
      density: cfg.density,
      supports: initialSupports(args, layers, cfg.density),
      seed,
      adam,
      ...(cfg.every > 0 ? { regrow: { every: cfg.every, fraction: cfg.regrowFraction } } : {}),
    });
  } else if (phase === 'full') {
    tuner = new SparseFineTuner(weights, { supports: Object.fromEntries(layers.map((l) => [l.name, keptSupport(args, l)])), seed, adam });
  } else {
    // the ticket of the checkpoint: its layers (a global budget may leave a weight without entries) and supports
    const ticket = Object.fromEntries(Object.entries(saved!.layers).map(([n, s]) => [n, s.indices]));
    tuner = new SparseFineTuner(Object.fromEntries(Object.keys(ticket).map((n) => [n, weights[n]!])), { supports: ticket, seed, adam });
  }
  if (saved) tuner.load(saved);
  const base = layers.reduce((s, l) => s + l.out * l.in, 0);
  const ist = cfg.ist ? istSampler(args, layers, cfg.ist) : undefined;
  // a probe: the loss with the deltas of the suppressed layers scaled by ist.suppression
  const probeLoss: ProbeLoss = (b, suppressed) =>
    tf.tidy(() => {
      const ws = new Map(Object.keys(tuner.deltas()).map((n) => [n, tuner.effectiveWeight(n, suppressed.has(n) ? cfg.ist!.suppression : 1)]));
      const loss = ctx.model.loss(tf.tensor2d(b.inputs, [b.batch, b.len], 'int32'), tf.tensor2d(b.targets, [b.batch, b.len], 'int32'), { weight: (name, p) => ws.get(name) ?? p });
      return loss.dataSync()[0]!;
    });
  const fullSteps = lottery?.steps ?? 0;
  /** LT-SFT: the ticket of the full phase's Δ, then a fresh tuner on it with Δ = 0 (the rewind). */
  const rewind = (step: number) => {
    const ticket = lotteryTicketSupports(tuner.deltas(), { density: cfg.density, budget: lottery!.budget });
    const kept = Object.fromEntries(Object.entries(ticket).filter(([, t]) => t.length > 0));
    tuner.dispose();
    tuner = new SparseFineTuner(Object.fromEntries(Object.keys(kept).map((n) => [n, weights[n]!])), { supports: kept, seed, adam });
    phase = 'ticket';
    const count = tuner.trainableCount();
    ctx.log.say(`${label}: LT-SFT after ${step} full steps: kept the ${count.toLocaleString('en-US')} entries with the largest |Δ| (${lottery!.budget} budget, ${((count / base) * 100).toFixed(2)}%), rewound to the stage's starting weights`);
    ctx.log.event({ event: 'lt-sft', stage: index, label, action: 'rewind', step, budget: lottery!.budget, kept: Object.fromEntries(Object.entries(ticket).map(([n, t]) => [n, t.length])) });
  };
  try {
    const trainable = tuner.trainableCount();
    ctx.log.say(`${label}: sparse fine-tuning ${layers.length} layers, ${trainable.toLocaleString('en-US')} trainable entries (${((trainable / base) * 100).toFixed(2)}%)${phase === 'full' ? ` for the ${fullSteps} steps of LT-SFT's full phase` : ''}, optimizer state ${tuner.stateByteLength().toLocaleString('en-US')} bytes`);
    // each LT-SFT phase has its own warmup + cosine schedule (runSteps' default warmup rule per phase)
    const phaseLr = (step: number, scheduled: number): number => {
      if (!lottery) return scheduled;
      const [t, n] = step <= fullSteps ? [step, fullSteps] : [step - fullSteps, stage.steps];
      return lrAt(t, n, stage.lr, stage.warmup ?? Math.min(100, Math.floor(n / 10)), stage.minLrRatio);
    };
    const { losses } = await optimize(args, { ...stage, steps: fullSteps + stage.steps }, {
      update: async (ids, targets, lr, step) => {
        if (phase === 'full' && step > fullSteps) rewind(step - 1);
        const only = ist?.beforeStep(step, probeLoss);
        return { loss: tuner.minimize((ws) => ctx.model.loss(ids, targets, { weight: (name, p) => ws[name] ?? p }), { lr: phaseLr(step, lr), ...(only ? { only } : {}) }) };
      },
      stageState: () => ({ sft: tuner.state(), ...(phase ? { lotteryPhase: phase } : {}), ...(ist ? { ist: ist.state() } : {}) }),
    });
    // a stage with no steps after the full phase still ends with the (rewound, zero) ticket
    if (phase === 'full') rewind(fullSteps);
    const count = tuner.trainableCount();
    ctx.report.adapters.push({ name: label, variant: 'sft', trainable: count, base });
    const dir = join(ctx.dir, 'exports', 'sft');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${exportNameOf(ctx.recipe.stages, index)}.safetensors`);
    const bytes = await saveSparseDeltas(path, tuner.deltas());
    ctx.report.files.push({ label: `SFT delta ${label}`, path, bytes, denseBytes: base * 4 });
    if (stage.merge) tuner.merge();
    else ctx.report.notes.push(`${label}: merge: false, so the model goes on without the SFT delta (it is saved in ${path})`);
    const how = lottery ? `LT-SFT (${fullSteps} full steps, ${lottery.budget} ticket) at density ${cfg.density}` : `sft at density ${cfg.density}`;
    return { summary: `${how}, ${count} trainable${cfg.compose ? `, over ${cfg.compose.join(' + ')}` : ''}, final loss ${losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? ', merged' : ''}; delta ${bytes} bytes` };
  } finally {
    tuner.dispose();
  }
}
