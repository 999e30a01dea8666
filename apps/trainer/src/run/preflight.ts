// Checks a run passes before any work starts, beyond what the recipe schema can see: an estimate of
// the memory the run needs against the machine's (so `d: 1e9` or `windows: 1e9` is a recipe error
// naming the field, not a crash or a hang an hour in), and the stage fields that depend on the
// model's layers (targets that match nothing, N:M groups or channel groups that do not divide a
// layer's width).

import { statSync } from 'node:fs';
import { totalmem as osTotalmem } from 'node:os';
import { paramShapes, resolveSpec } from '../model/index.js';
import type { LinearInfo, ModelSpec } from '../model/types.js';
import { RecipeError, type RecipeProblem } from '../recipe/errors.js';
import type { ResolvedRecipe, StageSpec } from '../recipe/schema.js';
import { targetMatches, unmatchedTargets } from '../stages/common.js';

/** "12.0 GiB"; past EiB the power of ten. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '∞ bytes';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (v >= 1024) return `${bytes.toExponential(1)} bytes`;
  return u === 0 ? `${Math.round(v)} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

/** Parses "8GiB", "512MB", "1e9" (bytes). */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*([\d.]+(?:e\d+)?)\s*([kmgtp]?)(i?)b?\s*$/i.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const power = ' kmgtp'.indexOf(m[2]!.toLowerCase() || ' ');
  return n * (m[3] ? 1024 : 1000) ** power;
}

/** The memory a run may use: SPARSE_TRAIN_MEMORY when set, else the machine's (or the cgroup's, when smaller). */
export function machineMemory(env: NodeJS.ProcessEnv = process.env): { bytes: number; source: string } {
  const given = env.SPARSE_TRAIN_MEMORY;
  if (given !== undefined && given.trim() !== '') {
    const bytes = parseBytes(given);
    if (bytes !== undefined) return { bytes, source: `SPARSE_TRAIN_MEMORY=${given.trim()}` };
  }
  const total = osTotalmem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  if (limit && limit > 0 && limit < total && limit < Number.MAX_SAFE_INTEGER) return { bytes: limit, source: "this machine's memory limit" };
  return { bytes: total, source: "this machine's memory" };
}

/** Bytes per parameter a run holds: the weight, its gradient, two Adam moments and a checkpoint copy. */
const BYTES_PER_PARAM = 20;
/** tfjs keeps every tensor in a JavaScript typed array: more elements than this cannot be one tensor. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

interface SizeInputs {
  spec: ModelSpec;
  /** Tokens of the longest stream the run reads (bounds the window length). */
  tokens: number;
  /** Bytes the data takes in memory (raw text and tokens). */
  dataBytes: number;
  stages: readonly StageSpec[];
  evalBatch: number;
}

interface Estimate {
  total: number;
  parts: { what: string; bytes: number }[];
  /** The largest single tensor, in elements. */
  largest: { what: string; elements: number };
}

/** Parameter count of a spec without building it: one block's parameters times the blocks, plus the rest. */
function paramCount(spec: ModelSpec): { total: number; largest: number } {
  const count = (layers: number) => {
    let total = 0;
    let largest = 0;
    for (const shape of paramShapes({ ...spec, layers } as ModelSpec).values()) {
      const n = shape.reduce((a, b) => a * b, 1);
      total += n;
      largest = Math.max(largest, n);
    }
    return { total, largest };
  };
  const layers = spec.layers as number;
  const one = count(1);
  if (layers <= 1) return one;
  const two = count(2);
  return { total: one.total + (layers - 1) * (two.total - one.total), largest: two.largest };
}

function shape(spec: ModelSpec): { d: number; layers: number; heads: number; hidden: number; vocab: number; ctx: number; experts: number } {
  const d = spec.d as number;
  const moe = spec.moe as { experts: number } | undefined;
  const hidden = spec.architecture === 'llama' ? (spec.mlpHidden as number) : Math.round((spec.mlpRatio as number) * d);
  return { d, layers: spec.layers as number, heads: spec.heads as number, hidden, vocab: spec.vocab, ctx: spec.ctx, experts: moe?.experts ?? 1 };
}

function estimate(inp: SizeInputs): Estimate {
  const s = shape(inp.spec);
  const params = paramCount(inp.spec);
  const len = Math.max(1, Math.min(s.ctx, inp.tokens - 1));
  // floats held per token of a forward pass: per block the normed inputs, q/k/v, the attention output,
  // the MLP's hidden activations (each expert's, the mixture being dense) and the residuals, plus
  // every head's scores over the window; then the logits
  const perToken = (train: boolean) => s.layers * (8 * s.d + 3 * s.hidden * s.experts + 2 * s.heads * len) + (train ? 3 : 2) * s.vocab;
  const activations = (batch: number, train: boolean) => 4 * batch * len * perToken(train) * (train ? 2 : 1);
  const parts: Estimate['parts'] = [{ what: `${params.total.toExponential(2)} parameters at ${BYTES_PER_PARAM} bytes each (weights, gradients, Adam moments, a checkpoint copy)`, bytes: params.total * BYTES_PER_PARAM }];
  if (inp.dataBytes > 0) parts.push({ what: 'the data and its tokens', bytes: inp.dataBytes });
  let worst = { what: '', bytes: 0 };
  let largest = { what: 'a weight', elements: params.largest };
  const consider = (what: string, bytes: number) => {
    if (bytes > worst.bytes) worst = { what, bytes };
  };
  let calibration = { windows: 64, batch: 16 };
  inp.stages.forEach((st, i) => {
    if ('batch' in st && 'steps' in st && typeof st.batch === 'number') {
      consider(`activations of stages[${i}]'s batch of ${st.batch} x ${len} tokens`, activations(st.batch, true));
      const scores = st.batch * s.heads * len * len;
      if (scores > largest.elements) largest = { what: `stages[${i}]'s attention scores`, elements: scores };
    }
    if (st.stage === 'calibrate') calibration = { windows: st.windows, batch: st.batch };
    if (st.stage === 'prune') {
      const b = Math.min(calibration.batch, calibration.windows);
      // every calibration window's ids are drawn up front; each group of layers keeps its Hessians (float64)
      const widest = Math.max(s.d, s.hidden);
      consider(`${calibration.windows} calibration windows of ${len} tokens for stages[${i}]`, 4 * calibration.windows * len + activations(b, false) + 3 * 8 * widest * widest);
    }
  });
  consider(`evaluation batches of ${inp.evalBatch} windows`, activations(inp.evalBatch, false));
  if (worst.bytes > 0) parts.push(worst);
  return { total: parts.reduce((a, p) => a + p.bytes, 0), parts, largest };
}

/** A field the check may name, with the value it has and the default that would shrink the run. */
interface Knob {
  path: string;
  value: unknown;
  apply: (inp: SizeInputs) => SizeInputs;
}

function knobs(recipe: ResolvedRecipe, inp: SizeInputs): Knob[] {
  const out: Knob[] = [];
  const fromScratch = !('checkpoint' in recipe.model);
  if (fromScratch) {
    const given = recipe.model as Record<string, unknown>;
    const defaults = resolveSpec({ architecture: inp.spec.architecture, vocab: inp.spec.vocab } as ModelSpec) as Record<string, unknown>;
    for (const key of ['d', 'layers', 'ctx', 'heads', 'mlpRatio', 'mlpHidden', 'kvHeads']) {
      if (given[key] === undefined || given[key] === defaults[key]) continue;
      out.push({
        path: `model.${key}`,
        value: given[key],
        apply: (x) => {
          const spec = { ...x.spec, [key]: defaults[key] } as ModelSpec;
          // a width reset keeps the heads dividing it
          if (key === 'd' && (defaults.d as number) % (spec.heads as number) !== 0) spec.heads = defaults.heads;
          return { ...x, spec };
        },
      });
    }
    const moe = given.moe as { experts?: number } | undefined;
    if (moe?.experts !== undefined && moe.experts > 1) out.push({ path: 'model.moe.experts', value: moe.experts, apply: (x) => ({ ...x, spec: { ...x.spec, moe: { ...(x.spec.moe as object), experts: 1, topK: 1 } } }) });
  }
  inp.stages.forEach((st, i) => {
    if ('batch' in st && typeof st.batch === 'number' && st.batch > 8) {
      out.push({ path: `stages[${i}].batch`, value: st.batch, apply: (x) => ({ ...x, stages: x.stages.map((t, k) => (k === i ? ({ ...t, batch: 1 } as StageSpec) : t)) }) });
    }
    if (st.stage === 'calibrate' && st.windows > 64) {
      out.push({ path: `stages[${i}].windows`, value: st.windows, apply: (x) => ({ ...x, stages: x.stages.map((t, k) => (k === i ? ({ ...t, windows: 1 } as StageSpec) : t)) }) });
    }
  });
  if (inp.evalBatch > 32) out.push({ path: 'eval.batch', value: inp.evalBatch, apply: (x) => ({ ...x, evalBatch: 1 }) });
  if (inp.dataBytes > 0 && recipe.data.path !== undefined) out.push({ path: 'data.path', value: recipe.data.path, apply: (x) => ({ ...x, dataBytes: 0 }) });
  return out;
}

/** Bytes the data file takes in memory once read and tokenized (0 for the embedded corpus or stdin). */
export function dataFootprint(recipe: ResolvedRecipe): { bytes: number; tokens: number } {
  const path = recipe.data.path;
  if (recipe.data.source === 'embedded' || path === undefined || path === '-') return { bytes: 0, tokens: 400_000 };
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return { bytes: 0, tokens: 400_000 };
    size = st.size;
  } catch {
    return { bytes: 0, tokens: 400_000 };
  }
  // the bytes, a JavaScript string of them for non-byte tokenizers, and int32 tokens
  const perByte = recipe.data.tokenizer === 'byte' || (recipe.data.tokenizer === 'auto' && recipe.data.source === 'text') ? 5 : 7;
  return { bytes: size * perByte, tokens: size };
}

export interface ResourceCheckOptions {
  /** The model's spec (a loaded checkpoint's); default: the recipe's, with `vocab`. */
  spec?: ModelSpec;
  /** Vocabulary to assume before the tokenizer is known (default 256). */
  vocab?: number;
  /** Tokens of the data, once known (default: from the data file's size). */
  tokens?: number;
  /** Memory to compare with (default machineMemory()). */
  memory?: { bytes: number; source: string };
}

/**
 * Estimates what the run needs and throws a RecipeError naming the field most responsible when it is
 * more than the machine has (or when one tensor would be larger than tfjs can hold).
 */
export function checkRunResources(recipe: ResolvedRecipe, opts: ResourceCheckOptions = {}, source = recipe.name): { bytes: number; memory: number } {
  const data = dataFootprint(recipe);
  const memory = opts.memory ?? machineMemory();
  let spec = opts.spec;
  if (spec === undefined) {
    if ('checkpoint' in recipe.model) return { bytes: data.bytes, memory: memory.bytes };
    spec = resolveSpec({ ...(recipe.model as object), vocab: opts.vocab ?? 256 } as ModelSpec);
  }
  const inp: SizeInputs = { spec, tokens: opts.tokens ?? data.tokens, dataBytes: data.bytes, stages: recipe.stages, evalBatch: recipe.eval.batch };
  const est = estimate(inp);
  const overMemory = est.total > memory.bytes;
  const overTensor = est.largest.elements > MAX_TENSOR_ELEMENTS;
  if (!overMemory && !overTensor) return { bytes: est.total, memory: memory.bytes };
  // name the field whose default would shrink the run the most
  let best: { knob: Knob; after: Estimate } | undefined;
  for (const knob of knobs(recipe, inp)) {
    let after: Estimate;
    try {
      after = estimate(knob.apply(inp));
    } catch {
      continue;
    }
    const key = (e: Estimate) => (overTensor && !overMemory ? e.largest.elements : e.total);
    if (best === undefined || key(after) < key(best.after)) best = { knob, after };
  }
  const path = best?.knob.path ?? ('checkpoint' in recipe.model ? 'model.checkpoint' : 'model');
  const value = best ? ` (${JSON.stringify(best.knob.value)})` : '';
  const problem: RecipeProblem = overMemory
    ? {
        path,
        message: `the run needs an estimated ${formatBytes(est.total)} of memory, more than ${memory.source} (${formatBytes(memory.bytes)}): ${est.parts.map((p) => `${formatBytes(p.bytes)} for ${p.what}`).join(', ')}; lower ${path}${value}`,
      }
    : {
        path,
        message: `${est.largest.what} would be one tensor of ${est.largest.elements.toExponential(2)} elements, more than the ${MAX_TENSOR_ELEMENTS} a tensor can hold; lower ${path}${value}`,
      };
  throw new RecipeError(source, [problem]);
}

/** N:M `m` of a stage's config, and where it is (`config.m` or `config.pattern.m`). */
function nmOf(config: Record<string, unknown>): { m: number; path: string } | undefined {
  if (typeof config.m === 'number') return { m: config.m, path: 'config.m' };
  const p = config.pattern as { m?: unknown } | undefined;
  if (p && typeof p === 'object' && typeof p.m === 'number') return { m: p.m, path: 'config.pattern.m' };
  return undefined;
}

/**
 * The stage fields that depend on the model's layers, checked against them before any stage runs:
 * `targets` must each match a linear layer, N:M's `m` must divide the inputs of every targeted
 * layer, and a `groupSize` (structured pruning, S2FT) the channels it groups. `from` skips stages
 * already done (resume).
 */
export function checkStageShapes(recipe: ResolvedRecipe, linears: LinearInfo[], from = 0, source = recipe.name): void {
  const problems: RecipeProblem[] = [];
  recipe.stages.forEach((st, i) => {
    if (i < from) return;
    const at = `stages[${i}]`;
    const targets = 'targets' in st ? st.targets : undefined;
    if (targets !== undefined) {
      const bad = unmatchedTargets(linears, targets);
      if (bad.length) {
        for (const msg of bad) problems.push({ path: `${at}.targets`, message: msg });
        return;
      }
    }
    if (!('config' in st)) return;
    const layers = targets === undefined ? linears : linears.filter((l) => targets.some((t) => targetMatches(l, t)));
    const config = st.config as Record<string, unknown>;
    const nm = nmOf(config);
    if (nm && nm.m > 0) {
      const off = layers.filter((l) => l.in % nm.m !== 0);
      if (off.length) {
        problems.push({
          path: `${at}.${nm.path}`,
          message: `m = ${nm.m} must divide the inputs of every layer it prunes; ${off[0]!.name} has ${off[0]!.in}${off.length > 1 ? ` (and ${off.length - 1} more layers)` : ''}: choose an m that divides it, or narrow the stage's targets`,
        });
      }
    }
    const gs = config.groupSize;
    if (typeof gs === 'number' && gs > 0) {
      const rows = config.axis === 'row';
      const off = layers.filter((l) => (rows ? l.out : l.in) % gs !== 0);
      if (off.length) {
        problems.push({
          path: `${at}.config.groupSize`,
          message: `groupSize ${gs} must divide the ${rows ? 'outputs' : 'inputs'} of every targeted layer; ${off[0]!.name} has ${rows ? off[0]!.out : off[0]!.in}${off.length > 1 ? ` (and ${off.length - 1} more layers)` : ''}`,
        });
      } else if (typeof config.groups === 'number') {
        const few = layers.find((l) => (rows ? l.out : l.in) / gs < (config.groups as number));
        if (few) problems.push({ path: `${at}.config.groups`, message: `${config.groups as number} groups of ${gs} is more than ${few.name} has (${(rows ? few.out : few.in) / gs})` });
      }
    }
  });
  if (problems.length) throw new RecipeError(source, problems);
}
