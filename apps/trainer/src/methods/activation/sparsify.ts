// Activation sparsifiers of @sparse/activation as activation-stage methods: every registered method is
// one entry here. The stage captures the calibration activations of the sites the method acts on,
// calibrates, installs the sparsifiers in the run (every later forward pass applies them: evaluate,
// fine-tuning, and the activation.json an export writes for `sparse-train generate`), reports the
// achieved density, and optionally fine-tunes every weight with the sparsifier active.

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ActivationMeasure, activationMethods, type ActivationMethod, type Site, type SiteSample, type SiteSparsifier, type SiteWeight } from '@sparse/activation';
import { ArgumentError, parseConfig } from '@sparse/tensor';
import { atomicWriteFile } from '@sparse/tensor/node';
import type { z } from 'zod';
import type { DecoderActivationHook } from '../../model/decode.js';
import { createModel } from '../../model/index.js';
import { rotatedNorms, rotateNorms } from '../../model/rotate.js';
import { modelSites } from '../../model/sites.js';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { ActivationRecord, RunContext } from '../../run/context.js';
import type { ActivationCheckpoint } from '../../run/checkpoint.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { exportNameOf, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import { refuseAttachedAdapter } from '../train/weights.js';
import { densityChange, mlpDensity, withDensityLoss } from './density-loss.js';
import type { TrainerMethod } from '../types.js';

/** The weight consuming a linear-input site, [out, in] (a copy). */
function weightOf(ctx: RunContext, site: Site): SiteWeight | undefined {
  if (site.kind !== 'linear-input') return undefined;
  const v = ctx.model.params[site.name];
  if (v === undefined) return undefined;
  return { data: Float32Array.from(v.dataSync() as Float32Array), out: v.shape[0]!, in: v.shape[1]! };
}

/**
 * Activations at every site `def` acts on over the calibration windows (no sparsifier active); every
 * site of the model, acted on or not, also streams into `measure` (per-token density, |x| histograms).
 */
export function captureSites(ctx: RunContext, method: string, acts: (site: Site) => boolean, needsWeight: boolean, batches: readonly { ids: Int32Array; b: number; len: number }[], measure?: ActivationMeasure): SiteSample[] {
  const sites = modelSites(ctx.linears()).filter(acts);
  if (sites.length === 0) throw new ArgumentError(`activation method '${method}' acts on no site of this model (sites: ${[...new Set(modelSites(ctx.linears()).map((s) => s.role))].join(', ')})`);
  const wanted = new Map(sites.map((s) => [s.name, { site: s, parts: [] as Float32Array[], tokens: 0 }]));
  const base = ctx.hooks();
  const hooks = {
    ...base,
    activation: (site: Site, x: tf.Tensor2D) => {
      const w = wanted.get(site.name);
      if (w || measure) {
        const v = x.dataSync() as Float32Array;
        measure?.add(site, v, x.shape[0]);
        if (w) {
          w.parts.push(Float32Array.from(v));
          w.tokens += x.shape[0];
        }
      }
      return x;
    },
  };
  for (const { ids, b, len } of batches) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  return [...wanted.values()].map(({ site, parts, tokens }) => {
    const x = new Float32Array(tokens * site.features);
    let at = 0;
    for (const p of parts) {
      x.set(p, at);
      at += p.length;
    }
    const weight = needsWeight ? weightOf(ctx, site) : undefined;
    return { site, x, tokens, ...(weight ? { weight } : {}) };
  });
}

/**
 * The sparsifiers an activation record saved (a checkpoint's, or an export's activation.json), rebuilt by
 * the method's restore for a model with these linear layers; `weightOf` gives a linear input's weight
 * [out, in] for methods that need it.
 */
export function restoreSparsifiers(saved: ActivationCheckpoint, linears: readonly LinearInfo[], weightOf: (site: Site) => SiteWeight | undefined, where: string): Map<string, SiteSparsifier> {
  if (typeof saved !== 'object' || saved === null || typeof saved.method !== 'string' || typeof saved.states !== 'object' || saved.states === null) {
    throw new ArgumentError(`${where}: expected { method, config, states } of an activation stage`);
  }
  const def = activationMethods.get(saved.method);
  const config = parseConfig(def.schema, saved.config, `${where}: activation method '${saved.method}'`) as never;
  const sites = new Map(modelSites(linears).map((s) => [s.name, s]));
  const out = new Map<string, SiteSparsifier>();
  for (const [name, state] of Object.entries(saved.states)) {
    const site = sites.get(name);
    if (site === undefined) throw new ArgumentError(`${where}: site ${name} is not a site of this model`);
    out.set(name, def.restore(config, site, state, def.needs.includes('weight') ? weightOf(site) : undefined));
  }
  return out;
}

/** The file an activation stage writes its measurement of the dense activations to. */
export function measurementPath(args: Pick<StageArgs, 'ctx' | 'index'>): string {
  return join(args.ctx.dir, 'activations', `${exportNameOf(args.ctx.recipe.stages, args.index)}.json`);
}

/**
 * activations/<stage>.json: per site (every linear input and MLP activation), the per-token density of
 * exact zeros and of tiny values, |x| percentiles, and the mergeable |x| histogram's state
 * (AbsHistogram.fromState rebuilds it) for fitting thresholds later; measured before the stage's
 * sparsifier is installed.
 */
async function writeMeasurement(args: StageArgs<StageOf<'activation'>>, measure: ActivationMeasure): Promise<void> {
  const path = measurementPath(args);
  mkdirSync(dirname(path), { recursive: true });
  const report = measure.report();
  const sites = measure.measurements().map((m, i) => ({ ...report[i]!, role: m.site.role, block: m.site.block, kind: m.site.kind, features: m.site.features, density: m.density.state(), histogram: m.histogram.state() }));
  const text = `${JSON.stringify({ format: 'sparse-activation-measure/1', stage: args.index, label: args.label, eps: measure.eps, sites })}\n`;
  await atomicWriteFile(path, text);
  args.ctx.report.files.push({ label: `activation measurement (${args.label}, ${sites.length} sites)`, path, bytes: Buffer.byteLength(text) });
}

/** Rebuilds the activation record a checkpoint saved. */
export function restoreActivation(ctx: RunContext, saved: ActivationCheckpoint): ActivationRecord {
  const sparsifiers = restoreSparsifiers(saved, ctx.linears(), (site) => weightOf(ctx, site), `activation sparsifier of stage ${saved.stage}`);
  return { stage: saved.stage, label: saved.label, method: saved.method, config: saved.config, sparsifiers };
}

/**
 * The decoder's activation hook applying `sparsifiers` (by site name): zeroes in place, and returns the
 * product term of methods that add one (R-Sparse).
 */
export function decoderActivationHook(sparsifiers: ReadonlyMap<string, SiteSparsifier>): DecoderActivationHook {
  return (site, x, tokens) => {
    const sp = sparsifiers.get(site.name);
    if (sp === undefined) return undefined;
    if (!sp.correction) {
      sp.apply(x, tokens);
      return undefined;
    }
    const original = Float32Array.from(x);
    sp.apply(x, tokens);
    return sp.correction(original, x, tokens);
  };
}

/** What a checkpoint or an export stores of an activation record. */
export function activationCheckpoint(rec: ActivationRecord): ActivationCheckpoint {
  return { stage: rec.stage, label: rec.label, method: rec.method, config: rec.config, states: Object.fromEntries([...rec.sparsifiers].map(([k, s]) => [k, s.state()])) };
}

/** Achieved density per site on `batches` with the run's sparsifier active. */
export function measureDensity(ctx: RunContext, batches: readonly { ids: Int32Array; b: number; len: number }[]): Map<string, { kept: number; total: number }> {
  const counts = new Map<string, { kept: number; total: number }>();
  ctx.activationCounts = counts;
  try {
    const hooks = ctx.hooks();
    for (const { ids, b, len } of batches) tf.tidy(() => void ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks));
  } finally {
    ctx.activationCounts = undefined;
  }
  return counts;
}

/** Overall density (entries kept / seen) of per-site counts. */
export function overallDensity(counts: ReadonlyMap<string, { kept: number; total: number }>): number {
  let kept = 0;
  let total = 0;
  for (const c of counts.values()) {
    kept += c.kept;
    total += c.total;
  }
  return total === 0 ? 1 : kept / total;
}

/** Fine-tunes every weight for the stage's steps with the run's state (masks, sparsifier) active. */
export async function fineTuneWithActivation(args: StageArgs<StageOf<'activation'>>): Promise<string> {
  const { ctx, stage } = args;
  if (stage.steps === 0) return '';
  refuseAttachedAdapter(args);
  const density = stage.densityLoss ? withDensityLoss(ctx.hooks({ maskBase: true }), stage.densityLoss) : undefined;
  const hooks = density?.hooks ?? ctx.hooks({ maskBase: true });
  const before = stage.densityLoss ? mlpDensity(ctx, args.index) : undefined;
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => {
      const task = ctx.model.loss(ids, targets, hooks);
      return density ? density.total(task) : task;
    },
  });
  const note = before === undefined ? '' : densityChange(args, before);
  return r.losses.length ? `; fine-tuned ${stage.steps} steps, final loss ${r.losses.at(-1)!.toFixed(4)}${note}` : '';
}

/**
 * The stage's `rotate`: every block norm's output rotated into the right singular basis of the layers reading
 * it (model/rotate.ts), the run's model replaced by the rotated one (same function). Refused with an attached
 * adapter or masks on those layers (a rotated pruned weight is dense).
 */
export function rotateRunModel(args: StageArgs<StageOf<'activation'>>): string {
  const { ctx, label } = args;
  refuseAttachedAdapter(args);
  const norms = rotatedNorms(ctx.model.spec);
  const masked = norms.flatMap((n) => n.readers.map((l) => l.name)).filter((name) => ctx.masks.has(name));
  if (masked.length > 0) {
    throw new ArgumentError(`${label}: rotate would make the masked weights ${masked.slice(0, 3).join(', ')}${masked.length > 3 ? ` (and ${masked.length - 3} more)` : ''} dense: rotate before pruning, or leave rotate off`);
  }
  const r = rotateNorms(ctx.model.spec, ctx.paramValues());
  const next = createModel(r.spec, { values: r.values });
  ctx.model.dispose();
  ctx.replaceModel(next);
  // how unequal the rotated layers' column norms are: the spread WINA's score now weighs
  const spread = r.norms.map((n) => n.singular[0]! / Math.max(n.singular.at(-1)!, 1e-30));
  const median = [...spread].sort((a, b) => a - b)[Math.floor(spread.length / 2)]!;
  ctx.log.event({ event: 'activation-rotate', stage: args.index, label, norms: r.norms.map((n) => ({ rotation: n.rotation, singular: n.singular })) });
  const text = `rotated ${r.norms.length} norm outputs into their readers' singular bases (median largest/smallest column norm ${median.toFixed(1)})`;
  ctx.log.say(`${label}: ${text}`);
  return text;
}

/** The activation-stage method running a @sparse/activation method. */
export function activationSparsifyMethod(def: ActivationMethod): TrainerMethod<'activation'> {
  return {
    kind: 'activation',
    name: def.name,
    describe: def.describe,
    paper: def.paper,
    differs: def.differs,
    schema: def.schema as z.ZodType,
    from: '@sparse/activation',
    async run(args: StageArgs<StageOf<'activation'>>): Promise<StageOutcome> {
      const { ctx, stage, index, label } = args;
      let rotated = '';
      // a resumed fine-tuning keeps the sparsifier its checkpoint restored (and the rotated model, if rotated)
      if (!(args.resume && ctx.activation?.stage === index)) {
        if (ctx.activation) ctx.log.say(`${label}: replaces the activation sparsifier of ${ctx.activation.label}`);
        ctx.activation = undefined;
        if (stage.rotate) rotated = rotateRunModel(args);
        const batches = calibrationBatches(ctx, index, stage.calibrationData);
        const measure = new ActivationMeasure();
        const samples = captureSites(ctx, def.name, (site) => def.acts(stage.config as never, site), def.needs.includes('weight'), batches, measure);
        await writeMeasurement(args, measure);
        const sparsifiers = def.calibrate(stage.config as never, samples);
        ctx.activation = { stage: index, label, method: def.name, config: stage.config, sparsifiers: new Map(sparsifiers.map((s) => [s.site, s])) };
        const density = overallDensity(measureDensity(ctx, batches));
        // predictors (SparseLoRA's estimator, Polar's routers) report the recall of their predicted channels against the exact top set
        const recall = Object.fromEntries(sparsifiers.flatMap((sp) => {
          const st = sp.state() as { recall?: unknown } | null;
          return typeof st?.recall === 'number' ? [[sp.site, st.recall]] : [];
        }));
        const recalls = Object.values(recall);
        const meanRecall = recalls.length ? recalls.reduce((a, b) => a + b, 0) / recalls.length : undefined;
        ctx.log.event({ event: 'activation', stage: index, label, method: def.name, sites: sparsifiers.length, density, ...(meanRecall !== undefined ? { recall } : {}) });
        ctx.log.say(`${label}: ${def.name} on ${sparsifiers.length} sites, calibrated on ${samples[0]?.tokens ?? 0} tokens; density on the calibration windows ${(100 * density).toFixed(1)}%${meanRecall !== undefined ? `; predicted channels' recall of the exact top set ${meanRecall.toFixed(3)} (mean over ${recalls.length} predictors, calibration windows)` : ''}`);
      }
      const tuned = await fineTuneWithActivation(args);
      return { summary: `${rotated ? `${rotated}; ` : ''}${def.name} on ${ctx.activation!.sparsifiers.size} sites${tuned}` };
    },
  };
}
