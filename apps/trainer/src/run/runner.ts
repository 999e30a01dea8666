// Runs a resolved recipe in a run folder: recipe.json (resolved), metrics.jsonl, checkpoints/,
// exports/, report.html. A checkpoint is written at every stage boundary and every
// `checkpointEvery` steps inside training stages; `resumeRun` continues from the last one.

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { maskFromBooleans } from '@sparse/masks';
import { isNM } from '@sparse/nm';
import { ArgumentError } from '@sparse/tensor';
import { atomicWriteFile } from '@sparse/tensor/node';
import { chooseBackend } from '../backend.js';
import { createModel } from '../model/index.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import type { LanguageModel } from '../model/types.js';
import { resolveRecipe } from '../recipe/load.js';
import type { ResolvedRecipe, StageSpec } from '../recipe/schema.js';
import { getMethod } from '../methods/registry.js';
import type { MethodKind, TrainerMethod } from '../methods/types.js';
import { stageLabel, type StageArgs, type StageOutcome, type StageResume } from '../stages/common.js';
import { runEvaluateStage } from '../stages/evaluate.js';
import { runExportStage } from '../stages/export.js';
import { runReportStage } from '../stages/report.js';
import { readCheckpoint, writeCheckpoint, hasCheckpoint, type CheckpointContent } from './checkpoint.js';
import { RunContext } from './context.js';
import { loadRunData } from './data.js';
import { RunLog, type OutputMode, type RunIO } from './log.js';

export interface RunOptions {
  /** The run folder (created). */
  dir: string;
  mode?: OutputMode;
  io?: RunIO;
}

export interface RunSummary {
  dir: string;
  report?: string;
  evaluations: RunContext['report']['evaluations'];
  stages: RunContext['report']['stages'];
  /** Adapters trained by adapt stages, with trainable and base parameter counts. */
  adapters: RunContext['report']['adapters'];
  /** Files written by export and adapt stages, with sizes. */
  files: RunContext['report']['files'];
}

const RECIPE_FILE = 'recipe.json';

/** Index of the stage whose snapshot each distill stage uses as its teacher (-1: the initial model). */
export function teacherIndices(stages: readonly StageSpec[]): Map<number, number> {
  const out = new Map<number, number>();
  stages.forEach((s, i) => {
    if (s.stage !== 'distill') return;
    if (typeof s.teacher === 'number') {
      if (s.teacher >= i) throw new ArgumentError(`stages[${i}].teacher: must name an earlier stage, got ${s.teacher}`);
      out.set(i, s.teacher);
      return;
    }
    if (typeof s.teacher === 'string') {
      const j = stages.findIndex((t, k) => k < i && (t.name === s.teacher || stageLabel(t, k) === s.teacher));
      if (j < 0) throw new ArgumentError(`stages[${i}].teacher: no earlier stage is named '${s.teacher}'`);
      out.set(i, j);
      return;
    }
    // default: the model just before the first prune (the dense one)
    const firstPrune = stages.findIndex((t, k) => k < i && t.stage === 'prune');
    out.set(i, firstPrune < 0 ? i - 1 : firstPrune - 1);
  });
  return out;
}

function buildModel(recipe: ResolvedRecipe, vocab: number): Promise<LanguageModel> | LanguageModel {
  if ('checkpoint' in recipe.model) return loadCheckpoint(recipe.model.checkpoint as string);
  const { architecture, ...fields } = recipe.model as { architecture: 'gpt' | 'llama' } & Record<string, unknown>;
  return createModel({ architecture, vocab, ...fields } as never, { seed: recipe.seed });
}

async function contentOf(ctx: RunContext, next: { stage: number; step: number }, extra: Partial<CheckpointContent> = {}): Promise<CheckpointContent> {
  const params = new Map(Object.entries(ctx.model.params).map(([k, v]) => [k, { data: Float32Array.from(v.dataSync() as Float32Array), shape: [...v.shape] }]));
  const a = ctx.adapter;
  return {
    spec: ctx.model.spec as CheckpointContent['spec'],
    next,
    metricsBytes: ctx.log.metricsBytes(),
    report: ctx.report,
    ...(ctx.pattern ? { pattern: ctx.pattern } : {}),
    ...(ctx.calibration ? { calibration: ctx.calibration } : {}),
    params,
    masks: new Map(ctx.masks),
    ...(a
      ? {
          adapter: {
            stage: a.stage,
            label: a.label,
            variant: a.variant,
            config: a.config,
            targets: a.targets,
            seed: a.seed,
            layers: Object.fromEntries(Object.entries(a.model.adapterStates()).map(([n, s]) => [n, Object.fromEntries(Object.entries(s.params).map(([p, t]) => [p, t.data]))])),
          },
        }
      : {}),
    snapshots: ctx.snapshots,
    ...extra,
  };
}

async function execute(ctx: RunContext, start: { stage: number; resume?: StageResume }): Promise<RunSummary> {
  const stages = ctx.recipe.stages;
  const teachers = teacherIndices(stages);
  const wanted = new Set(teachers.values());
  if (wanted.has(-1) && start.stage === 0 && !start.resume) ctx.snapshots.set(-1, ctx.paramValues());
  for (let i = start.stage; i < stages.length; i++) {
    const stage = stages[i]!;
    const label = stageLabel(stage, i);
    const resume = i === start.stage ? start.resume : undefined;
    const args: StageArgs = {
      ctx,
      stage,
      index: i,
      label,
      ...(resume ? { resume } : {}),
      ...(teachers.has(i) ? { teacher: teachers.get(i)! } : {}),
      checkpoint: async (step, stageState, optimizer) => {
        await writeCheckpoint(ctx.dir, await contentOf(ctx, { stage: i, step }, { stageState, ...(optimizer ? { optimizer } : {}) }));
      },
    };
    ctx.log.event({ event: 'stage-start', stage: i, kind: stage.stage, label });
    const t0 = performance.now();
    let out: StageOutcome;
    switch (stage.stage) {
      case 'pretrain':
      case 'train':
      case 'prune':
      case 'adapt':
      case 'distill':
        // a method stage: its entry does the work
        out = await (getMethod(stage.stage, stage.method) as TrainerMethod<MethodKind>).run(args as StageArgs<never>);
        break;
      case 'calibrate':
        ctx.calibration = { windows: stage.windows, batch: stage.batch };
        out = { summary: `${stage.windows} calibration windows` };
        break;
      case 'evaluate':
        out = await runEvaluateStage(args as StageArgs<typeof stage>, i === 0 ? 'initial model' : `after ${stageLabel(stages[i - 1]!, i - 1)}`);
        break;
      case 'export':
        out = await runExportStage(args as StageArgs<typeof stage>);
        break;
      case 'report':
        // the report lists this stage too
        ctx.report.stages.push({ index: i, kind: stage.stage, label, ms: 0 });
        out = await runReportStage(args as StageArgs<typeof stage>);
        ctx.report.stages.pop();
        break;
    }
    const ms = performance.now() - t0;
    ctx.report.stages.push({ index: i, kind: stage.stage, ...('method' in stage ? { method: stage.method } : {}), label, ms, ...(out.summary ? { summary: out.summary } : {}) });
    ctx.log.event({ event: 'stage-end', stage: i, kind: stage.stage, label, ms, summary: out.summary });
    if (wanted.has(i)) ctx.snapshots.set(i, ctx.paramValues());
    // a snapshot is dropped once no later distill stage needs it
    for (const k of [...ctx.snapshots.keys()]) if (![...teachers].some(([d, t]) => t === k && d > i)) ctx.snapshots.delete(k);
    await writeCheckpoint(ctx.dir, await contentOf(ctx, { stage: i + 1, step: 0 }));
  }
  ctx.log.event({ event: 'done', report: ctx.reportPath });
  return { dir: ctx.dir, ...(ctx.reportPath ? { report: ctx.reportPath } : {}), evaluations: ctx.report.evaluations, stages: ctx.report.stages, adapters: ctx.report.adapters, files: ctx.report.files };
}

/**
 * A model loaded from a checkpoint may already be pruned: every linear weight with exact zeros gets
 * the mask of its nonzeros (trained dense weights are practically never exactly zero), and when all
 * of them follow one N:M pattern it becomes the run's pattern, so merges, masked training and the
 * compressed export keep it.
 */
export function adoptCheckpointSparsity(ctx: RunContext): string | undefined {
  const masked: string[] = [];
  for (const l of ctx.linears()) {
    const w = ctx.model.params[l.name]!.dataSync() as Float32Array;
    if (!w.includes(0)) continue;
    ctx.setMask(l.name, maskFromBooleans(Array.from(w, (x) => x !== 0), [l.out, l.in]));
    masked.push(l.name);
  }
  if (masked.length === 0) return undefined;
  for (const [n, m] of [[2, 4], [1, 4], [4, 8], [2, 8], [1, 2]] as const) {
    if (masked.every((name) => ctx.masks.get(name)!.shape[1]! % m === 0 && isNM(ctx.masks.get(name)!, { n, m }).valid)) {
      ctx.pattern = { n, m };
      break;
    }
  }
  return `${masked.length} pruned linear layers in the checkpoint${ctx.pattern ? ` (${ctx.pattern.n}:${ctx.pattern.m})` : ''}: their zeros are kept as masks`;
}

const defaultIO: RunIO = { stdout: process.stdout, stderr: process.stderr };

/** Starts a new run of `recipe` in `opts.dir`. */
export async function startRun(recipe: ResolvedRecipe, opts: RunOptions): Promise<RunSummary> {
  const dir = resolve(opts.dir);
  if (existsSync(join(dir, RECIPE_FILE))) {
    throw new ArgumentError(`run folder ${dir} already holds a run; continue it with 'sparse-train resume ${opts.dir}' or choose another --out`);
  }
  mkdirSync(dir, { recursive: true });
  await atomicWriteFile(join(dir, RECIPE_FILE), `${JSON.stringify(recipe, null, 2)}\n`);
  const log = new RunLog(join(dir, 'metrics.jsonl'), opts.mode ?? 'human', opts.io ?? defaultIO);
  const data = loadRunData(recipe.data);
  const backend = await chooseBackend();
  const model = await buildModel(recipe, data.main.tokenizer.vocabSize);
  const ctx = new RunContext(recipe, dir, model, data, log, backend);
  try {
    log.say(`sparse-train | run ${recipe.name} in ${dir} | backend ${backend.name}: ${backend.reason}`);
    log.say(`data   ${data.main.source}: ${data.main.tokens.length.toLocaleString('en-US')} tokens (${data.main.tokenizer.kind}-level, vocab ${data.main.tokenizer.vocabSize}); train ${data.main.train.length.toLocaleString('en-US')}, held out ${data.main.heldOut.length.toLocaleString('en-US')}`);
    log.say(`model  ${model.architecture} ${JSON.stringify(model.spec)}, ${model.numParams().toLocaleString('en-US')} parameters`);
    if ('checkpoint' in recipe.model) {
      const adopted = adoptCheckpointSparsity(ctx);
      if (adopted) log.say(`model  ${adopted}`);
    }
    log.event({ event: 'start', recipe: recipe.name, backend, model: { ...model.spec, params: model.numParams() }, stages: recipe.stages.length });
    return await execute(ctx, { stage: 0 });
  } finally {
    ctx.dispose();
    ctx.model.dispose();
    log.close();
  }
}

/** Continues the run in `dir` from its last checkpoint. */
export async function resumeRun(dirArg: string, opts: Omit<RunOptions, 'dir'> = {}): Promise<RunSummary> {
  const dir = resolve(dirArg);
  const recipePath = join(dir, RECIPE_FILE);
  if (!existsSync(recipePath)) throw new ArgumentError(`${dir} is not a run folder (no ${RECIPE_FILE})`);
  const recipe = resolveRecipe(JSON.parse(readFileSync(recipePath, 'utf8')), { source: recipePath });
  if (!hasCheckpoint(dir)) {
    // killed before the first checkpoint: start over in the same folder
    rmSync(join(dir, 'metrics.jsonl'), { force: true });
    rmSync(recipePath);
    return startRun(recipe, { dir, ...opts });
  }
  const cp = await readCheckpoint(dir);
  const log = new RunLog(join(dir, 'metrics.jsonl'), opts.mode ?? 'human', opts.io ?? defaultIO, cp.metricsBytes);
  const data = loadRunData(recipe.data);
  const backend = await chooseBackend();
  const model = createModel(cp.spec, { values: new Map([...cp.params].map(([k, v]) => [k, v.data])) });
  const ctx = new RunContext(recipe, dir, model, data, log, backend);
  try {
    ctx.report = cp.report;
    for (const [k, m] of cp.masks) ctx.setMask(k, m);
    ctx.pattern = cp.pattern;
    ctx.calibration = cp.calibration;
    for (const [k, s] of cp.snapshots) ctx.snapshots.set(k, s);
    if (cp.adapter) {
      const st = recipe.stages[cp.adapter.stage];
      const restore = st?.stage === 'adapt' ? getMethod('adapt', st.method).restoreAdapter : undefined;
      if (st?.stage !== 'adapt' || restore === undefined) throw new ArgumentError(`checkpoint in ${dir}: adapter from stage ${cp.adapter.stage}, which is not an adapt stage of the recipe with an adapter`);
      restore(ctx, st, cp.adapter.stage, cp.adapter);
    }
    log.say(`sparse-train | resuming ${recipe.name} in ${dir} at stage ${cp.next.stage + 1}/${recipe.stages.length}${cp.next.step ? `, after step ${cp.next.step}` : ''} | backend ${backend.name}`);
    log.event({ event: 'resume', stage: cp.next.stage, step: cp.next.step });
    const inStage = cp.next.step > 0 || cp.stageState !== undefined;
    return await execute(ctx, {
      stage: cp.next.stage,
      ...(inStage ? { resume: { step: cp.next.step, ...(cp.stageState ? { stageState: cp.stageState } : {}), ...(cp.optimizer ? { optimizer: cp.optimizer } : {}) } } : {}),
    });
  } finally {
    ctx.dispose();
    ctx.model.dispose();
    log.close();
  }
}
