// adapt methods from @sparse/lora-variants: every adapter variant with a tfjs form. The stage attaches
// the adapter to the targeted linear layers, trains only its tensors (ΔW through each base mask unless
// densify, so the trained function is the merged one), saves it in the PEFT layout, and merges it.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { attachAdapters, pruneDynamicRankModel, setPstSparsity, type AdapterModel } from '@sparse/lora-variants/tfjs';
import type { AdapterState, AdapterVariant } from '@sparse/lora-variants';
import { savePeftAdapter } from '@sparse/lora-variants/node';
import { getVariant, pstSparsityAt } from '@sparse/lora-variants';
import { SUPPORT_SCORE_METHODS, supportCriteria, supportScoresOf, type StageOf, type SupportScores } from '../../recipe/schema.js';
import type { CheckpointContent } from '../../run/checkpoint.js';
import type { RunContext } from '../../run/context.js';
import * as tf from '@tensorflow/tfjs-core';
import { HessianAccumulator } from '@sparse/pruners';
import { GradientAccumulator, SquaredGradientAccumulator } from '@sparse/masks';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import { sampleBatch, type Batch } from '../../data/dataset.js';
import type { LinearInfo } from '../../model/types.js';
import { configFields } from '../../recipe/fields.js';
import { calibrationBatches, capture, type Accumulators } from '../../stages/calibration.js';
import { selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { NamedAdam } from '../../train/adam.js';
import type { StageIssue, TrainerMethod } from '../types.js';

const wrapped = new WeakMap<AdapterVariant<never>, TrainerMethod<'adapt'>>();

/** The adapt method of a registered variant with a tfjs form (one entry per variant object). */
export function adapterMethod(variant: AdapterVariant<never>): TrainerMethod<'adapt'> {
  let m = wrapped.get(variant);
  if (m === undefined) {
    m = {
      kind: 'adapt',
      name: variant.name,
      describe: variant.describe,
      schema: variant.schema,
      from: '@sparse/lora-variants',
      run: (args) => runAdaptStage(variant, args),
      checkStage: (stage) => checkAdapterStage(stage),
      // the method's default criterion written out, so the resolved recipe (--explain, recipe.json) shows it
      resolveStage: (stage) => (stage.supportScores === undefined && supportCriteria(stage.method) !== undefined ? { ...stage, supportScores: supportScoresOf(stage) } : stage),
      restoreAdapter: (ctx, stage, index, saved) => restoreAdapter(ctx, stage, index, saved),
    };
    wrapped.set(variant, m);
  }
  return m;
}

/** Stage fields that only some variants take. */
function checkAdapterStage(s: StageOf<'adapt'>): StageIssue[] {
  const issues: StageIssue[] = [];
  if (s.relocalizeEvery !== undefined && s.method !== 'losia') {
    issues.push({ path: ['relocalizeEvery'], message: `only losia re-localizes its subnet during training; '${s.method}' does not` });
  } else if (s.relocalizeEvery !== undefined && s.supportScores === 'magnitude') {
    issues.push({ path: ['supportScores'], message: "re-localization needs data scores: 'sensitivity', 'gradient' or 'fisher', not 'magnitude'" });
  }
  if (s.rankBudget !== undefined && s.method !== 'dynamic-rank') {
    issues.push({ path: ['rankBudget'], message: `only the dynamic-rank method prunes rank during training; '${s.method}' does not` });
  }
  if (s.supportScores === undefined || s.supportScores === 'magnitude') return issues;
  const allowed = supportCriteria(s.method);
  if (allowed === undefined) {
    issues.push({ path: ['supportScores'], message: `'${s.method}' chooses no support from scores; supportScores applies to ${Object.keys(SUPPORT_SCORE_METHODS).join(', ')}` });
  } else if (!allowed.includes(s.supportScores)) {
    issues.push({ path: ['supportScores'], message: `'${s.method}' takes supportScores ${allowed.map((a) => `'${a}'`).join(' or ')}, not '${s.supportScores}'` });
  }
  return issues;
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
  });
  ctx.adapter = { stage: index, label, variant: stage.method, config: stage.config, targets: names, seed, model };
}

/**
 * Data-aware inits read calibration statistics the recipe cannot spell out: an input covariance per
 * layer (CorDA, Null-LoRA on the inputs' null space) or the loss gradient of each weight (LoRA-SB), put
 * into each layer's config when the method's config has such a field and the recipe left it out; and
 * the score matrices a sparse adapter chooses its support from (`supportScores`, see the recipe schema).
 */
function dataAwareConfigs(
  ctx: RunContext,
  stage: StageOf<'adapt'>,
  index: number,
  layers: LinearInfo[],
): { layerConfig?: Map<string, Record<string, unknown>>; scores?: Map<string, Float32Tensor> } {
  const fields = new Set(configFields(getVariant(stage.method).schema).map((f) => f.name));
  const cfg = stage.config as Record<string, unknown>;
  const wantsCov = fields.has('covariance') && cfg.covariance === undefined && cfg.inputs === undefined && (cfg.space === undefined ? !fields.has('space') : cfg.space === 'inputs');
  const wantsGrad = fields.has('gradient') && cfg.gradient === undefined;
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

/**
 * Per-layer score matrices [out, in] from the loss gradients g_b of the calibration batches: fisher
 * E[g²], gradient |E[g]| (SparseAdapter takes the signed E[g], it ranks by |E[g] Aᵀ| itself), sensitivity E[|W ⊙ g|].
 */
function supportScores(ctx: RunContext, stage: StageOf<'adapt'>, index: number, layers: LinearInfo[], criterion: Exclude<SupportScores, 'magnitude'>, draw?: string): Map<string, Float32Tensor> {
  const batches = supportScoreBatches(ctx, stage, index, draw);
  const shapes = layers.map((l) => [l.out, l.in]);
  const out = new Map<string, Float32Tensor>();
  if (criterion === 'fisher') {
    const accs = shapes.map((s) => new SquaredGradientAccumulator(s));
    weightGradients(ctx, layers, batches, (i, g) => accs[i]!.add(tensor(g, shapes[i]!)));
    layers.forEach((l, i) => out.set(l.name, accs[i]!.mean()));
  } else if (criterion === 'gradient') {
    const accs = shapes.map((s) => new GradientAccumulator(s));
    weightGradients(ctx, layers, batches, (i, g) => accs[i]!.add(tensor(g, shapes[i]!)));
    const signed = stage.method === 'sparse-adapter';
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

/**
 * LoSiA's periodic re-localization (`relocalizeEvery`): before step k·every + 1, each layer's trained
 * core goes into its weight and the subnet is chosen again by the stage's support scores at the current
 * weights, on batches drawn for that step. Each new core starts as a fresh variable of the optimizer
 * (`NamedAdam.reset`: zero moments, first-step bias correction). The subnets and those reset points
 * ride in the checkpoint's stage state, so a resumed run continues on the ones it had. `variables` are
 * the optimizer's keys of the adapter's variables.
 */
export function losiaRelocalization(
  args: StageArgs<StageOf<'adapt'>>,
  adapter: AdapterModel,
  variables: ReadonlyMap<string, tf.Variable>,
): { beforeStep: (step: number, optimizer: NamedAdam) => void; state: () => Record<string, unknown>; count: () => number } {
  const { ctx, stage, index } = args;
  const every = stage.relocalizeEvery!;
  const name = adapter.activeAdapter!;
  const layers = ctx.linears().filter((l) => l.name in adapter.weights);
  const keyOf = new Map([...variables].map(([k, v]) => [v, k]));
  const saved = args.resume?.stageState?.losia as { subnets: Record<string, { rows: number[]; cols: number[] }>; count: number } | undefined;
  if (saved) for (const [n, sub] of Object.entries(saved.subnets)) adapter.setSubnet(name, n, sub);
  let count = saved?.count ?? 0;
  // the cores' Adam reset points (NamedAdam.reset) travel with the optimizer's checkpointed state
  return {
    beforeStep(step, optimizer) {
      if (step <= 1 || (step - 1) % every !== 0) return;
      const scores = supportScores(ctx, stage, index, layers, supportScoresOf(stage) as Exclude<SupportScores, 'magnitude'>, `relocalize-${step}`);
      const done = adapter.relocalize((n) => scores.get(n), { densify: stage.densify });
      optimizer.reset(done.map((n) => {
        const key = keyOf.get(adapter.layerVariables(n, name).losia_core!);
        if (key === undefined) throw new Error(`relocalize: the core of '${n}' is not among the stage's trained variables`);
        return key;
      }));
      count++;
      ctx.log.event({ event: 'relocalize', stage: index, step });
    },
    state: () => ({
      losia: {
        count,
        subnets: Object.fromEntries(Object.entries(adapter.adapterStates(name)).map(([n, s]) => {
          const { rows, cols } = (s as AdapterState & { indices: Record<string, Int32Array> }).indices;
          return [n, { rows: Array.from(rows!), cols: Array.from(cols!) }];
        })),
      },
    }),
    count: () => count,
  };
}

/**
 * MoSA draws one module pair per training forward of each layer from a per-layer counter; the counters
 * ride in the checkpoint's stage state, so a resumed stage draws the modules an uninterrupted one would.
 */
export function mosaDrawState(args: StageArgs<StageOf<'adapt'>>, adapter: AdapterModel): () => Record<string, unknown> {
  const saved = args.resume?.stageState?.mosa as { draws: Record<string, number> } | undefined;
  if (saved) adapter.setMosaDraws(saved.draws);
  return () => ({ mosa: { draws: adapter.mosaDraws() } });
}

/**
 * The component budget of dynamic-rank before each step (undefined: no pruning at that step):
 * r per layer until `start`, then a cubic decay to `target` per layer at `end` (AdaLoRA's shape),
 * pruning every `every` steps and at `end`.
 */
function rankSchedule(stage: StageOf<'adapt'>, layers: number): (step: number) => number | undefined {
  const r = (stage.config as { r: number }).r;
  const b = stage.rankBudget ?? { target: Math.max(1, Math.ceil(r / 2)), start: 0.2, end: 0.7, every: 10 };
  const from = r * layers;
  const to = Math.max(1, Math.round(b.target * layers));
  const s0 = Math.floor(b.start * stage.steps);
  const s1 = Math.max(s0 + 1, Math.floor(b.end * stage.steps));
  return (step) => {
    if (step <= s0 || (step - s0) % b.every !== 0 && step !== s1) return undefined;
    if (step > s1) return undefined;
    const progress = (step - s0) / (s1 - s0);
    return Math.round(to + (from - to) * Math.pow(1 - progress, 3));
  };
}

async function runAdaptStage(variant: AdapterVariant<never>, args: StageArgs<StageOf<'adapt'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  if (ctx.adapter && ctx.adapter.stage !== index) throw new Error(`${label}: the adapter of '${ctx.adapter.label}' is still attached (merge it first)`);
  if (!ctx.adapter) attachStageAdapter(ctx, stage, index, label);
  const adapter = ctx.adapter!.model;
  const variables = new Map<string, tf.Variable>(adapter.trainableVariables().map((v, k) => [`adapter/${k}`, v]));
  const report = adapter.trainableReport();
  ctx.log.say(`${label}: ${stage.method} on ${report.layers.length} layers, ${report.trainable.toLocaleString('en-US')} trainable parameters (${(report.fraction * 100).toFixed(2)}% of the adapted weights)`);
  const hooks = ctx.hooks();
  adapter.training = true;
  const rankPrune = stage.method === 'dynamic-rank' ? rankSchedule(stage, report.layers.length) : undefined;
  let ranks: Record<string, number> | undefined;
  // PST's mask level follows its cubic schedule: a frozen adapter param, set before each step it changes
  let pstLevel: number | undefined;
  const setPstLevel = (step: number) => {
    const level = pstSparsityAt(stage.config, step, stage.steps);
    if (level === pstLevel) return;
    pstLevel = level;
    setPstSparsity(adapter, level);
  };
  const beforeStep = rankPrune
    ? (step: number) => {
        const budget = rankPrune(step);
        if (budget !== undefined) ranks = pruneDynamicRankModel(adapter, budget);
      }
    : stage.method === 'pst'
      ? setPstLevel
      : undefined;
  const losia = stage.relocalizeEvery !== undefined ? losiaRelocalization(args, adapter, variables) : undefined;
  const mosa = stage.method === 'mosa' ? mosaDrawState(args, adapter) : undefined;
  const extra = [losia?.state, mosa].filter((f) => f !== undefined);
  const r = await optimize(args, stage, {
    variables,
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    ...(beforeStep ? { beforeStep } : {}),
    ...(losia ? { beforeStep: losia.beforeStep } : {}),
    ...(extra.length > 0 ? { stageState: () => Object.assign({}, ...extra.map((f) => f())) as Record<string, unknown> } : {}),
  });
  if (losia && losia.count() > 0) {
    ctx.log.say(`${label}: re-localized the subnets ${losia.count()} times (every ${stage.relocalizeEvery} steps)`);
    ctx.report.notes.push(`adapter ${label}: the PEFT files hold the last subnet's core only; ${losia.count()} earlier cores were merged into the weights at re-localization`);
  }
  if (ranks) {
    const total = Object.values(ranks).reduce((a, b) => a + b, 0);
    ctx.log.say(`${label}: rank after pruning ${total} components over ${Object.keys(ranks).length} layers (${Object.entries(ranks).map(([n, k]) => `${n.replace(/\.weight$/, '')} ${k}`).join(', ')})`);
    ctx.log.event({ event: 'ranks', stage: index, ranks });
  }
  adapter.training = false;
  ctx.report.adapters.push({ name: label, variant: stage.method, trainable: report.trainable, base: report.base });
  // the adapter itself, in the PEFT layout, before it is merged away
  const states = adapter.adapterStates();
  const modules = Object.fromEntries(Object.entries(states).map(([n, s]) => [n.replace(/\.weight$/, ''), s]));
  const dir = join(ctx.dir, 'exports', 'adapters', label.replace(/[^A-Za-z0-9._-]/g, '_'));
  let saved = '';
  try {
    mkdirSync(dir, { recursive: true });
    await savePeftAdapter(dir, modules, { baseModelNameOrPath: null });
    saved = `, saved to ${dir}`;
    ctx.report.files.push({ label: `adapter ${label} (PEFT)`, path: dir, bytes: 0 });
  } catch (err) {
    ctx.report.notes.push(`adapter ${label} was not saved in the PEFT layout: ${(err as Error).message}`);
  }
  if (stage.merge) {
    adapter.merge({ densify: stage.densify });
    // a merge that changes the support (PST prunes to its mask M) leaves the new masks in the adapter
    if (variant.maskAfterMerge) for (const n of ctx.adapter!.targets) ctx.masks.set(n, adapter.mask(n)!);
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
  return { summary: `${stage.method}, ${report.trainable} trainable, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}${stage.merge ? `, merged${stage.densify ? ' (densified)' : ' through the masks'}` : ''}${saved}` };
}
