// sparse-train's main program: parse the command line, then run a recipe (the embedded default or a
// file), resume a run, list methods, or explain a recipe. Returns the process exit code.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ArgumentError } from '@sparse/tensor';
import { stringify } from 'yaml';
import pkg from '../../package.json';
import { DEFAULT_RECIPE } from '../recipe/default.js';
import { RecipeError } from '../recipe/errors.js';
import { loadRecipeFile, parseRecipeText, resolveRecipe } from '../recipe/load.js';
import { configFields, listMethods } from '../recipe/methods.js';
import { STAGE_KINDS, type ResolvedRecipe, type StageKind } from '../recipe/schema.js';
import { resumeRun, startRun, type RunSummary } from '../run/runner.js';
import type { OutputMode } from '../run/log.js';
import { FlagError, parseArgs, usage, type CLIOptions } from './args.js';
import type { ProgressStream } from './progress.js';

export interface CLIIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

export async function main(argv: readonly string[], io: CLIIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let opts: CLIOptions;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (err instanceof FlagError) {
      io.stderr.write(`sparse-train: ${err.message}\nRun 'sparse-train --help' for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (opts.help) {
    io.stdout.write(usage());
    return 0;
  }
  if (opts.version) {
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  try {
    switch (opts.command) {
      case 'methods':
        io.stdout.write(methodsText(opts.args[0]));
        return 0;
      case 'recipe':
        io.stdout.write(explainText(loadRecipeFile(opts.args[0]!)));
        return 0;
      case 'resume':
        printSummary(await resumeRun(opts.args[0]!, { mode: modeOf(opts), io }), opts, io);
        return 0;
      case 'run': {
        const recipe = buildRecipe(opts);
        const out = opts.out ?? join('runs', `${recipe.name}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
        printSummary(await startRun(recipe, { dir: out, mode: modeOf(opts), io }), opts, io);
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof RecipeError) {
      io.stderr.write(`sparse-train: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof ArgumentError) {
      io.stderr.write(`sparse-train: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    io.stderr.write(`sparse-train: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

function modeOf(opts: CLIOptions): OutputMode {
  return opts.json ? 'json' : opts.quiet ? 'quiet' : 'human';
}

/** The recipe to run: a file or the default, with the command-line overrides applied before validation. */
export function buildRecipe(opts: CLIOptions): ResolvedRecipe {
  const source = opts.recipe ?? 'default recipe';
  const raw = (opts.recipe ? parseRecipeText(readFileSync(opts.recipe, 'utf8'), opts.recipe) : structuredClone(DEFAULT_RECIPE)) as Record<string, unknown>;
  if (opts.seed !== undefined) raw.seed = opts.seed;
  if (opts.data !== undefined) raw.data = { source: 'text', path: resolve(opts.data) };
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

/** `sparse-train methods [kind]`: every registered method with its config fields and defaults. */
export function methodsText(kind?: string): string {
  if (kind !== undefined && !(STAGE_KINDS as readonly string[]).includes(kind)) {
    throw new ArgumentError(`methods: unknown stage kind '${kind}' (kinds: ${STAGE_KINDS.join(', ')})`);
  }
  const lines: string[] = [];
  let last = '';
  for (const m of listMethods(kind as StageKind | undefined)) {
    if (m.kind !== last) {
      lines.push(`${lines.length ? '\n' : ''}${m.kind}:`);
      last = m.kind;
    }
    lines.push(`  ${m.name}  (${m.from})  ${m.describe}`);
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
