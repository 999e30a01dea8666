// sparse-train's main program: parse the command line, then run a recipe (the embedded default or a
// file), resume a run, list methods, explain a recipe, or generate text (cli/generate.ts). Returns the process exit code; every error
// becomes a message (cli/errors.ts), and Ctrl-C or SIGTERM stops a run at a checkpoint (130, 143).

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { closestNames } from '@sparse/tensor';
import { stringify } from 'yaml';
import pkg from '../../package.json';
import { isStdinPath } from '../data/files.js';
import { DEFAULT_RECIPE } from '../recipe/default.js';
import { RecipeError } from '../recipe/errors.js';
import { loadRecipeFile, parseRecipeText, readRecipeText, resolveRecipe } from '../recipe/load.js';
import { configFields, listMethods, takesMethod } from '../recipe/methods.js';
import { STAGE_KINDS, stageSchemas, type ResolvedRecipe, type StageKind } from '../recipe/schema.js';
import { RunInterrupted, signalExitCode } from '../run/errors.js';
import { safeFolderName } from '../run/folder.js';
import { checkRunResources } from '../run/preflight.js';
import { resumeRun, startRun, type RunSummary } from '../run/runner.js';
import type { OutputMode } from '../run/log.js';
import { FlagError, parseArgs, usage, type CLIOptions } from './args.js';
import { describeError, EXIT_FAILURE, EXIT_USAGE, formatFailure } from './errors.js';
import { runGenerate } from './generate.js';
import type { ProgressStream } from './progress.js';

export interface CLIIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

export { EXIT_FAILURE, EXIT_USAGE };

export async function main(argv: readonly string[], io: CLIIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const debug = argv.includes('--debug') || process.env.SPARSE_TRAIN_DEBUG === '1';
  const fail = (err: unknown, json: boolean): number => {
    const f = describeError(err);
    const out = formatFailure(f, { json, debug });
    if (out.stdout) io.stdout.write(out.stdout);
    if (out.stderr) io.stderr.write(out.stderr);
    return f.exit;
  };
  let opts: CLIOptions;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    return fail(err, argv.includes('--json'));
  }
  if (opts.help) {
    io.stdout.write(usage());
    return 0;
  }
  if (opts.version) {
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  let stop: StopOnSignals | undefined;
  try {
    switch (opts.command) {
      case 'methods':
        io.stdout.write(methodsText(opts.args[0]));
        return 0;
      case 'recipe': {
        const recipe = loadRecipeFile(opts.args[0]!);
        checkRunResources(recipe, {}, opts.args[0]!);
        io.stdout.write(explainText(recipe));
        return 0;
      }
      case 'resume':
        stop = stopOnSignals(io, modeOf(opts));
        printSummary(await resumeRun(opts.args[0]!, { mode: modeOf(opts), io, signal: stop.signal, allowRecipeChange: opts.allowRecipeChange }), opts, io);
        return 0;
      case 'generate':
        return await runGenerate(opts, io);
      case 'run': {
        const recipe = buildRecipe(opts);
        const out = opts.out ?? defaultRunFolder(recipe.name);
        stop = stopOnSignals(io, modeOf(opts));
        printSummary(await startRun(recipe, { dir: out, mode: modeOf(opts), io, signal: stop.signal, source: opts.recipe ?? 'default recipe' }), opts, io);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof RunInterrupted) return interrupted(err, opts, io);
    return fail(err, opts.json);
  } finally {
    stop?.dispose();
  }
  return EXIT_FAILURE;
}

interface StopOnSignals {
  signal: AbortSignal;
  dispose(): void;
}

/**
 * SIGINT (Ctrl-C) and SIGTERM ask the run to stop: it finishes the current step, writes a checkpoint
 * there and returns RunInterrupted. The handlers go away at the first signal, so a second one ends the
 * process at once (the default action); the last complete checkpoint is still there.
 */
function stopOnSignals(io: CLIIO, mode: OutputMode): StopOnSignals {
  const controller = new AbortController();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const dispose = () => {
    for (const s of signals) process.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    dispose();
    if (mode !== 'json') io.stderr.write(`\nsparse-train: ${signal}: stopping after the current step to write a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C again' : 'a second signal'} quits at once)\n`);
    controller.abort(signal);
  }
  for (const s of signals) process.on(s, onSignal);
  return { signal: controller.signal, dispose };
}

function interrupted(err: RunInterrupted, opts: CLIOptions, io: CLIIO): number {
  const command = `sparse-train resume ${err.dir}`;
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ event: 'interrupted', time: new Date().toISOString(), signal: err.signal, dir: err.dir, next: err.next, resume: command })}\n`);
  } else {
    io.stderr.write(`sparse-train: ${err.message}\nContinue with: ${command}\n`);
  }
  return signalExitCode(err.signal);
}

/** runs/<recipe name>-<time>, the name made safe for a folder; -2, -3, ... when that folder exists. */
export function defaultRunFolder(name: string, now = new Date()): string {
  const base = join('runs', `${safeFolderName(name)}-${now.toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  let out = base;
  for (let k = 2; existsSync(out); k++) out = `${base}-${k}`;
  return out;
}

function modeOf(opts: CLIOptions): OutputMode {
  return opts.json ? 'json' : opts.quiet ? 'quiet' : 'human';
}

/** The recipe to run: a file or the default, with the command-line overrides applied before validation. */
export function buildRecipe(opts: CLIOptions): ResolvedRecipe {
  const source = opts.recipe ?? 'default recipe';
  const parsed = opts.recipe ? parseRecipeText(readRecipeText(opts.recipe), opts.recipe) : structuredClone(DEFAULT_RECIPE);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return resolveRecipe(parsed, { source });
  const raw = parsed as Record<string, unknown>;
  if (opts.seed !== undefined) raw.seed = opts.seed;
  if (opts.data !== undefined) {
    // byte tokens of the file (or of standard input, read once); the recipe's held-out fraction stays
    const heldOut = (raw.data as { heldOut?: unknown } | undefined)?.heldOut;
    raw.data = { source: 'text', path: isStdinPath(opts.data) ? '-' : resolve(opts.data), ...(heldOut !== undefined ? { heldOut } : {}) };
  }
  if (opts.evalWindows !== undefined) raw.eval = { ...((raw.eval as object) ?? {}), windows: opts.evalWindows };
  const sizes = { d: opts.d, layers: opts.layers, heads: opts.heads, ctx: opts.ctx };
  if (Object.values(sizes).some((v) => v !== undefined)) {
    const model = (raw.model ?? { architecture: 'gpt' }) as Record<string, unknown>;
    if ('checkpoint' in model) throw new RecipeError(source, [{ path: 'model', message: '--d/--layers/--heads/--ctx cannot resize a model loaded from a checkpoint' }]);
    for (const [k, v] of Object.entries(sizes)) if (v !== undefined) model[k] = v;
    raw.model = model;
  }
  const stages = Array.isArray(raw.stages) ? (raw.stages as Record<string, unknown>[]) : [];
  for (const s of stages) {
    if (s?.stage !== 'pretrain') continue;
    if (opts.steps !== undefined) s.steps = opts.steps;
    if (opts.batch !== undefined) s.batch = opts.batch;
    if (opts.lr !== undefined) s.lr = opts.lr;
  }
  return resolveRecipe(raw, { source, ...(opts.recipe ? { baseDir: dirname(resolve(opts.recipe)) } : {}) });
}

function printSummary(s: RunSummary, opts: CLIOptions, io: CLIIO): void {
  if (opts.json) return;
  const evals = s.evaluations.map((e) => `${e.label} ${e.perplexity.toFixed(3)}`).join(' | ');
  io.stdout.write(`${evals ? `held-out perplexity: ${evals}\n` : ''}run folder: ${s.dir}\n${s.report ? `report: ${s.report}\n` : ''}`);
}

/** What each export format writes (the export stage's `formats`). */
export const EXPORT_FORMATS: Readonly<Record<string, string>> = {
  compressed: 'exports/model.compressed.safetensors: pruned weights in their N:M (values + 2-bit indices), bitmask or CSR layouts, whichever is smallest; other tensors dense',
  dense: 'exports/model.safetensors: every tensor dense (float32, or float16 / bfloat16 with dtype)',
  'compressed-tensors': "exports/compressed-tensors/: model.safetensors + config.json in the compressed-tensors library's sparse-24-bitmask layout (2:4 models) or sparse-bitmask (others), float16 (bfloat16 with dtype: bfloat16), as vLLM reads them",
  adapters: 'exports/adapters/<stage>/: each adapt stage\'s adapter in the PEFT layout (written by the adapt stage; export lists them)',
};

/** A stage kind without methods: its fields (and for export, its formats). */
function stageFieldsText(kind: StageKind): string {
  const lines = [`${kind}: (no methods; the stage's fields)`];
  for (const f of configFields(stageSchemas[kind])) {
    if (f.name === 'stage') continue;
    const def = f.default !== undefined ? ` = ${JSON.stringify(f.default)}` : f.required ? ' (required)' : '';
    lines.push(`      ${f.name}: ${f.type}${def}${f.description ? `  ${f.description}` : ''}`);
  }
  if (kind === 'export') {
    lines.push('', 'export formats:');
    for (const [name, what] of Object.entries(EXPORT_FORMATS)) lines.push(`  ${name}  ${what}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `sparse-train methods [kind]`: every registered method with its config fields and defaults. */
export function methodsText(kind?: string): string {
  if (kind !== undefined && !(STAGE_KINDS as readonly string[]).includes(kind)) {
    const near = closestNames(kind, STAGE_KINDS, 1);
    throw new FlagError(kind, `methods: unknown stage kind '${kind}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; kinds: ${STAGE_KINDS.join(', ')}`);
  }
  if (kind !== undefined && !takesMethod(kind as StageKind)) return stageFieldsText(kind as StageKind);
  const lines: string[] = [];
  let last = '';
  for (const m of listMethods(kind as StageKind | undefined)) {
    if (m.kind !== last) {
      lines.push(`${lines.length ? '\n' : ''}${m.kind}:`);
      last = m.kind;
    }
    lines.push(`  ${m.name}  (${m.from})  ${m.describe}`);
    lines.push(`    paper: ${m.paper}`);
    lines.push(`    differs: ${m.differs.length === 0 ? 'none' : m.differs.join('; ')}`);
    for (const f of configFields(m.schema)) {
      const def = f.default !== undefined ? ` = ${JSON.stringify(f.default)}` : f.required ? ' (required)' : '';
      lines.push(`      ${f.name}: ${f.type}${def}${f.description ? `  ${f.description}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function explainText(recipe: ResolvedRecipe): string {
  return stringify(recipe, { lineWidth: 0 });
}
