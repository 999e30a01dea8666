// Reading and validating a recipe: YAML or JSON text -> a fully resolved recipe (every default filled
// in, every method config parsed by its own schema), or a RecipeError listing every problem with its
// path. Nothing runs until the whole recipe is valid.

import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { closestNames } from '@sparse/tensor';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { variants } from '@sparse/lora-variants';
import { getTfForm } from '@sparse/lora-variants/tfjs';
import { ModelSpecError, resolveSpec, type ModelSpec } from '../model/index.js';
import { joinPath, RecipeError, type RecipeProblem } from './errors.js';
import { findMethod, methodsOf, takesMethod, type MethodKind, type StageIssue } from './methods.js';
import { recipeHeadSchema, STAGE_KINDS, stageSchemas, type ResolvedRecipe, type StageKind, type StageSpec } from './schema.js';

function zodProblems(prefix: string, error: z.ZodError): RecipeProblem[] {
  return error.issues.map((i) => {
    let message = i.message;
    if (i.code === 'unrecognized_keys') {
      // name the unknown keys and what was meant, when it is a near miss
      const known = knownKeys(prefix);
      message = i.keys
        .map((k) => {
          const near = closestNames(k, known, 1);
          return `unknown field '${k}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}`;
        })
        .join('; ');
    }
    return { path: joinPath(prefix, i.path), message };
  });
}

/** The fields allowed at a path prefix, for "did you mean" on unknown keys. */
let keyHints: Map<string, string[]> = new Map();
function knownKeys(prefix: string): string[] {
  return keyHints.get(prefix) ?? [];
}

/** Parses YAML (or JSON, a subset) text; syntax errors name the line and column. */
export function parseRecipeText(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new RecipeError(
      source,
      doc.errors.map((e) => ({ path: '', message: `${e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : ''}${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` })),
    );
  }
  try {
    return doc.toJS();
  } catch (err) {
    // aliases that expand too far, and the like
    throw new RecipeError(source, [{ path: '', message: (err as Error).message.split('\n')[0]! }]);
  }
}

/**
 * The text of a recipe file; a missing file, a folder, a device or an unreadable file is a
 * RecipeError naming the path and what to do.
 */
export function readRecipeText(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'the file does not exist' : code === 'EACCES' ? 'the file is not readable (permission denied)' : `the file cannot be read (${code ?? String(err)})`;
    throw new RecipeError(path, [{ path: '', message: `${why}; give a recipe file (.yaml or .json) with --recipe, or leave --recipe out for the default recipe` }]);
  }
  if (st.isDirectory()) throw new RecipeError(path, [{ path: '', message: 'this is a folder, not a recipe file; give a .yaml or .json file with --recipe' }]);
  if (!st.isFile()) throw new RecipeError(path, [{ path: '', message: 'this is not a regular file; give a .yaml or .json file with --recipe' }]);
  if (st.size > 16 * 1024 * 1024) throw new RecipeError(path, [{ path: '', message: `the file is ${st.size} bytes; a recipe is a small YAML or JSON file` }]);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new RecipeError(path, [{ path: '', message: `the file cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` }]);
  }
}

export interface ResolveOptions {
  /** Shown in errors and used as the default name (a file path, or '<inline>'). */
  source?: string;
  /** Relative paths in the recipe (data, checkpoints) resolve against this folder. */
  baseDir?: string;
}

/** Validates a parsed recipe object and fills in every default. */
export function resolveRecipe(raw: unknown, options: ResolveOptions = {}): ResolvedRecipe {
  const source = options.source ?? '<inline>';
  const problems: RecipeProblem[] = [];
  if (raw === null || raw === undefined) {
    throw new RecipeError(source, [{ path: '', message: 'the recipe is empty; it needs at least a `stages:` list (see `sparse-train recipe <file> --explain` on a shipped recipe)' }]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RecipeError(source, [{ path: '', message: `expected a mapping with model, data and stages, got ${Array.isArray(raw) ? 'a list' : typeof raw}` }]);
  }
  keyHints = new Map([['', Object.keys(recipeHeadSchema.shape)]]);
  const head = recipeHeadSchema.safeParse(raw);
  if (!head.success) problems.push(...zodProblems('', head.error));
  const stagesRaw = Array.isArray((raw as { stages?: unknown }).stages) ? ((raw as { stages: unknown[] }).stages) : [];
  const stages: StageSpec[] = [];
  stagesRaw.forEach((s, i) => {
    const at = `stages[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      problems.push({ path: at, message: 'expected a mapping with a `stage` field' });
      return;
    }
    const kind = (s as { stage?: unknown }).stage;
    if (typeof kind !== 'string' || !(STAGE_KINDS as readonly string[]).includes(kind)) {
      const near = typeof kind === 'string' ? closestNames(kind, STAGE_KINDS, 1) : [];
      problems.push({
        path: `${at}.stage`,
        message: `expected one of ${STAGE_KINDS.join(', ')}; got ${JSON.stringify(kind)}${near.length ? ` (did you mean '${near[0]}'?)` : ''}`,
      });
      return;
    }
    const schema = stageSchemas[kind as StageKind];
    keyHints.set(at, Object.keys(schema.shape));
    const parsed = schema.safeParse(s);
    if (!parsed.success) {
      problems.push(...zodProblems(at, parsed.error));
      return;
    }
    const stage = parsed.data as StageSpec;
    if (takesMethod(stage.stage)) {
      const st = stage as StageSpec & { stage: MethodKind; method: string; config: Record<string, unknown> };
      const method = findMethod(st.stage, st.method);
      if (method === undefined) {
        const known = methodsOf(st.stage).map((m) => m.name);
        const near = closestNames(st.method, known);
        problems.push({
          path: `${at}.method`,
          message: `unknown ${stage.stage} method '${st.method}'${near.length ? `; did you mean ${near.map((n) => `'${n}'`).join(' or ')}?` : ''} (known: ${known.join(', ')})`,
        });
        return;
      }
      if ('shape' in method.schema) keyHints.set(`${at}.config`, Object.keys((method.schema as z.ZodObject).shape));
      const cfg = method.schema.safeParse(st.config ?? {});
      if (!cfg.success) {
        for (const i of cfg.error.issues) problems.push({ path: joinPath(`${at}.config`, i.path), message: i.message });
        return;
      }
      st.config = cfg.data as Record<string, unknown>;
      const issues = (method.checkStage as ((s: StageSpec) => StageIssue[]) | undefined)?.(st) ?? [];
      if (st.stage === 'prune' && (st as StageSpec & { permute?: boolean }).permute && !(typeof st.config.n === 'number' && typeof st.config.m === 'number')) {
        issues.push({ path: ['permute'], message: `permute searches a channel permutation for N:M pruning; give config n and m (e.g. { n: 2, m: 4 }) or drop permute` });
      }
      if (st.stage === 'train' && st.path === 'sparse' && method.sparsePath !== true) {
        const able = methodsOf('train').filter((m) => m.sparsePath === true).map((m) => m.name);
        issues.push({ path: ['path'], message: `train method '${st.method}' runs dense (its masks change size or it trains no masks); path: sparse applies to ${able.join(', ')}` });
      }
      if (issues.length > 0) {
        for (const i of issues) problems.push({ path: joinPath(at, i.path), message: i.message });
        return;
      }
      const resolved = (method.resolveStage as ((s: StageSpec) => StageSpec) | undefined)?.(st) ?? st;
      stages.push(resolved);
      return;
    }
    stages.push(stage);
  });
  // stage indices line up with the recipe's only when every stage parsed
  if (problems.length === 0) problems.push(...ensembleProblems(stages));
  if (problems.length > 0 || !head.success) throw new RecipeError(source, problems);
  const h = head.data;
  const base = options.baseDir;
  // '-' is standard input, read once when the run starts
  const abs = (p: string) => (base === undefined || isAbsolute(p) || p === '-' ? p : resolve(base, p));
  const model = 'checkpoint' in h.model ? { checkpoint: abs(h.model.checkpoint as string) } : h.model;
  if (!('checkpoint' in model)) {
    // the size fields, checked by the model factory (the vocabulary comes from the tokenizer later)
    try {
      resolveSpec({ ...(model as ModelSpec), vocab: 1 });
    } catch (err) {
      if (err instanceof ModelSpecError) throw new RecipeError(source, [{ path: `model.${err.field}`, message: err.message.replace(/^model spec: \S+ /, '') }]);
      throw err;
    }
  }
  const data = { ...h.data, ...(h.data.path !== undefined ? { path: abs(h.data.path) } : {}) };
  if (typeof data.tokenizer === 'object') data.tokenizer = { file: abs(data.tokenizer.file) };
  const dataProblems: RecipeProblem[] = [];
  if (data.source !== 'embedded' && data.path === undefined) dataProblems.push({ path: 'data.path', message: `source '${data.source}' needs a path` });
  if (data.source === 'embedded' && data.path !== undefined) dataProblems.push({ path: 'data.path', message: "source 'embedded' takes no path (use source: text or jsonl)" });
  if (dataProblems.length) throw new RecipeError(source, dataProblems);
  const name = h.name ?? (source.startsWith('<') ? 'recipe' : basename(source, extname(source)));
  return { name, ...(h.description !== undefined ? { description: h.description } : {}), seed: h.seed, model, data, eval: h.eval, stages };
}

/**
 * An evaluate stage's `ensemble` averages over an adapter's test-time dropout masks, so it needs an
 * adapter whose tfjs form declares `testTimeEnsemble` (LoRA Dropout) attached and unmerged there: the
 * last adapt stage before it used such a method with merge: false.
 */
function ensembleProblems(stages: StageSpec[]): RecipeProblem[] {
  const problems: RecipeProblem[] = [];
  let attached: { method: string; merged: boolean; index: number } | undefined;
  const able = () => variants.entries().filter((v) => getTfForm(v.name)?.testTimeEnsemble !== undefined).map((v) => v.name);
  stages.forEach((stage, i) => {
    if (stage.stage === 'adapt') attached = { method: stage.method, merged: stage.merge, index: i };
    if (stage.stage !== 'evaluate' || stage.ensemble === undefined) return;
    const at = `stages[${i}].ensemble`;
    if (attached === undefined) problems.push({ path: at, message: `the test-time ensemble averages over an adapter's dropout masks: it needs an earlier adapt stage with method ${able().join(' or ')} and merge: false (no adapter is attached here)` });
    else if (getTfForm(attached.method)?.testTimeEnsemble === undefined) problems.push({ path: at, message: `the test-time ensemble averages over an adapter's dropout masks, but the adapter attached here is '${attached.method}' (stages[${attached.index}]), which has none; use method ${able().join(' or ')}` });
    else if (attached.merged) problems.push({ path: at, message: `the test-time ensemble needs the ${attached.method} adapter unmerged, but stages[${attached.index}] merges it; set merge: false there` });
  });
  return problems;
}

/** Reads, parses and resolves a recipe file (.yaml, .yml or .json). */
export function loadRecipeFile(path: string): ResolvedRecipe {
  return resolveRecipe(parseRecipeText(readRecipeText(path), path), { source: path, baseDir: dirname(resolve(path)) });
}
