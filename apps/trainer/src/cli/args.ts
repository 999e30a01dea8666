// Command-line parsing for sparse-train: a small hand-written parser with typed errors that name
// the offending flag. Accepts `--flag value` and `--flag=value`.

import { ArgumentError } from '@sparse/tensor';
import { closestNames } from '@sparse/tensor';

/** A command-line flag is unknown, lacks its value, or has a value out of range. */
export class FlagError extends ArgumentError {
  /** The flag as the user wrote it ("--steps"), or the stray argument. */
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(message);
    this.name = 'FlagError';
    this.flag = flag;
  }
}

export const COMMANDS = ['run', 'resume', 'methods', 'recipe', 'generate'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CLIOptions {
  /** run (default): run a recipe; resume <dir>; methods [kind]; recipe <file> (--explain); generate <run-folder or checkpoint>. */
  command: Command;
  /** Arguments after the command (a run folder, a stage kind, a recipe file). */
  args: string[];
  /** A recipe file; default: the embedded default recipe. */
  recipe?: string;
  /** The run folder (default runs/<recipe>-<time>). */
  out?: string;
  /** A plain-text file to train on instead of the embedded corpus. */
  data?: string;
  /** Overrides of the recipe (pretrain steps/batch/lr, seed, model size, eval windows); unset keeps the recipe's. */
  steps?: number;
  seed?: number;
  batch?: number;
  ctx?: number;
  layers?: number;
  d?: number;
  heads?: number;
  lr?: number;
  /** Held-out windows to evaluate (0: all of them). */
  evalWindows?: number;
  explain: boolean;
  quiet: boolean;
  json: boolean;
  help: boolean;
  version: boolean;
  /** Print the full stack trace of an error. */
  debug: boolean;
  /** With 'resume': continue although recipe.json was edited since the run started. */
  allowRecipeChange: boolean;
  /** With 'generate': the prompt, tokens to generate (default 64), temperature (default 0: greedy), top-k. */
  prompt?: string;
  tokens?: number;
  temperature?: number;
  topK?: number;
  /** With 'generate': an activation.json to decode with (default: the run's own sparsifier, if any). */
  activation?: string;
  /** With 'generate': decode dense, without the run's activation sparsifier or KV-cache pruning. */
  dense: boolean;
  /** With 'generate': prune the KV cache to this sparsity (Mustafar, per token and kv head); default: the run's mustafar attention record, if any. */
  kvSparsity?: number;
}

export const DEFAULT_OPTIONS: Readonly<CLIOptions> = {
  command: 'run',
  args: [],
  explain: false,
  quiet: false,
  json: false,
  help: false,
  version: false,
  debug: false,
  allowRecipeChange: false,
  dense: false,
};

type ValueKind = 'int' | 'posint' | 'float' | 'nonneg' | 'fraction' | 'path' | 'text';
type NumericKey = 'steps' | 'seed' | 'batch' | 'ctx' | 'layers' | 'd' | 'heads' | 'lr' | 'evalWindows' | 'tokens' | 'temperature' | 'topK' | 'kvSparsity';
type PathKey = 'data' | 'recipe' | 'out' | 'prompt' | 'activation';

interface ValueFlag {
  key: NumericKey | PathKey;
  kind: ValueKind;
  meta: string;
  help: string;
}
interface SwitchFlag {
  key: 'quiet' | 'json' | 'help' | 'version' | 'explain' | 'debug' | 'allowRecipeChange' | 'dense';
  help: string;
}

const VALUE_FLAGS: Record<string, ValueFlag> = {
  '--recipe': { key: 'recipe', kind: 'path', meta: '<file.yaml>', help: 'run this recipe (YAML or JSON) instead of the embedded default' },
  '--out': { key: 'out', kind: 'path', meta: '<dir>', help: 'run folder (default runs/<recipe>-<date>)' },
  '--data': { key: 'data', kind: 'path', meta: '<file.txt>', help: "train on a plain-text file (byte-level tokens) instead of the embedded corpus; '-' reads standard input" },
  '--steps': { key: 'steps', kind: 'int', meta: 'N', help: 'pretraining steps (0: no pretraining)' },
  '--seed': { key: 'seed', kind: 'int', meta: 'N', help: "seed of the initialization and batch sampling ('generate': of the token sampling)" },
  '--batch': { key: 'batch', kind: 'posint', meta: 'N', help: 'sequences per pretraining step' },
  '--ctx': { key: 'ctx', kind: 'posint', meta: 'N', help: 'context length in tokens' },
  '--layers': { key: 'layers', kind: 'posint', meta: 'N', help: 'transformer blocks' },
  '--d': { key: 'd', kind: 'posint', meta: 'N', help: 'model width (a multiple of --heads)' },
  '--heads': { key: 'heads', kind: 'posint', meta: 'N', help: 'attention heads' },
  '--lr': { key: 'lr', kind: 'float', meta: 'X', help: 'peak pretraining learning rate (Adam; warmup, then cosine decay)' },
  '--eval-windows': { key: 'evalWindows', kind: 'int', meta: 'N', help: 'held-out windows for perplexity (0: all)' },
  '--prompt': { key: 'prompt', kind: 'text', meta: '<text>', help: "with 'generate': the text to continue" },
  '--tokens': { key: 'tokens', kind: 'posint', meta: 'N', help: "with 'generate': tokens to generate (default 64)" },
  '--temperature': { key: 'temperature', kind: 'nonneg', meta: 'T', help: "with 'generate': sampling temperature (default 0: greedy)" },
  '--top-k': { key: 'topK', kind: 'posint', meta: 'K', help: "with 'generate': sample among the K most likely tokens only" },
  '--activation': { key: 'activation', kind: 'path', meta: '<activation.json>', help: "with 'generate': decode with this activation sparsifier (an export's activation.json; default: the run's own)" },
  '--kv-sparsity': { key: 'kvSparsity', kind: 'fraction', meta: 'S', help: "with 'generate': prune the KV cache to sparsity S in [0, 1) (Mustafar: per token and kv head, by magnitude; default: the run's mustafar attention, if any)" },
};
/** Flags that only 'generate' takes. */
const GENERATE_FLAGS = ['--prompt', '--tokens', '--temperature', '--top-k', '--activation', '--dense', '--kv-sparsity'];
const SWITCHES: Record<string, SwitchFlag> = {
  '--explain': { key: 'explain', help: "with 'recipe <file>': print the resolved recipe, every default filled in" },
  '--quiet': { key: 'quiet', help: 'no progress bar or header; print only the result' },
  '--json': { key: 'json', help: 'JSON lines on stdout (start, every step, evaluations, stage ends; an error is one line too)' },
  '--allow-recipe-change': { key: 'allowRecipeChange', help: "with 'resume': continue although the run folder's recipe.json was edited" },
  '--dense': { key: 'dense', help: "with 'generate': decode dense, without the run's activation sparsifier or KV-cache pruning" },
  '--debug': { key: 'debug', help: 'print the full stack trace of an error (also SPARSE_TRAIN_DEBUG=1)' },
  '--help': { key: 'help', help: 'show this help' },
  '--version': { key: 'version', help: 'print the version' },
};
const ALIASES: Record<string, string> = { '-h': '--help', '-v': '--version', '-q': '--quiet' };

export function knownFlags(): string[] {
  return [...Object.keys(VALUE_FLAGS), ...Object.keys(SWITCHES)];
}

/** The known flag nearest to `flag` by edit distance. */
export function closestFlag(flag: string): string {
  const bare = flag.replace(/^-+/, '');
  return `--${closestNames(bare, knownFlags().map((f) => f.slice(2)), 1)[0] ?? 'help'}`;
}

function parseValue(flag: string, spec: ValueFlag, raw: string): number | string {
  if (spec.kind === 'path') {
    if (raw === '') throw new FlagError(flag, `${flag} needs a file path`);
    return raw;
  }
  if (spec.kind === 'text') return raw;
  const trimmed = raw.trim();
  if (spec.kind === 'nonneg') {
    const x = Number(trimmed);
    if (trimmed === '' || !Number.isFinite(x) || x < 0) throw new FlagError(flag, `${flag} must be a number >= 0, got '${raw}'`);
    return x;
  }
  if (spec.kind === 'fraction') {
    const x = Number(trimmed);
    if (trimmed === '' || !Number.isFinite(x) || x < 0 || x >= 1) throw new FlagError(flag, `${flag} must be a number in [0, 1), got '${raw}'`);
    return x;
  }
  if (spec.kind === 'float') {
    const x = Number(trimmed);
    if (trimmed === '' || !Number.isFinite(x) || x <= 0) throw new FlagError(flag, `${flag} must be a positive number, got '${raw}'`);
    return x;
  }
  const n = Number(trimmed);
  if (trimmed === '' || !/^[+]?\d+$/.test(trimmed) || !Number.isSafeInteger(n)) {
    throw new FlagError(flag, `${flag} must be ${spec.kind === 'posint' ? 'a positive' : 'a non-negative'} integer, got '${raw}'`);
  }
  if (spec.kind === 'posint' && n < 1) throw new FlagError(flag, `${flag} must be a positive integer, got '${raw}'`);
  if (spec.key === 'seed' && n > 0xffffffff) throw new FlagError(flag, `${flag} must be at most ${0xffffffff}, got '${raw}'`);
  return n;
}

/** Parses argv (without the node and script paths). Throws FlagError on any bad input. */
export function parseArgs(argv: readonly string[]): CLIOptions {
  const out: CLIOptions = { ...DEFAULT_OPTIONS, args: [] };
  const seen = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      if (positional.length === 0 && (COMMANDS as readonly string[]).includes(arg)) out.command = arg as Command;
      else if (positional.length === 0 && out.command === 'run' && out.args.length === 0) {
        const near = closestNames(arg, COMMANDS, 1);
        throw new FlagError(arg, `unknown command '${arg}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; commands: ${COMMANDS.join(', ')} (or flags only, to run a recipe)`);
      } else out.args.push(arg);
      positional.push(arg);
      continue;
    }
    if (arg === '--') throw new FlagError(arg, `unexpected argument '--' (see --help)`);
    const eq = arg.indexOf('=');
    const name = ALIASES[arg] ?? (eq >= 0 ? arg.slice(0, eq) : arg);
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const sw = SWITCHES[name];
    const vf = VALUE_FLAGS[name];
    if (!sw && !vf) throw new FlagError(name, `unknown flag ${name} (did you mean ${closestFlag(name)}?)`);
    if (seen.has(name)) throw new FlagError(name, `${name} is given more than once`);
    seen.add(name);
    if (sw) {
      if (inline !== undefined) throw new FlagError(name, `${name} takes no value`);
      out[sw.key] = true;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new FlagError(name, `${name} needs a value (${vf.meta})`);
      raw = next;
      i++;
    }
    const value = parseValue(name, vf, raw);
    if (vf.key === 'data' || vf.key === 'recipe' || vf.key === 'out' || vf.key === 'prompt' || vf.key === 'activation') out[vf.key] = value as string;
    else out[vf.key] = value as number;
  }
  if (out.d !== undefined && out.heads !== undefined && out.d % out.heads !== 0) {
    throw new FlagError('--d', `--d (${out.d}) must be a multiple of --heads (${out.heads})`);
  }
  const want: Record<Command, [number, number, string]> = {
    run: [0, 0, ''],
    resume: [1, 1, 'resume <run-folder>'],
    methods: [0, 1, 'methods [stage-kind]'],
    recipe: [1, 1, 'recipe <file.yaml> --explain'],
    generate: [1, 1, 'generate <run-folder or checkpoint> --prompt "<text>"'],
  };
  const [lo, hi, form] = want[out.command];
  if (out.args.length < lo || out.args.length > hi) {
    throw new FlagError(out.command, out.command === 'run' ? `unexpected argument '${out.args[0]}' (see --help)` : `usage: sparse-train ${form}`);
  }
  if (out.explain && out.command !== 'recipe') throw new FlagError('--explain', "--explain goes with 'sparse-train recipe <file>'");
  if (out.allowRecipeChange && out.command !== 'resume') throw new FlagError('--allow-recipe-change', "--allow-recipe-change goes with 'sparse-train resume <run-folder>'");
  for (const f of GENERATE_FLAGS) if (seen.has(f) && out.command !== 'generate') throw new FlagError(f, `${f} goes with 'sparse-train generate <run-folder or checkpoint>'`);
  if (out.command === 'generate' && out.prompt === undefined) throw new FlagError('--prompt', 'generate needs --prompt "<text>"');
  if (out.activation !== undefined && out.dense) throw new FlagError('--dense', '--dense decodes without a sparsifier; it does not go with --activation');
  if (out.kvSparsity !== undefined && out.dense) throw new FlagError('--dense', '--dense decodes with the dense KV cache; it does not go with --kv-sparsity');
  return out;
}

export function usage(): string {
  const rows: [string, string][] = [
    ...Object.entries(VALUE_FLAGS).map(([f, s]): [string, string] => [`${f} ${s.meta}`, s.help]),
    ...Object.entries(SWITCHES).map(([f, s]): [string, string] => [f, s.help]),
  ];
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [
    'Usage: sparse-train [--recipe file.yaml] [flags]     run a recipe (default: the embedded one)',
    '       sparse-train resume <run-folder>              continue a killed or stopped run (Ctrl-C stops a run at a checkpoint)',
    '       sparse-train methods [stage-kind]             list every method, its config fields and defaults (export: the formats)',
    '       sparse-train recipe <file.yaml> --explain     validate a recipe and print it resolved',
    '       sparse-train generate <run-folder or checkpoint> --prompt "<text>" [--tokens N --temperature T --top-k K --seed S --activation <file> --kv-sparsity S | --dense]',
    '                                                     continue a prompt with a trained model (KV-cache decoding), streamed to stdout',
    '',
    'With no arguments: pretrain a small GPT on the embedded corpus, prune it to 2:4 with SparseGPT,',
    'recover with SQFT (merged through the mask), evaluate, export and write an HTML report.',
    'Flags such as --steps and --d override the recipe (pretraining and model size).',
    '',
    'Flags:',
    ...rows.map(([l, h]) => `  ${l.padEnd(width)}${h}`),
    '',
  ].join('\n');
}
