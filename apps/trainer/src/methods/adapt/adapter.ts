// adapt methods from @sparse/lora-variants: every adapter variant with a tfjs form. The stage attaches
// the adapter to the targeted linear layers, trains only its tensors (ΔW through each base mask unless
// densify, so the trained function is the merged one), saves it in the PEFT layout, and merges it.
//
// The stage field `ist` is IST (Yao et al. 2024, "Layer-wise Importance Matters: Less Memory for Better
// Performance in PEFT of LLMs") as the paper does it, on the adapters: the layers are the transformer
// blocks; each step only the adapter tensors of the blocks drawn by importance are trained (the only
// variables the gradient is taken for, so the other blocks' adapter gradients are never computed; their
// values and Adam moments stay as they are, and Adam's bias correction counts each tensor's own updates,
// as PyTorch's per-parameter step does); after every ist.every steps the scores learn from suppression
// probes: the loss of one batch from its own seeded stream with each probed set's adapter contribution
// (ΔW, a bias change, or a bottleneck's output term) scaled by ist.suppression, without gradients and
// with adapter.training off. Scores, the probe stream and the last step's blocks ride in the stage state
// (see ./ist.ts). Differs from the paper: with fewer distinct probe sets than ist.probes each is probed once.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { attachAdapters, getTfForm, type AdapterTrainingHooks } from '@sparse/lora-variants/tfjs';
import type { AdapterVariant, SupportCriterion } from '@sparse/lora-variants';
import { writeSafetensorsFile } from '@sparse/tensor/node';
import { getVariant, variants } from '@sparse/lora-variants';
import type { StageOf } from '../../recipe/schema.js';
import type { CheckpointContent } from '../../run/checkpoint.js';
import type { RunContext } from '../../run/context.js';
import * as tf from '@tensorflow/tfjs-core';
import { HessianAccumulator } from '@sparse/pruners';
import { applyMask, count, GradientAccumulator, principalWeightScores, SquaredGradientAccumulator } from '@sparse/masks';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import { sampleBatch, type Batch } from '../../data/dataset.js';
import type { LinearInfo } from '../../model/types.js';
import { coupledGroups } from '../../model/coupling.js';
import { CHECKPOINT_FORMAT } from '../../model/checkpoint.js';
import { hfUnsupported, saveHFCheckpoint, saveHFPEFTAdapter } from '../../model/hf.js';
import { calibrationBatches, capture, type Accumulators } from '../../stages/calibration.js';
import { exportNameOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import { densityChange, mlpDensity, withDensityLoss } from '../activation/density-loss.js';
import type { NamedAdam } from '../../train/adam.js';
import type { StageIssue, TrainerMethod } from '../types.js';
import { adapterIST } from './ist.js';

const wrapped = new WeakMap<AdapterVariant<never>, TrainerMethod<'adapt'>>();

/** The adapt method of a registered variant with a tfjs form (one entry per variant object). */
export function adapterMethod(variant: AdapterVariant<never>): TrainerMethod<'adapt'> {
  let m = wrapped.get(variant);
  if (m === undefined) {
    m = {
      kind: 'adapt',
      name: variant.name,
      // the paper and differs are the variant's own (IST is a stage field, its departure in the README)
      describe: `${variant.describe} (stage field ist: IST layer sampling, Yao et al. 2024)`,
      paper: variant.paper,
      differs: variant.differs,
      schema: variant.schema,
      from: '@sparse/lora-variants',
      run: (args) => runAdaptStage(variant, args),
      checkStage: (stage) => checkAdapterStage(variant, stage),
      // the variant's default criterion written out, so the resolved recipe (--explain, recipe.json) shows it
      resolveStage: (stage) => (stage.supportScores === undefined && criteriaOf(variant) !== undefined ? { ...stage, supportScores: supportScoresOf(stage) } : stage),
      restoreAdapter: (ctx, stage, index, saved) => restoreAdapter(ctx, stage, index, saved),
    };
    wrapped.set(variant, m);
  }
  return m;
}

/** The support criteria a variant accepts (its paper's default first), or undefined when it chooses no support from scores. */
function criteriaOf(variant: AdapterVariant<never>): readonly SupportCriterion[] | undefined {
  return variant.supportScores?.criteria;
}

/** The support criterion of an adapt stage: the recipe's, else the variant's default ('magnitude' for variants without a scored support). */
export function supportScoresOf(stage: { method: string; supportScores?: SupportCriterion }): SupportCriterion {
  return stage.supportScores ?? getVariant(stage.method).supportScores?.criteria[0] ?? 'magnitude';
}

/** supportScores against what the variant declares it accepts. */
function checkAdapterStage(variant: AdapterVariant<never>, s: StageOf<'adapt'>): StageIssue[] {
  // an adapter that is not a weight update (a bottleneck) cannot be merged: say so before the run starts
  const unmergeable = variant.unmergeable?.(s.config);
  if (unmergeable !== undefined && s.merge) return [{ path: ['merge'], message: `'${s.method}' cannot merge into the weights: ${unmergeable}` }];
  if (unmergeable !== undefined && s.densify) return [{ path: ['densify'], message: `'${s.method}': densify has no meaning for an adapter that is not a weight update (${unmergeable})` }];
  const scoring = variant.supportScores;
  const needsData = scoring?.needsData?.(s.config);
  if (needsData !== undefined && supportScoresOf(s) === 'magnitude') return [{ path: ['supportScores'], message: `'${s.method}': ${needsData}, not 'magnitude'` }];
  if (s.supportScores === undefined || s.supportScores === 'magnitude') return [];
  const allowed = criteriaOf(variant);
  if (allowed === undefined) {
    const scored = methodsWithScores();
    return [{ path: ['supportScores'], message: `'${s.method}' chooses no support from scores; supportScores applies to ${scored.join(', ')}` }];
  }
  if (!allowed.includes(s.supportScores)) return [{ path: ['supportScores'], message: `'${s.method}' takes supportScores ${allowed.map((a) => `'${a}'`).join(' or ')}, not '${s.supportScores}'` }];
  return [];
}

/** Registered variants that choose their support from scores. */
function methodsWithScores(): string[] {
  return variants.entries().filter((v) => v.supportScores !== undefined).map((v) => v.name);
}

/** A checkpoint inside an adapt stage: the adapter attached again as the stage attached it, then its saved values. */
function restoreAdapter(ctx: RunContext, stage: StageOf<'adapt'>, index: number, saved: NonNullable<CheckpointContent['adapter']>): void {
  attachStageAdapter(ctx, stage, index, saved.label);
  for (const [layer, params] of Object.entries(saved.layers)) ctx.adapter!.model.setAdapterParams(saved.label, layer, params);
}

/** Attaches the stage's adapter (also used to rebuild it on resume). */
export function attachStageAdapter(ctx: RunContext, stage: StageOf<'adapt'>, index: number, label: string): void {
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const names = layers.map((l) => l.name);
  const weights = Object.fromEntries(names.map((n) => [n, ctx.model.params[n]!]));
  const masks = Object.fromEntries(names.filter((n) => ctx.masks.has(n)).map((n) => [n, ctx.masks.get(n)!]));
  const seed = ctx.recipe.seed * 1000 + index;
  const { layerConfig, scores } = dataAwareConfigs(ctx, stage, index, layers);
  // biases by their weight's name, for variants with a bias part (SSF's shift)
  const biases = Object.fromEntries(layers.filter((l) => l.bias !== undefined).map((l) => [l.name, ctx.model.params[l.bias!]!]));
  const model = attachAdapters(weights, {
    biases,
    targets: names,
    variant: stage.method,
    config: stage.config,
    seed,
    masks,
    densify: stage.densify,
    adapterName: label,
    ...(layerConfig ? { layerConfig: (n: string) => layerConfig.get(n) } : {}),
    ...(scores ? { scores: (n: string) => scores.get(n) } : {}),
    // the model's coupled weights (heads across Q/K/V/O, channels across up/gate/down), for variants that select across them
    groups: coupledGroups(ctx.model.spec, ctx.linears()),
  });
  ctx.adapter = { stage: index, label, variant: stage.method, config: stage.config, targets: names, seed, model };
}

/**
 * Data-aware inits read statistics of the stage's data that the recipe cannot spell out, the ones the
 * variant declares (`initStatistics`): an input covariance per layer (CorDA, Null-LoRA on the inputs'
 * null space) or the loss gradient of each weight (LoRA-SB), put into each layer's config; and the
 * score matrices a sparse adapter chooses its support from (`supportScores`, see the recipe schema).
 */
function dataAwareConfigs(
  ctx: RunContext,
  stage: StageOf<'adapt'>,
  index: number,
  layers: LinearInfo[],
): { layerConfig?: Map<string, Record<string, unknown>>; scores?: Map<string, Float32Tensor> } {
  const variant = getVariant(stage.method);
  const wanted = new Set(variant.initStatistics?.(stage.config) ?? []);
  const wantsCov = wanted.has('covariance');
  const wantsGrad = wanted.has('gradient');
  const criterion = supportScoresOf(stage);
  const scores = criterion === 'magnitude' ? undefined : supportScores(ctx, stage, index, layers, criterion);
  if (!wantsCov && !wantsGrad) return { scores };
  const out = new Map<string, Record<string, unknown>>(layers.map((l) => [l.name, {}]));
  if (wantsCov) {
    const accs = new Map<string, Accumulators>(layers.map((l) => [l.name, { hessian: new HessianAccumulator(l.in, { name: l.name }) }]));
    capture(ctx, calibrationBatches(ctx, index, stage.data), accs);
    for (const l of layers) {
      const h = accs.get(l.name)!.hessian!.hessian();
      // the accumulator holds H = 2/n XᵀX; the covariance is XᵀX/n
      out.get(l.name)!.covariance = tensor(Float32Array.from(h.data as Float64Array, (x) => x / 2), [l.in, l.in]);
    }
    ctx.log.say(`${stage.method}: input covariances of ${layers.length} layers from calibration data`);
  }
  if (wantsGrad) {
    const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
    const len = Math.min(ctx.model.spec.ctx, data.length - 1);
    const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('init-gradient');
    const batches = Array.from({ length: 4 }, () => sampleBatch(data, 8, len, rng));
    const sums = layers.map((l) => new Float32Array(l.out * l.in));
    weightGradients(ctx, layers, batches, (i, g) => {
      for (let j = 0; j < g.length; j++) sums[i]![j]! += g[j]! / batches.length;
    });
    layers.forEach((l, i) => (out.get(l.name)!.gradient = tensor(sums[i]!, [l.out, l.in])));
    ctx.log.say(`${stage.method}: loss gradients of ${layers.length} weights from ${batches.length} calibration batches`);
  }
  return { layerConfig: out, scores };
}

/**
 * Calls `visit(i, g)` with the loss gradient of layers[i]'s weight on each batch in turn: ∂L/∂W at the
 * weight the forward pass uses (W + ΔW while an adapter is attached).
 */
function weightGradients(ctx: RunContext, layers: LinearInfo[], batches: Batch[], visit: (i: number, g: Float32Array) => void): void {
  const hooks = ctx.hooks();
  const slot = new Map(layers.map((l, i) => [l.name, i]));
  const current = layers.map((l) => tf.keep(hooks.weight?.(l.name, ctx.model.params[l.name]!) ?? ctx.model.params[l.name]!));
  try {
    for (const b of batches) {
      tf.tidy(() => {
        const ids = tf.tensor2d(b.inputs, [b.batch, b.len], 'int32');
        const targets = tf.tensor2d(b.targets, [b.batch, b.len], 'int32');
        const loss = (...ws: tf.Tensor[]) =>
          ctx.model.loss(ids, targets, { ...hooks, weight: (n, p) => (slot.has(n) ? ws[slot.get(n)!]! : (hooks.weight?.(n, p) ?? p)) }) as tf.Scalar;
        tf.grads(loss)(current).forEach((g, i) => visit(i, g.dataSync() as Float32Array));
      });
    }
  } finally {
    // the parameters themselves stay; only computed effective weights are ours to free
    current.forEach((t, i) => t !== ctx.model.params[layers[i]!.name] && t.dispose());
  }
}

/** The windows the support scores of adapt stage `index` average over: `supportBatches` batches of `batch` from the stage's data. */
export function supportScoreBatches(ctx: RunContext, stage: StageOf<'adapt'>, index: number, draw = 'support-scores'): Batch[] {
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = Math.min(ctx.model.spec.ctx, data.length - 1);
  const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork(draw);
  return Array.from({ length: stage.supportBatches }, () => sampleBatch(data, stage.batch, len, rng));
}

/** The rank of the approximation 'principal' support scores use: the stage's supportRank, else ceil(min(out, in) / 32), within [1, min(out, in)]. */
export function principalRankOf(stage: { supportRank?: number | undefined }, l: LinearInfo): number {
  const full = Math.min(l.out, l.in);
  return Math.min(full, Math.max(1, stage.supportRank ?? Math.ceil(full / 32)));
}

/**
 * Per-layer score matrices [out, in] from the loss gradients g_b of the calibration batches: fisher
 * E[g²], gradient |E[g]| (SparseAdapter takes the signed E[g], it ranks by |E[g] Aᵀ| itself), sensitivity
 * E[|W ⊙ g|]; principal needs no data: |W_r| of the effective weight's rank-r approximation (LIFT).
 */
export function supportScores(ctx: RunContext, stage: StageOf<'adapt'>, index: number, layers: LinearInfo[], criterion: Exclude<SupportCriterion, 'magnitude'>, draw?: string): Map<string, Float32Tensor> {
  const out = new Map<string, Float32Tensor>();
  if (criterion === 'principal') {
    const hooks = ctx.hooks();
    for (const l of layers) {
      const p = ctx.model.params[l.name]!;
      const w = tf.tidy(() => Float32Array.from((hooks.weight?.(l.name, p) ?? p).dataSync() as Float32Array));
      out.set(l.name, principalWeightScores(tensor(w, [l.out, l.in]), principalRankOf(stage, l), { rng: new Random(ctx.recipe.seed).fork(`stage-${index}`).fork(`principal-${l.name}`) }));
    }
    ctx.log.say(`${stage.method}: principal-weight support scores of ${layers.length} weights (rank ${stage.supportRank ?? 'ceil(min(out, in) / 32)'})`);
    return out;
  }
  const batches = supportScoreBatches(ctx, stage, index, draw);
  const shapes = layers.map((l) => [l.out, l.in]);
  if (criterion === 'fisher') {
    const accs = shapes.map((s) => new SquaredGradientAccumulator(s));
    weightGradients(ctx, layers, batches, (i, g) => accs[i]!.add(tensor(g, shapes[i]!)));
    layers.forEach((l, i) => out.set(l.name, accs[i]!.mean()));
  } else if (criterion === 'gradient') {
    const accs = shapes.map((s) => new GradientAccumulator(s));
    weightGradients(ctx, layers, batches, (i, g) => accs[i]!.add(tensor(g, shapes[i]!)));
    const signed = getVariant(stage.method).supportScores?.signed === true;
    layers.forEach((l, i) => {
      const mean = accs[i]!.mean();
      out.set(l.name, signed ? mean : tensor(Float32Array.from(mean.data, Math.abs), mean.shape));
    });
  } else {
    const hooks = ctx.hooks();
    const w = layers.map((l) => {
      const p = ctx.model.params[l.name]!;
      return tf.tidy(() => Float32Array.from((hooks.weight?.(l.name, p) ?? p).dataSync() as Float32Array));
    });
    const sums = layers.map((l) => new Float64Array(l.out * l.in));
    weightGradients(ctx, layers, batches, (i, g) => {
      const [s, wi] = [sums[i]!, w[i]!];
      for (let j = 0; j < g.length; j++) s[j]! += Math.abs(wi[j]! * g[j]!);
    });
    layers.forEach((l, i) => out.set(l.name, tensor(Float32Array.from(sums[i]!, (x) => x / batches.length), [l.out, l.in])));
  }
  ctx.log.say(`${stage.method}: support scores (${criterion}) of ${layers.length} weights from ${batches.length} batches of ${stage.batch} windows`);
  return out;
}

async function runAdaptStage(variant: AdapterVariant<never>, args: StageArgs<StageOf<'adapt'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  if (ctx.adapter && ctx.adapter.stage !== index) throw new Error(`${label}: the adapter of '${ctx.adapter.label}' is still attached (merge it first)`);
  if (!ctx.adapter) attachStageAdapter(ctx, stage, index, label);
  const adapter = ctx.adapter!.model;
  const all = new Map<string, tf.Variable>(adapter.trainableVariables().map((v, k) => [`adapter/${k}`, v]));
  // with IST the optimizer's map holds only the drawn blocks' variables, refilled before each step
  const variables = stage.ist ? new Map(all) : all;
  const report = adapter.trainableReport();
  ctx.log.say(`${label}: ${stage.method} on ${report.layers.length} layers, ${report.trainable.toLocaleString('en-US')} trainable parameters (${(report.fraction * 100).toFixed(2)}% of the adapted weights)`);
  const density = stage.densityLoss ? withDensityLoss(ctx.hooks(), stage.densityLoss) : undefined;
  const hooks = density?.hooks ?? ctx.hooks();
  const before = stage.densityLoss ? mlpDensity(ctx, index) : undefined;
  adapter.training = true;
  // the variant's own lifecycle in training (schedules, re-selection, counters), from its tfjs form
  const training = adapterTraining(args, variant, all);
  const ist = stage.ist ? adapterIST(args, stage.ist, all, variables) : undefined;
  // IST's Adam bookkeeping before the variant's hooks (which may reset a key), its draw after them
  const variantStep = training.beforeStep;
  const beforeStep = ist
    ? (step: number, optimizer: NamedAdam) => ist.beforeStep(step, optimizer, variantStep && (() => variantStep(step, optimizer)))
    : variantStep;
  const stageState = ist ? () => ({ ...(training.stageState?.() ?? {}), ist: ist.state() }) : training.stageState;
  const r = await optimize(args, stage, {
    variables,
    loss: (ids, targets) => {
      const lm = ctx.model.loss(ids, targets, hooks);
      const task = density ? density.total(lm) : lm;
      const extra = training.loss?.();
      return extra === undefined ? task : (tf.add(task, extra) as tf.Scalar);
    },
    ...(beforeStep ? { beforeStep } : {}),
    ...(training.gradient ? { gradTransform: training.gradient } : {}),
    ...(stageState ? { stageState } : {}),
  });
  const trainingSummary = training.finish();
  adapter.training = false;
  const densityNote = before === undefined ? '' : densityChange(args, before);
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: report.trainable, base: report.base });
  // the adapter itself, in the PEFT layout with Hugging Face module names, and the unmerged (pruned) base
  // it applies to, before the adapter is merged away
  const states = adapter.adapterStates();
  const modules = Object.fromEntries(Object.entries(states).map(([n, s]) => [n.replace(/\.weight$/, ''), s]));
  const dir = join(ctx.dir, 'exports', 'adapters', exportNameOf(ctx.recipe.stages, index));
  let saved = '';
  try {
    mkdirSync(dir, { recursive: true });
    await saveHFPEFTAdapter(dir, ctx.model.spec, modules, baseModelNameOrPath(ctx));
    saved = `, saved to ${dir}`;
    ctx.report.files.push({ label: `adapter ${label} (PEFT)`, path: dir, bytes: 0 });
    const base = await saveUnmergedBase(ctx, join(dir, 'base'));
    // not labelled 'adapter ...': the export stage counts those as adapter folders
    ctx.report.files.push({ label: `base of adapter ${label} (unmerged, pruned: the adapter applies to this)`, path: base.path, bytes: base.bytes });
    writeFileSync(join(dir, ADAPTER_EXPORT_FILE), `${JSON.stringify(adapterExportInfo(stage.method, base.hf, ctx), null, 2)}\n`);
  } catch (err) {
    ctx.report.notes.push(`adapter ${label} was not saved in the PEFT layout: ${(err as Error).message}`);
  }
  if (stage.merge) {
    adapter.merge({ densify: stage.densify });
    // a merge that changes the support (PST prunes to its mask M) leaves the new masks in the adapter
    // (a mask that keeps every entry of a layer the run held no mask for is no pattern: not registered)
    if (variant.maskAfterMerge) {
      for (const n of ctx.adapter!.targets) {
        const m = adapter.mask(n)!;
        if (ctx.masks.has(n) || count(m) < m.shape[0]! * m.shape[1]!) ctx.masks.set(n, m);
      }
    }
    adapter.mergeAndUnload({ densify: stage.densify });
    adapter.dispose(); // its masks (kept for a next adapter) are ours to free: the stage's model ends here
    if (stage.densify) {
      const pruned = ctx.adapter!.targets.filter((n) => ctx.masks.has(n)).length;
      if (pruned > 0) ctx.report.notes.push(`adapter ${label}: densify: ΔW was trained and merged on every entry, so the sparsity pattern of ${pruned} layers was dropped`);
      for (const n of ctx.adapter!.targets) ctx.masks.delete(n);
      if (ctx.masks.size === 0) ctx.pattern = undefined;
    }
    ctx.adapter = undefined;
  }
  return { summary: `${stage.method}, ${report.trainable} trainable${ist ? `, IST (${ist.perStep} of ${ist.blocks} blocks per step)` : ''}${trainingSummary ? `, ${trainingSummary}` : ''}${densityNote}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? `, merged${stage.densify ? ' (densified)' : ' through the masks'}` : ''}${saved}` };
}

/** Written beside each adapter folder's files: which file is which. */
export const ADAPTER_EXPORT_FILE = 'export.json';

/**
 * base_model_name_or_path: the checkpoint folder the run started from (a file's folder: transformers
 * loads folders and hub ids, not files), or null for a model built from scratch.
 */
export function baseModelNameOrPath(ctx: Pick<RunContext, 'recipe'>): string | null {
  const m = ctx.recipe.model as { checkpoint?: unknown };
  if (typeof m.checkpoint !== 'string') return null;
  return /\.(safetensors|json)$/.test(m.checkpoint) ? dirname(m.checkpoint) : m.checkpoint;
}

/**
 * The model's current weights with every pruning mask applied: the base the adapter was trained on.
 * Hugging Face layout (base/model.safetensors + base/config.json) when the model has an equivalent;
 * else our checkpoint format (base/model.safetensors, readCheckpoint reads either).
 */
async function saveUnmergedBase(ctx: RunContext, dir: string): Promise<{ path: string; bytes: number; hf: boolean }> {
  const values = ctx.paramValues();
  for (const [k, v] of values) {
    const mask = ctx.masks.get(k);
    if (mask !== undefined) values.set(k, applyMask(mask, tensor(v, [...ctx.model.params[k]!.shape])).data as Float32Array);
  }
  if (hfUnsupported(ctx.model.spec) === null) return { path: dir, bytes: await saveHFCheckpoint(dir, ctx.model.spec, values), hf: true };
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'model.safetensors');
  const entries = Object.fromEntries([...values].map(([k, v]) => [k, tensor(v, [...ctx.model.params[k]!.shape])]));
  return { path, bytes: await writeSafetensorsFile(path, entries, { format: CHECKPOINT_FORMAT, spec: JSON.stringify(ctx.model.spec) }), hf: false };
}

/** The contents of export.json in an adapter folder. */
export function adapterExportInfo(variant: string, hfBase: boolean, ctx: Pick<RunContext, 'recipe'>): Record<string, unknown> {
  return {
    variant,
    adapter: { config: 'adapter_config.json', weights: 'adapter_model.safetensors', sparseConfig: variant === 'sqft' ? 'sparse_adapter_config.json' : null },
    base: {
      path: 'base',
      what: 'the unmerged, pruned weights the adapter was trained on (pruning masks applied, adapter not merged)',
      layout: hfBase ? 'Hugging Face (config.json + model.safetensors)' : 'sparse-train checkpoint (model.safetensors)',
    },
    baseModelNameOrPath: baseModelNameOrPath(ctx),
    merged: 'the merged model is the export stage\'s ../../model.safetensors (when the recipe merges and exports dense)',
  };
}

/**
 * The variant's training hooks (its tfjs form's `training`) wired into the stage: data scores for
 * variants that re-select their support (fresh batches per draw), optimizer moments reset for tensors a
 * hook re-initialized (NamedAdam.reset, whose reset points ride with the optimizer's checkpointed state),
 * the hooks' state in the checkpoint's stage state (and loaded back on resume), their events and notes
 * in the log and the report, their loss term added to the task loss, each step's gradients shown to them, their summary phrase returned by
 * `finish` for the stage's summary. `variables` are the optimizer's keys of the adapter's variables.
 */
export function adapterTraining(
  args: StageArgs<StageOf<'adapt'>>,
  variant: AdapterVariant<never>,
  variables: ReadonlyMap<string, tf.Variable>,
): {
  beforeStep?: (step: number, optimizer: NamedAdam) => void;
  stageState?: () => Record<string, unknown>;
  loss?: () => tf.Scalar | undefined;
  gradient?: (key: string, variable: tf.Variable, grad: tf.Tensor) => tf.Tensor;
  finish: () => string | undefined;
} {
  const { ctx, stage, index, label } = args;
  const form = getTfForm(variant.name);
  const adapter = ctx.adapter!.model;
  const criterion = supportScoresOf(stage);
  const layers = ctx.linears().filter((l) => l.name in adapter.weights);
  const hooks: AdapterTrainingHooks =
    form?.training?.({
      model: adapter,
      adapter: adapter.activeAdapter!,
      config: stage.config,
      steps: stage.steps,
      ...(criterion === 'magnitude'
        ? {}
        : {
            scores: (draw: string) => {
              const scores = supportScores(ctx, stage, index, layers, criterion, draw);
              return (n: string) => scores.get(n);
            },
          }),
    }) ?? {};
  const resumed = args.resume?.stageState?.adapter;
  if (resumed !== undefined) hooks.load?.(resumed);
  const keyOf = new Map([...variables].map(([k, v]) => [v, k]));
  return {
    ...(hooks.beforeStep
      ? {
          beforeStep: (step: number, optimizer: NamedAdam) => {
            const out = hooks.beforeStep!(step);
            if (!out) return;
            if (out.reset?.length) {
              optimizer.reset(out.reset.map((v) => {
                const key = keyOf.get(v);
                if (key === undefined) throw new Error(`${label}: ${stage.method} re-initialized a tensor that is not among the stage's trained variables`);
                return key;
              }));
            }
            if (out.event) ctx.log.event({ ...out.event, stage: index });
          },
        }
      : {}),
    ...(hooks.state ? { stageState: () => ({ adapter: hooks.state!() }) } : {}),
    ...(hooks.loss ? { loss: () => hooks.loss!() } : {}),
    ...(hooks.gradient
      ? {
          gradient: (_key: string, variable: tf.Variable, grad: tf.Tensor) => {
            hooks.gradient!(variable, grad);
            return grad;
          },
        }
      : {}),
    finish: () => {
      const done = hooks.finish?.() ?? {};
      if (done.log) ctx.log.say(`${label}: ${done.log}`);
      if (done.event) ctx.log.event({ ...done.event, stage: index });
      if (done.note) ctx.report.notes.push(`adapter ${label}: ${done.note}`);
      return done.summary;
    },
  };
}
