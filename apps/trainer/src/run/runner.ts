// Runs a resolved recipe in a run folder: the run marker (sparse-run.json), recipe.json (resolved),
// metrics.jsonl, checkpoints/, exports/, report.html. A checkpoint is written at every stage
// boundary, every `checkpointEvery` steps inside training stages and at the step where a stop was
// asked for; `resumeRun` continues from the last one. A lock file keeps a second process out.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { maskFromBooleans } from '@sparse/masks';
import { isNM } from '@sparse/nm';
import { ArgumentError } from '@sparse/tensor';
import { atomicWriteFile } from '@sparse/tensor/node';
import { chooseBackend } from '../backend.js';
import { isStdinPath, readStdinBytes } from '../data/files.js';
import { createModel } from '../model/index.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import type { LanguageModel, ModelSpec } from '../model/types.js';
import { RecipeError } from '../recipe/errors.js';
import { resolveRecipe } from '../recipe/load.js';
import type { ResolvedRecipe, StageSpec } from '../recipe/schema.js';
import { getMethod } from '../methods/registry.js';
import type { MethodKind, TrainerMethod } from '../methods/types.js';
import { activationCheckpoint, restoreActivation } from '../methods/activation/sparsify.js';
import { attentionCheckpoint, restoreAttention } from '../methods/attention/record.js';
import { stageLabel, type StageArgs, type StageOutcome, type StageResume } from '../stages/common.js';
import { runEvaluateStage } from '../stages/evaluate.js';
import { runExportStage } from '../stages/export.js';
import { runReportStage } from '../stages/report.js';
import { TrainingDivergedError } from '../train/steps.js';
import { CHECKPOINT_DIR, readCheckpoint, writeCheckpoint, hasCheckpoint, type CheckpointContent } from './checkpoint.js';
import { RunContext, type RunData } from './context.js';
import { loadRunData } from './data.js';
import { MEASURED_KINDS, UpdateTracker } from './update-sets.js';
import {
  CheckpointDamagedError,
  describeChanges,
  isErrnoError,
  RecipeChangedError,
  RunDivergedError,
  RunFolderError,
  RunInterrupted,
  RunWriteError,
  writeFailureText,
} from './errors.js';
import { acquireRunLock, checkNewRunFolder, createRunFolder, isRunFolder, readMarker, RECIPE_FILE, recipeChanges, removeStaleTemps, RUN_LOCK, RUN_MARKER, writeMarker, type RunLock } from './folder.js';
import { RunLog, type OutputMode, type RunIO } from './log.js';
import { checkRunResources, checkStageShapes } from './preflight.js';

export interface RunOptions {
  /** The run folder (created, or an empty folder). */
  dir: string;
  mode?: OutputMode;
  io?: RunIO;
  /**
   * Aborting asks the run to stop: the current step finishes, a checkpoint is written at it, and the
   * run ends with RunInterrupted (its `reason`, e.g. 'SIGINT', names the cause).
   */
  signal?: AbortSignal;
  /** Standard input's bytes, when the recipe's data.path is '-' and the caller has read them (default: read here). */
  stdin?: Uint8Array;
  /** Where the recipe came from, for errors (default: its name). */
  source?: string;
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
    ...(ctx.activation ? { activation: activationCheckpoint(ctx.activation) } : {}),
    ...(ctx.attention ? { attention: attentionCheckpoint(ctx.attention) } : {}),
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

/** Writes a checkpoint at `next`; a file that cannot be written is a RunWriteError, and a stop request ends the run there. */
async function saveCheckpoint(ctx: RunContext, next: { stage: number; step: number }, extra: Partial<CheckpointContent> = {}): Promise<void> {
  const content = await contentOf(ctx, next, extra);
  try {
    await writeCheckpoint(ctx.dir, content);
  } catch (err) {
    throw writeError(err, join(ctx.dir, CHECKPOINT_DIR), ctx.dir);
  }
  const stages = ctx.recipe.stages.length;
  if (ctx.stopSignal?.aborted && next.stage < stages) throw new RunInterrupted(stopReason(ctx.stopSignal), ctx.dir, next, stages);
}

function stopReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'a stop request';
}

async function execute(ctx: RunContext, start: { stage: number; resume?: StageResume }): Promise<RunSummary> {
  const stages = ctx.recipe.stages;
  const teachers = teacherIndices(stages);
  const wanted = new Set(teachers.values());
  if (wanted.has(-1) && start.stage === 0 && !start.resume) ctx.snapshots.set(-1, ctx.paramValues());
  if (ctx.stopSignal?.aborted) {
    // asked to stop before the first stage ran: the checkpoint there (a resumed stage's is on disk)
    if (start.resume) throw new RunInterrupted(stopReason(ctx.stopSignal), ctx.dir, { stage: start.stage, step: start.resume.step }, stages.length);
    await saveCheckpoint(ctx, { stage: start.stage, step: 0 });
  }
  const updates = new UpdateTracker();
  for (let i = start.stage; i < stages.length; i++) {
    const stage = stages[i]!;
    const label = stageLabel(stage, i);
    const resume = i === start.stage ? start.resume : undefined;
    const measured = MEASURED_KINDS.includes(stage.stage);
    if (measured) updates.start(ctx, resume !== undefined);
    const args: StageArgs = {
      ctx,
      stage,
      index: i,
      label,
      ...(resume ? { resume } : {}),
      ...(teachers.has(i) ? { teacher: teachers.get(i)! } : {}),
      checkpoint: async (step, stageState, optimizer) => {
        await saveCheckpoint(ctx, { stage: i, step }, { stageState, ...(optimizer ? { optimizer } : {}) });
      },
    };
    ctx.log.event({ event: 'stage-start', stage: i, kind: stage.stage, label });
    const t0 = performance.now();
    let out: StageOutcome;
    try {
      switch (stage.stage) {
        case 'pretrain':
        case 'train':
        case 'prune':
        case 'adapt':
        case 'distill':
        case 'activation':
        case 'attention':
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
    } catch (err) {
      ctx.log.endProgress();
      if (err instanceof TrainingDivergedError) throw divergedError(ctx, i, label, err);
      throw err;
    }
    const ms = performance.now() - t0;
    ctx.report.stages.push({ index: i, kind: stage.stage, ...('method' in stage ? { method: stage.method } : {}), label, ms, ...(out.summary ? { summary: out.summary } : {}) });
    ctx.log.event({ event: 'stage-end', stage: i, kind: stage.stage, label, ms, summary: out.summary });
    if (measured) updates.finish(ctx, i, label);
    if (wanted.has(i)) ctx.snapshots.set(i, ctx.paramValues());
    // a snapshot is dropped once no later distill stage needs it
    for (const k of [...ctx.snapshots.keys()]) if (![...teachers].some(([d, t]) => t === k && d > i)) ctx.snapshots.delete(k);
    await saveCheckpoint(ctx, { stage: i + 1, step: 0 });
  }
  ctx.log.event({ event: 'done', report: ctx.reportPath });
  return { dir: ctx.dir, ...(ctx.reportPath ? { report: ctx.reportPath } : {}), evaluations: ctx.report.evaluations, stages: ctx.report.stages, adapters: ctx.report.adapters, files: ctx.report.files };
}

/** A NaN or infinite loss in stage `i`: what happened, and how to go on (a lower lr, from the last checkpoint when there is one). */
function divergedError(ctx: RunContext, i: number, label: string, err: TrainingDivergedError): RunDivergedError {
  const stage = ctx.recipe.stages[i]!;
  const lr = 'lr' in stage && typeof stage.lr === 'number' ? ` (now ${stage.lr})` : '';
  const how = hasCheckpoint(ctx.dir)
    ? `lower stages[${i}].lr${lr} in ${join(ctx.dir, RECIPE_FILE)} and continue from the last checkpoint with 'sparse-train resume ${ctx.dir} --allow-recipe-change'`
    : `lower stages[${i}].lr${lr} (or clipNorm) in the recipe and run it again`;
  return new RunDivergedError(`stage ${i + 1}/${ctx.recipe.stages.length} (${label}) diverged: the loss is ${err.loss} at step ${err.step}; ${how}`, i, err.step, err.loss, { cause: err });
}

/** An errno failure writing a run file as a RunWriteError (other errors unchanged). */
function writeError(err: unknown, path: string, dir: string): unknown {
  if (err instanceof RunWriteError || !isErrnoError(err) || writeFailureText(err.code) === undefined) return err;
  return new RunWriteError(err.path ?? path, err.code, dir, hasCheckpoint(dir), { cause: err });
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

/** Every run output a start before the first checkpoint may have left (the marker, recipe, lock and data copy stay). */
const RUN_OUTPUTS = ['metrics.jsonl', CHECKPOINT_DIR, 'exports', 'report.html', 'plots'];

/** The model, data and backend of a fresh run, every check passed; nothing is written yet. */
async function prepareFresh(recipe: ResolvedRecipe, source: string, stdin: () => Uint8Array | undefined): Promise<{ data: RunData; backend: { name: string; reason: string }; model: LanguageModel; stdin?: Uint8Array }> {
  checkRunResources(recipe, {}, source);
  // modules first (the backend's packages load here), then the data
  const backend = await chooseBackend();
  const bytes = stdin();
  const data = loadRunData(recipe.data, bytes ? { stdin: bytes } : {});
  const model = await buildModel(recipe, data.main.tokenizer.vocabSize);
  try {
    checkRunResources(recipe, { spec: model.spec as ModelSpec, tokens: data.main.tokens.length }, source);
    checkStageShapes(recipe, model.linears(), 0, source);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { data, backend, model, ...(bytes ? { stdin: bytes } : {}) };
}

/** Runs a fresh recipe in a prepared, locked folder whose marker and recipe.json are written. */
async function runFresh(recipe: ResolvedRecipe, dir: string, opts: Omit<RunOptions, 'dir'>, prepared: Awaited<ReturnType<typeof prepareFresh>>): Promise<RunSummary> {
  const { data, backend, model } = prepared;
  let log: RunLog;
  try {
    log = new RunLog(join(dir, 'metrics.jsonl'), opts.mode ?? 'human', opts.io ?? defaultIO);
  } catch (err) {
    model.dispose();
    throw writeError(err, dir, dir);
  }
  const ctx = new RunContext(recipe, dir, model, data, log, backend);
  ctx.stopSignal = opts.signal;
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
  } catch (err) {
    throw writeError(err, dir, dir);
  } finally {
    ctx.dispose();
    ctx.model.dispose();
    log.close();
  }
}

/**
 * Starts a new run of `recipe` in `opts.dir` (a new or empty folder). Everything is checked before
 * anything is written: the memory the run needs, the data, the stage fields that depend on the model.
 * The folder gets the run marker, recipe.json and a lock while the run goes on. A start that fails
 * before its first checkpoint removes what it wrote (so the same --out can be used again); a stop
 * request (`opts.signal`) ends it with RunInterrupted after a checkpoint.
 */
export async function startRun(recipe: ResolvedRecipe, opts: RunOptions): Promise<RunSummary> {
  const dir = resolve(opts.dir);
  if (isRunFolder(dir) || existsSync(join(dir, RECIPE_FILE))) {
    throw new RunFolderError(dir, `run folder ${dir} already holds a run; continue it with 'sparse-train resume ${opts.dir}' or choose another --out`);
  }
  checkNewRunFolder(dir, opts.dir);
  const fromStdin = recipe.data.source !== 'embedded' && recipe.data.path !== undefined && isStdinPath(recipe.data.path);
  const prepared = await prepareFresh(recipe, opts.source ?? recipe.name, () => (fromStdin ? (opts.stdin ?? readStdinBytes()) : undefined));
  let created = false;
  let lock: RunLock | undefined;
  let ok = false;
  let interrupted = false;
  try {
    try {
      ({ created } = createRunFolder(dir, opts.dir));
      lock = acquireRunLock(dir);
      if (prepared.stdin) {
        // standard input is read once: the run keeps a copy, which a resumed run reads
        const copy = join(dir, 'data', recipe.data.source === 'jsonl' ? 'stdin.jsonl' : 'stdin.txt');
        mkdirSync(dirname(copy), { recursive: true });
        await atomicWriteFile(copy, prepared.stdin);
        recipe = { ...recipe, data: { ...recipe.data, path: copy } };
      }
      await writeMarker(dir, JSON.parse(JSON.stringify(recipe)));
      await atomicWriteFile(join(dir, RECIPE_FILE), `${JSON.stringify(recipe, null, 2)}\n`);
    } catch (err) {
      prepared.model.dispose();
      throw writeError(err, dir, dir);
    }
    const summary = await runFresh(recipe, dir, opts, prepared);
    ok = true;
    return summary;
  } catch (err) {
    interrupted = err instanceof RunInterrupted;
    throw err;
  } finally {
    if (!ok && !interrupted && lock !== undefined && !hasCheckpoint(dir)) {
      // the start failed before its first checkpoint: remove what it wrote, so the same folder can start again
      if (created) rmSync(dir, { recursive: true, force: true });
      else for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
    } else if (!ok && created && lock === undefined) {
      rmSync(dir, { recursive: true, force: true });
    }
    lock?.release();
  }
}

export interface ResumeOptions extends Omit<RunOptions, 'dir' | 'stdin'> {
  /** Continue even though recipe.json was edited since the run started (the edit is then the run's recipe). */
  allowRecipeChange?: boolean;
}

/** recipe.json of a run folder, parsed; a missing or invalid file is a RecipeError naming it. */
function readRunRecipe(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new RecipeError(path, [{ path: '', message: `${code === 'ENOENT' ? 'the file is missing' : `the file cannot be read (${code ?? String(err)})`}; the run's recipe as it started is in ${RUN_MARKER} beside it` }]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new RecipeError(path, [{ path: '', message: `not valid JSON (${(err as Error).message}); fix the file, or restore it from the recipe in ${RUN_MARKER} beside it` }]);
  }
}

/**
 * Continues the run in `dir` from its last checkpoint. The folder must be a run (its marker, or a
 * recipe.json with a checkpoint from before markers), not locked by a live process, and its
 * recipe.json unchanged since the run started unless `allowRecipeChange`. Temporary files of a
 * killed process are removed first.
 */
export async function resumeRun(dirArg: string, opts: ResumeOptions = {}): Promise<RunSummary> {
  const dir = resolve(dirArg);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new RunFolderError(dir, `${dirArg} does not exist; give the run folder a run printed ('run folder: ...')`);
  }
  if (!st.isDirectory()) throw new RunFolderError(dir, `${dirArg} is a file, not a run folder`);
  const recipePath = join(dir, RECIPE_FILE);
  const legacy = !isRunFolder(dir);
  if (legacy && !(existsSync(recipePath) && hasCheckpoint(dir))) {
    throw new RunFolderError(dir, `${dirArg} is not a sparse-train run folder (it has no ${RUN_MARKER}); nothing in it was changed`);
  }
  let lock: RunLock;
  try {
    lock = acquireRunLock(dir);
  } catch (err) {
    throw writeError(err, join(dir, RUN_LOCK), dir);
  }
  try {
    removeStaleTemps(dir);
    const raw = readRunRecipe(recipePath);
    const marker = legacy ? undefined : readMarker(dir);
    const changes = marker ? recipeChanges(marker.recipe, raw) : [];
    if (changes.length > 0 && !opts.allowRecipeChange) throw new RecipeChangedError(recipePath, changes, `sparse-train resume ${dirArg}`);
    const recipe = resolveRecipe(raw, { source: recipePath });
    if (!hasCheckpoint(dir)) {
      // killed before the first checkpoint: start over in the same folder
      const prepared = await prepareFresh(recipe, recipePath, () => undefined);
      try {
        for (const name of RUN_OUTPUTS) rmSync(join(dir, name), { recursive: true, force: true });
        if (legacy || changes.length > 0) await writeMarker(dir, raw, marker?.created);
      } catch (err) {
        prepared.model.dispose();
        throw writeError(err, dir, dir);
      }
      return await runFresh(recipe, dir, opts, prepared);
    }
    let cp: CheckpointContent;
    try {
      cp = await readCheckpoint(dir);
    } catch (err) {
      throw new CheckpointDamagedError(join(dir, CHECKPOINT_DIR), (err as Error).message, { cause: err });
    }
    if (cp.next.stage > recipe.stages.length) {
      throw new RecipeError(recipePath, [{ path: 'stages', message: `the checkpoint continues at stage ${cp.next.stage + 1}, but the recipe has ${recipe.stages.length} stages` }]);
    }
    const model = createModel(cp.spec, { values: new Map([...cp.params].map(([k, v]) => [k, v.data])) });
    let data: RunData;
    let backend: { name: string; reason: string };
    try {
      checkRunResources(recipe, { spec: model.spec as ModelSpec }, recipePath);
      checkStageShapes(recipe, model.linears(), cp.next.stage, recipePath);
      backend = await chooseBackend();
      data = loadRunData(recipe.data);
      if (changes.length > 0 || legacy) await writeMarker(dir, raw, marker?.created);
    } catch (err) {
      model.dispose();
      throw writeError(err, dir, dir);
    }
    let log: RunLog;
    try {
      log = new RunLog(join(dir, 'metrics.jsonl'), opts.mode ?? 'human', opts.io ?? defaultIO, cp.metricsBytes);
    } catch (err) {
      model.dispose();
      throw writeError(err, dir, dir);
    }
    const ctx = new RunContext(recipe, dir, model, data, log, backend);
    ctx.stopSignal = opts.signal;
    try {
      ctx.report = cp.report;
      for (const [k, m] of cp.masks) ctx.setMask(k, m);
      ctx.pattern = cp.pattern;
      ctx.calibration = cp.calibration;
      if (cp.activation) ctx.activation = restoreActivation(ctx, cp.activation);
      if (cp.attention) ctx.attention = restoreAttention(cp.attention, `checkpoint in ${dir}`);
      for (const [k, s] of cp.snapshots) ctx.snapshots.set(k, s);
      if (cp.adapter) {
        const stAdapt = recipe.stages[cp.adapter.stage];
        const restore = stAdapt?.stage === 'adapt' ? getMethod('adapt', stAdapt.method).restoreAdapter : undefined;
        if (stAdapt?.stage !== 'adapt' || restore === undefined) throw new ArgumentError(`checkpoint in ${dir}: adapter from stage ${cp.adapter.stage}, which is not an adapt stage of the recipe with an adapter`);
        restore(ctx, stAdapt, cp.adapter.stage, cp.adapter);
      }
      log.say(`sparse-train | resuming ${recipe.name} in ${dir} at stage ${Math.min(cp.next.stage + 1, recipe.stages.length)}/${recipe.stages.length}${cp.next.step ? `, after step ${cp.next.step}` : ''} | backend ${backend.name}`);
      log.event({ event: 'resume', stage: cp.next.stage, step: cp.next.step });
      if (changes.length > 0) {
        log.say(`recipe ${recipePath} changed since the run started (accepted): ${describeChanges(changes)}`);
        log.event({ event: 'recipe-change', changes });
      }
      const inStage = cp.next.step > 0 || cp.stageState !== undefined;
      return await execute(ctx, {
        stage: cp.next.stage,
        ...(inStage ? { resume: { step: cp.next.step, ...(cp.stageState ? { stageState: cp.stageState } : {}), ...(cp.optimizer ? { optimizer: cp.optimizer } : {}) } } : {}),
      });
    } catch (err) {
      throw writeError(err, dir, dir);
    } finally {
      ctx.dispose();
      ctx.model.dispose();
      log.close();
    }
  } finally {
    lock.release();
  }
}
