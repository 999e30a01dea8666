// `sparse-train generate <run-folder or checkpoint> --prompt "..."`: text from a trained model, one
// token at a time through the KV-cache decoder (model/decode.ts), streamed to stdout as it comes, with
// the speed on stderr. The model and tokenizer come from a run folder (its latest checkpoint, else its
// dense export; the tokenizer of its recipe's data) or from a checkpoint (ours, or a Hugging Face
// GPT-2 / Llama folder) with a tokenizer.json beside it.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { attentionMethods } from '@sparse/attention';
import { maskToBooleans } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import { registerNativeKernels } from '../backend.js';
import { HFTokenizer } from '../data/hf-tokenizer.js';
import { ByteTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { decoderActivationHook, restoreSparsifiers } from '../methods/activation/sparsify.js';
import { ATTENTION_FILE, ATTENTION_FORMAT } from '../methods/attention/record.js';
import { readCheckpoint as readModelCheckpoint } from '../model/checkpoint.js';
import { linearsOf } from '../model/index.js';
import { ACTIVATION_FILE, ACTIVATION_FORMAT } from '../stages/export.js';
import { Decoder, type DecoderKVOptions, type DecoderKVStats, type DecoderOptions } from '../model/decode.js';
import type { ModelSpec } from '../model/types.js';
import { resolveRecipe } from '../recipe/load.js';
import type { DataRef } from '../recipe/schema.js';
import { CHECKPOINT_DIR, hasCheckpoint, readCheckpoint as readRunCheckpoint, type ActivationCheckpoint } from '../run/checkpoint.js';
import { loadRunData } from '../run/data.js';
import { RunFolderError } from '../run/errors.js';
import { isRunFolder, RECIPE_FILE } from '../run/folder.js';
import { FlagError, type CLIOptions } from './args.js';
import type { ProgressStream } from './progress.js';

/** The tokenizer a checkpoint needs is not there (exit 2: give a folder with one). */
export class TokenizerMissingError extends RunFolderError {
  /** The file that was looked for. */
  readonly file: string;
  constructor(dir: string, file: string, message: string) {
    super(dir, message);
    this.name = 'TokenizerMissingError';
    this.file = file;
  }
}

/** A model to generate from: its spec and values (our names, [out, in]), its tokenizer, and where it came from. */
export interface GenerateSource {
  spec: ModelSpec;
  values: Map<string, Float32Array>;
  tokenizer: Tokenizer;
  /** For messages: 'run folder runs/x (checkpoint after stage 5/5)', 'checkpoint gpt2/'. */
  description: string;
  /** The run folder, when the source is one (or a file of its exports). */
  runDir?: string;
  /** Things worth a line on stderr (an attached adapter left out, ...). */
  notes: string[];
  /** The activation sparsifier the source evaluated with (a run's checkpoint, or an activation.json beside the model), and where it came from. */
  activation?: { saved: ActivationCheckpoint; from: string };
  /** The run's attention record (its checkpoint's, or an attention.json beside the model): a mustafar one prunes the KV cache by default. */
  attention?: AttentionSource;
}

/** An attention method a run recorded ({ format: 'sparse-attention/1', method, config, state } in exports/attention.json, or its checkpoint's field). */
export interface AttentionSource {
  method: string;
  config: Record<string, unknown>;
  from: string;
}

/** The attention record of a checkpoint's field or file content, if it names a method (anything else: none). */
function attentionRecord(raw: unknown, from: string): AttentionSource | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as { method?: unknown; config?: unknown };
  if (typeof r.method !== 'string') return undefined;
  return { method: r.method, config: typeof r.config === 'object' && r.config !== null ? (r.config as Record<string, unknown>) : {}, from };
}

/** The attention.json beside a model file, if there is one. */
function attentionBeside(dir: string): AttentionSource | undefined {
  const path = join(dir, ATTENTION_FILE);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new RunFolderError(dir, `${path} cannot be read as JSON (${(err as Error).message})`);
  }
  if ((raw as { format?: unknown } | null)?.format !== ATTENTION_FORMAT) throw new RunFolderError(dir, `${path} is not an attention record (format ${JSON.stringify(ATTENTION_FORMAT)} expected)`);
  return attentionRecord(raw, path);
}

/**
 * The KV-cache pruning generate decodes with: none with --dense; --kv-sparsity when given; else the
 * source's attention record when its method prunes the KV cache (its sparsities); else none.
 */
export function generateKVOptions(opts: Pick<CLIOptions, 'dense' | 'kvSparsity'>, source: Pick<GenerateSource, 'attention'>): { kv: DecoderKVOptions; from: string } | undefined {
  if (opts.dense) return undefined;
  if (opts.kvSparsity !== undefined) return { kv: { sparsity: opts.kvSparsity }, from: '--kv-sparsity' };
  const rec = source.attention;
  const def = rec === undefined ? undefined : attentionMethods.find(rec.method);
  if (rec === undefined || def?.target !== 'kv-cache') return undefined;
  const parsed = def.schema.safeParse(rec.config);
  if (!parsed.success) throw new RunFolderError(rec.from, `the ${rec.method} attention config of ${rec.from} is not valid (${parsed.error.issues.map((i) => i.message).join('; ')})`);
  // the method's own cache says how much of each K and V row it prunes
  const cache = def.createCache(parsed.data as never, { kvHeads: 1, headDim: 8 });
  return { kv: { kSparsity: cache.kSparsity, vSparsity: cache.vSparsity }, from: rec.from };
}

/** '; KV cache 12.3 KiB vs 24.0 KiB dense (50.0% pruned)': the speed line's KV part. */
export function kvLine(s: DecoderKVStats): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return `; KV cache ${kib(s.bytes)} vs ${kib(s.denseBytes)} dense (${(100 * s.sparsity).toFixed(1)}% pruned)`;
}

/** An activation.json written by the export stage (ACTIVATION_FORMAT); `fail` builds the error naming the file. */
export function readActivationFile(path: string, fail: (message: string) => Error): ActivationCheckpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw fail(`${path} cannot be read as JSON (${(err as Error).message})`);
  }
  const r = raw as Partial<ActivationCheckpoint> & { format?: unknown };
  if (typeof r !== 'object' || r === null || r.format !== ACTIVATION_FORMAT) throw fail(`${path} is not an activation sparsifier file (format ${JSON.stringify(ACTIVATION_FORMAT)} expected, got ${JSON.stringify(r?.format)})`);
  if (typeof r.method !== 'string' || typeof r.states !== 'object' || r.states === null) throw fail(`${path}: expected the fields method, config and states`);
  return { stage: typeof r.stage === 'number' ? r.stage : -1, label: typeof r.label === 'string' ? r.label : 'activation', method: r.method, config: (r.config ?? {}) as Record<string, unknown>, states: r.states as Record<string, unknown> };
}

/** The activation.json beside a model file, if there is one. */
function activationBeside(dir: string): GenerateSource['activation'] {
  const path = join(dir, ACTIVATION_FILE);
  if (!existsSync(path)) return undefined;
  return { saved: readActivationFile(path, (m) => new RunFolderError(dir, m)), from: path };
}

const TOKENIZER_FILE = 'tokenizer.json';

/** The tokenizer of a run's data section (the char alphabet of its text, bytes, or its tokenizer.json). */
export function runTokenizer(data: DataRef): Tokenizer {
  if (typeof data.tokenizer === 'object') return HFTokenizer.fromFile(data.tokenizer.file);
  if (data.tokenizer === 'byte') return new ByteTokenizer();
  if (data.tokenizer === 'auto' && data.source !== 'embedded') return new ByteTokenizer();
  // a char alphabet: the text it was built from decides it
  return loadRunData(data).main.tokenizer;
}

function runRecipeData(dir: string): DataRef {
  const path = join(dir, RECIPE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new RunFolderError(dir, `${path} cannot be read (${(err as Error).message}); the run's tokenizer is named by its recipe`, { cause: err });
  }
  return resolveRecipe(raw, { source: path }).data;
}

/** Whether `dir` is a run folder (marker, or a recipe.json with a checkpoint from before markers). */
function isRun(dir: string): boolean {
  return isRunFolder(dir) || (existsSync(join(dir, RECIPE_FILE)) && hasCheckpoint(dir));
}

async function fromRunFolder(dir: string, shown: string): Promise<GenerateSource> {
  const notes: string[] = [];
  let spec: ModelSpec;
  let values: Map<string, Float32Array>;
  let description: string;
  let activation: GenerateSource['activation'];
  let attention: AttentionSource | undefined;
  if (hasCheckpoint(dir)) {
    const cp = await readRunCheckpoint(dir);
    spec = cp.spec;
    values = new Map();
    for (const [name, p] of cp.params) {
      const mask = cp.masks.get(name);
      if (mask) {
        // pruned entries are zero in the model the run computes with
        const keep = maskToBooleans(mask);
        for (let i = 0; i < p.data.length; i++) if (!keep[i]) p.data[i] = 0;
      }
      values.set(name, p.data);
    }
    if (cp.adapter) notes.push(`the run's adapter '${cp.adapter.label}' is attached and not merged; generating from the base weights without it (as the export does)`);
    if (cp.activation) activation = { saved: cp.activation, from: `the run's checkpoint (stage ${cp.activation.label})` };
    attention = attentionRecord(cp.attention, `the run's checkpoint (stage ${cp.attention?.label})`) ?? attentionBeside(join(dir, 'exports'));
    let stages: number | undefined;
    try {
      stages = (JSON.parse(readFileSync(join(dir, RECIPE_FILE), 'utf8')) as { stages?: unknown[] }).stages?.length;
    } catch {
      stages = undefined;
    }
    description = `run folder ${shown} (checkpoint ${cp.next.step ? `at step ${cp.next.step} of stage ${cp.next.stage + 1}` : `after stage ${cp.next.stage}`}${stages !== undefined ? `/${stages}` : ''})`;
  } else {
    const exported = join(dir, 'exports', 'model.safetensors');
    if (!existsSync(exported)) throw new RunFolderError(dir, `${shown} has no checkpoint (${join(CHECKPOINT_DIR, 'latest.json')}) and no exports/model.safetensors yet; generate from a run that has written one`);
    const c = await readModelCheckpoint(exported);
    spec = c.spec;
    values = c.values;
    description = `run folder ${shown} (exports/model.safetensors)`;
    activation = activationBeside(join(dir, 'exports'));
    attention = attentionBeside(join(dir, 'exports'));
  }
  return { spec, values, tokenizer: runTokenizer(runRecipeData(dir)), description, runDir: dir, notes, ...(activation ? { activation } : {}), ...(attention ? { attention } : {}) };
}

async function fromCheckpoint(path: string, shown: string): Promise<GenerateSource> {
  const c = await readModelCheckpoint(path);
  const dir = statSync(path).isDirectory() ? path : dirname(path);
  const tokPath = join(dir, TOKENIZER_FILE);
  let tokenizer: Tokenizer;
  let runDir: string | undefined;
  if (existsSync(tokPath)) tokenizer = HFTokenizer.fromFile(tokPath);
  else if (basename(dir) === 'exports' && isRun(dirname(dir))) {
    // a file a run exported: the run's tokenizer
    runDir = dirname(dir);
    tokenizer = runTokenizer(runRecipeData(runDir));
  } else {
    throw new TokenizerMissingError(dir, tokPath, `${shown} has no tokenizer: ${tokPath} is missing; put the model's tokenizer.json beside it (or give the run folder it came from)`);
  }
  const activation = activationBeside(dir);
  const attention = attentionBeside(dir);
  return { spec: c.spec, values: c.values, tokenizer, description: `checkpoint ${shown} (${c.source})`, ...(runDir ? { runDir } : {}), notes: [], ...(activation ? { activation } : {}), ...(attention ? { attention } : {}) };
}

/**
 * The model and tokenizer at `path`: a run folder (its latest checkpoint, pruned entries zeroed by
 * its masks; else its exports/model.safetensors) or a checkpoint file or folder (ours or Hugging
 * Face GPT-2 / Llama) with tokenizer.json beside it. A path that does not exist is a RunFolderError.
 */
export async function loadGenerateSource(pathArg: string): Promise<GenerateSource> {
  const path = resolve(pathArg);
  if (!existsSync(path)) throw new RunFolderError(path, `${pathArg} does not exist; give a run folder or a checkpoint (a .safetensors file or a folder with model.safetensors)`);
  const source = statSync(path).isDirectory() && isRun(path) ? await fromRunFolder(path, pathArg) : await fromCheckpoint(path, pathArg);
  if (source.tokenizer.vocabSize > source.spec.vocab) {
    throw new RunFolderError(path, `${pathArg}: the tokenizer has ${source.tokenizer.vocabSize} tokens but the model's vocabulary is ${source.spec.vocab}`);
  }
  return source;
}

/**
 * The decoder of a source. The values' linear weights move into the decoder (they are dropped from
 * `source.values`), so the model is held once. Extra options (an activation hook) pass through.
 */
export function buildDecoder(source: GenerateSource, options: DecoderOptions = {}): Decoder {
  return Decoder.fromValues(source.spec, source.values, { release: true, ...options });
}

export interface SampleOptions {
  /** 0: greedy (argmax). */
  temperature: number;
  /** Sample among the k most likely tokens only. */
  topK?: number;
  /** Ids at or above this are never chosen (the tokenizer's size, when the model's vocabulary is padded). */
  limit?: number;
}

/**
 * Picks the next token from logits: the argmax (lowest id on ties) when temperature is 0, else a
 * draw from softmax(logits / temperature) over the top k (all when topK is unset). `scratch` (at
 * least logits.length) avoids an allocation per token.
 */
export function sampleToken(logits: Float32Array, opts: SampleOptions, rng: Random, scratch: Float64Array = new Float64Array(logits.length)): number {
  const n = Math.min(logits.length, opts.limit ?? logits.length);
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
  if (opts.temperature === 0) return best;
  // the k-th largest logit as the cut-off (ties at the cut-off all stay)
  let cut = -Infinity;
  if (opts.topK !== undefined && opts.topK < n) {
    for (let i = 0; i < n; i++) scratch[i] = logits[i]!;
    const sorted = scratch.subarray(0, n).sort().reverse();
    cut = sorted[opts.topK - 1]!;
  }
  const max = logits[best]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = logits[i]! >= cut ? Math.exp((logits[i]! - max) / opts.temperature) : 0;
    scratch[i] = p;
    sum += p;
  }
  let u = rng.next() * sum;
  for (let i = 0; i < n; i++) {
    u -= scratch[i]!;
    if (u < 0 && scratch[i]! > 0) return i;
  }
  return best;
}

export interface GenerateOptions extends SampleOptions {
  /** Tokens to generate. */
  tokens: number;
  seed: number;
  /** Receives the text as it is produced (pieces). */
  write?: (text: string) => void;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  /** Seconds from the prefill's start to the last token. */
  seconds: number;
  prefillTokens: number;
  prefillMs: number;
  /** Times the context filled up and the last half of it was prefilled again. */
  shifts: number;
}

/**
 * Generates `tokens` tokens after `prompt` (ids). When the cache is full, the decoder starts over on
 * the last half of the context (a re-prefill), so any length can be generated.
 */
export function generateTokens(decoder: Decoder, tokenizer: Tokenizer, prompt: ArrayLike<number>, opts: GenerateOptions): GenerateResult {
  if (prompt.length === 0) throw new FlagError('--prompt', '--prompt must give at least one token');
  if (prompt.length > decoder.capacity) throw new FlagError('--prompt', `the prompt is ${prompt.length} tokens; the model's context is ${decoder.capacity}`);
  const rng = new Random(opts.seed).fork('generate');
  const scratch = new Float64Array(decoder.vocab);
  const promptIds = Array.from(prompt);
  const limit = Math.min(decoder.vocab, opts.limit ?? decoder.vocab, tokenizer.vocabSize);
  const sample: SampleOptions = { temperature: opts.temperature, ...(opts.topK !== undefined ? { topK: opts.topK } : {}), limit };
  // text is decoded with the prompt in front (a tokenizer may drop a leading space otherwise) and
  // written once it is stable (a byte sequence cut mid-character decodes to U+FFFD)
  const promptText = tokenizer.decode(promptIds);
  const ids: number[] = [];
  let written = '';
  const flush = (final: boolean) => {
    const all = tokenizer.decode([...promptIds, ...ids]);
    let text = all.startsWith(promptText) ? all.slice(promptText.length) : tokenizer.decode(ids);
    if (!final) text = text.replace(/\uFFFD+$/, '');
    // a decoder that rewrites earlier text (rare) cannot take back what was written: the rest follows
    if (text.length > written.length && text.startsWith(written)) opts.write?.(text.slice(written.length));
    written = text;
    return text;
  };
  const t0 = performance.now();
  decoder.reset();
  let logits = decoder.prefill(promptIds);
  const prefillMs = performance.now() - t0;
  let shifts = 0;
  const context = [...promptIds];
  for (let i = 0; i < opts.tokens; i++) {
    const next = sampleToken(logits, sample, rng, scratch);
    ids.push(next);
    context.push(next);
    flush(false);
    if (i === opts.tokens - 1) break;
    if (decoder.position >= decoder.capacity) {
      const keep = context.slice(-Math.max(1, Math.floor(decoder.capacity / 2)));
      decoder.reset();
      logits = decoder.prefill(keep);
      shifts++;
    } else logits = decoder.step(next);
  }
  const text = flush(true);
  const seconds = (performance.now() - t0) / 1000;
  return { ids, text, seconds, prefillTokens: promptIds.length, prefillMs, shifts };
}

/** The stderr summary line: '64 tokens in 0.52 s: 123.4 tokens/s (prefill 12 tokens 4.1 ms)'. */
export function speedLine(r: GenerateResult): string {
  const rate = r.seconds > 0 ? r.ids.length / r.seconds : 0;
  return `${r.ids.length} tokens in ${r.seconds.toFixed(2)} s: ${rate.toFixed(1)} tokens/s (prefill ${r.prefillTokens} tokens ${r.prefillMs.toFixed(1)} ms)${r.shifts ? `; the context filled ${r.shifts} time${r.shifts === 1 ? '' : 's'} and was prefilled again from its last half` : ''}`;
}

export interface GenerateIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

/** `sparse-train generate`: loads the source, decodes, streams the text; returns the exit code (errors are thrown for main). */
export async function runGenerate(opts: CLIOptions, io: GenerateIO, decoderOptions: DecoderOptions = {}): Promise<number> {
  const path = opts.args[0]!;
  if (opts.prompt === undefined) throw new FlagError('--prompt', 'generate needs --prompt "<text>"');
  registerNativeKernels();
  const source = await loadGenerateSource(path);
  const prompt = source.tokenizer.encode(opts.prompt);
  const act = opts.dense ? undefined : opts.activation !== undefined ? { saved: readActivationFile(resolve(opts.activation), (m) => new FlagError('--activation', m)), from: opts.activation } : source.activation;
  let hook: DecoderOptions['activation'];
  if (act) {
    // restored before the decoder takes the weights (WINA and R-Sparse read them)
    const sparsifiers = restoreSparsifiers(act.saved, linearsOf(source.spec), (site) => {
      const w = source.values.get(site.name);
      return w && site.out !== undefined ? { data: w, out: site.out, in: site.features } : undefined;
    }, act.from);
    hook = decoderActivationHook(sparsifiers);
    source.notes.push(`activation sparsifier ${act.saved.method} on ${sparsifiers.size} sites, from ${act.from} (--dense decodes without it)`);
  }
  const kv = generateKVOptions(opts, source);
  if (kv && kv.from !== '--kv-sparsity') source.notes.push(`KV cache pruned (mustafar, K ${kv.kv.kSparsity} / V ${kv.kv.vSparsity}), from ${kv.from} (--dense decodes without it)`);
  else if (!kv && !opts.dense && source.attention && attentionMethods.find(source.attention.method)?.target !== 'kv-cache') source.notes.push(`the run's attention method ${source.attention.method} (from ${source.attention.from}) is not applied at decode (only KV-cache pruning methods are); decoding with full attention`);
  const decoder = buildDecoder(source, { ...(hook ? { activation: hook, stats: true } : {}), ...(kv ? { kv: kv.kv } : {}), ...decoderOptions });
  if (!opts.json && !opts.quiet) for (const n of source.notes) io.stderr.write(`sparse-train: ${n}\n`);
  const r = generateTokens(decoder, source.tokenizer, prompt, {
    tokens: opts.tokens ?? 64,
    temperature: opts.temperature ?? 0,
    ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    seed: opts.seed ?? 0,
    ...(opts.json ? {} : { write: (s: string) => io.stdout.write(s) }),
  });
  // the fraction of linear-layer inputs that were zero (what the sparse-input kernel skipped)
  const stats = hook ? decoder.stats() : [];
  const entries = stats.reduce((a, s) => a + s.entries, 0);
  const zeroShare = entries > 0 ? stats.reduce((a, s) => a + s.zeros, 0) / entries : undefined;
  const kvStats = decoder.kvPruned ? decoder.kvStats() : undefined;
  if (opts.json) {
    io.stdout.write(
      `${JSON.stringify({ event: 'generate', time: new Date().toISOString(), source: source.description, prompt: opts.prompt, text: r.text, ids: r.ids, tokens: r.ids.length, seconds: r.seconds, tokensPerSecond: r.seconds > 0 ? r.ids.length / r.seconds : 0, prefill: { tokens: r.prefillTokens, ms: r.prefillMs }, shifts: r.shifts, ...(act ? { activation: { method: act.saved.method, from: act.from, zeroInputs: zeroShare } } : {}), ...(kvStats ? { kv: { ...kvStats, from: kv!.from } } : {}) })}\n`,
    );
    return 0;
  }
  io.stdout.write('\n');
  if (!opts.quiet) io.stderr.write(`${speedLine(r)}${zeroShare !== undefined ? `; ${(100 * zeroShare).toFixed(1)}% of linear-layer inputs were zero (${act!.saved.method})` : ''}${kvStats ? kvLine(kvStats) : ''}\n`);
  return 0;
}
