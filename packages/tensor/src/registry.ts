// One registry shape for every kind of method in the project (pruners, adapter variants, training
// methods, sparsifiers, patterns): an entry is { kind, name, describe, schema, ...implementation },
// checked when it is registered, looked up by name, and an unknown name is a typed error that names
// the nearest registered ones. zod is not a dependency here: a schema is anything with zod's
// `safeParse` shape, so the packages that own the schemas bring their own zod.

import { ArgumentError } from './errors.js';
import { closestNames } from './names.js';

/** One problem a schema found in a config: where (a field path) and what was expected. */
export interface ConfigIssue {
  path: readonly PropertyKey[];
  message: string;
}

/** The part of a zod schema a registry uses (zod 3 and 4 both have it). */
export interface ConfigSchema<T = unknown> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: readonly ConfigIssue[] } };
}

/** What every registered method is; implementations add their own members. */
export interface RegistryEntry<K extends string = string> {
  /** What sort of method this is ('pruner', 'adapter', 'train', ...); one registry holds one kind. */
  readonly kind: K;
  /** Unique within the registry; kebab-case: lowercase letters, digits and '-', starting with a letter. */
  readonly name: string;
  /** One line for listings (`sparse-train methods`). */
  readonly describe: string;
  /**
   * The paper the method follows, as a short citation: authors, year, title ("Frantar & Alistarh 2023,
   * SparseGPT: ..."). A method that follows no paper says so: "none (this library's own method): ...".
   */
  readonly paper: string;
  /** Every known way the method departs from `paper`, one line each; [] when nothing differs. */
  readonly differs: readonly string[];
  /** Validates a config and fills in its defaults. */
  readonly schema: ConfigSchema;
}

/** The config type an entry's schema produces. */
export type ConfigOf<E extends RegistryEntry> = E['schema'] extends ConfigSchema<infer T> ? T : unknown;

const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/** A name that no entry of a registry has. `suggestions` are the nearest registered names, best first. */
export class UnknownNameError extends ArgumentError {
  readonly kind: string;
  readonly unknown: string;
  readonly suggestions: readonly string[];
  constructor(kind: string, name: unknown, suggestions: readonly string[], registered: readonly string[]) {
    const hint = suggestions.length === 0 ? '' : `; did you mean ${suggestions.map((s) => `'${s}'`).join(' or ')}?`;
    super(`unknown ${kind} ${JSON.stringify(name)}${hint} (registered: ${registered.join(', ') || 'none'})`);
    this.name = 'UnknownNameError';
    this.kind = kind;
    this.unknown = String(name);
    this.suggestions = suggestions;
  }
}

/** A config that an entry's schema refused; `issues` name each failing field path. */
export class ConfigError extends ArgumentError {
  readonly issues: readonly ConfigIssue[];
  constructor(where: string, issues: readonly ConfigIssue[]) {
    super(`${where}: invalid config: ${issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(config)'}: ${i.message}`).join('; ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface Registry<E extends RegistryEntry> {
  /** The kind every entry has (also the word used in errors: "unknown pruner 'x'"). */
  readonly kind: E['kind'];
  /** Adds an entry after checking it; returns a function that removes it again. */
  register(entry: E): () => void;
  /** The entry named `name`; an unknown name throws UnknownNameError with the nearest names. */
  get(name: string): E;
  /** The entry named `name`, or undefined. */
  find(name: string): E | undefined;
  has(name: string): boolean;
  /** Registered names, sorted. */
  list(): string[];
  /** Registered entries, sorted by name. */
  entries(): E[];
  /** The registered names nearest to `name` (edit distance), best first. */
  closest(name: string, limit?: number): string[];
  /** Parses `config` with the entry's schema (defaults filled in); a refused config throws ConfigError naming `where` and each field. */
  parse(name: string, config: unknown, where?: string): ConfigOf<E>;
}

export interface RegistryOptions<E extends RegistryEntry> {
  kind: E['kind'];
  /** Entries present from the start: a sideEffects-free package cannot rely on a module that registers on import. */
  builtins?: readonly E[];
  /** Further checks of an entry (its implementation members); throw ArgumentError naming what is missing. */
  check?: (entry: E) => void;
}

/** Checks the members every entry has; `where` names the registering call in errors. */
export function checkRegistryEntry(entry: unknown, kind: string, where: string): asserts entry is RegistryEntry {
  if (typeof entry !== 'object' || entry === null) throw new ArgumentError(`${where}: expected an entry { kind, name, describe, paper, differs, schema, ... }, got ${String(entry)}`);
  const e = entry as Partial<RegistryEntry>;
  if (typeof e.name !== 'string' || !NAME.test(e.name)) {
    throw new ArgumentError(`${where}: name must be kebab-case (lowercase letters and digits, words joined by '-', starting with a letter), got ${JSON.stringify(e.name)}`);
  }
  if (e.kind !== kind) throw new ArgumentError(`${where}: '${e.name}' has kind ${JSON.stringify(e.kind)}, this registry holds '${kind}'`);
  if (typeof e.describe !== 'string' || e.describe.trim() === '') throw new ArgumentError(`${where}: '${e.name}' needs a one-line describe`);
  if (typeof e.schema?.safeParse !== 'function') throw new ArgumentError(`${where}: '${e.name}' needs a schema (a zod schema: something with safeParse)`);
  checkProvenance(e, where);
}

/** The paper and differs fields: a non-empty citation and an array of non-empty lines ([] allowed). */
function checkProvenance(e: Partial<RegistryEntry>, where: string): void {
  if (typeof e.paper !== 'string' || e.paper.trim() === '') {
    throw new ArgumentError(`${where}: '${e.name}' paper must be a non-empty citation (authors, year, title, or "none (this library's own method): ..."), got ${JSON.stringify(e.paper)}`);
  }
  if (!Array.isArray(e.differs)) {
    throw new ArgumentError(`${where}: '${e.name}' differs must be an array of lines, each a way the method departs from its paper ([] when none), got ${JSON.stringify(e.differs)}`);
  }
  const bad = e.differs.findIndex((d) => typeof d !== 'string' || d.trim() === '');
  if (bad >= 0) throw new ArgumentError(`${where}: '${e.name}' differs[${bad}] must be a non-empty string, got ${JSON.stringify(e.differs[bad])}`);
}

/**
 * What is missing or malformed in the `paper` / `differs` fields of `entries`, one message per entry
 * (naming it and the field); empty when every entry names its paper and lists its departures.
 */
export function provenanceProblems(entries: Iterable<Partial<RegistryEntry>>, where = 'provenance'): string[] {
  const out: string[] = [];
  for (const e of entries) {
    try {
      checkProvenance(e, `${where} ${String(e.kind)}`);
    } catch (err) {
      out.push((err as Error).message);
    }
  }
  return out;
}

/** An entry's paper and departures as the package READMEs write them: "Paper: <paper>. Differs: <a>; <b>." ("none" for []). */
export function provenanceLine(entry: Pick<RegistryEntry, 'paper' | 'differs'>): string {
  return `Paper: ${entry.paper}. Differs: ${entry.differs.length === 0 ? 'none' : entry.differs.join('; ')}.`;
}

/** Parses a config with a schema; a refusal throws ConfigError naming `where` and each failing field. */
export function parseConfig<T>(schema: ConfigSchema<T>, config: unknown, where: string): T {
  const r = schema.safeParse(config ?? {});
  if (r.success) return r.data;
  throw new ConfigError(where, r.error.issues);
}

/** A registry of one kind of method. */
export function createRegistry<E extends RegistryEntry>(opts: RegistryOptions<E>): Registry<E> {
  const { kind, check } = opts;
  const where = `register ${kind}`;
  const table = new Map<string, E>();
  const add = (entry: E): void => {
    checkRegistryEntry(entry, kind, where);
    check?.(entry);
    if (table.has(entry.name)) throw new ArgumentError(`${where}: a ${kind} named '${entry.name}' is already registered`);
    table.set(entry.name, entry);
  };
  for (const e of opts.builtins ?? []) add(e);
  const list = () => [...table.keys()].sort();
  const closest = (name: string, limit = 3) => (typeof name === 'string' ? closestNames(name, table.keys(), limit) : []);
  const get = (name: string): E => {
    const e = typeof name === 'string' ? table.get(name) : undefined;
    if (e !== undefined) return e;
    throw new UnknownNameError(kind, name, closest(name, 1), list());
  };
  return {
    kind,
    register(entry) {
      add(entry);
      return () => {
        if (table.get(entry.name) === entry) table.delete(entry.name);
      };
    },
    get,
    find: (name) => table.get(name),
    has: (name) => table.has(name),
    list,
    entries: () => list().map((n) => table.get(n)!),
    closest,
    parse: (name, config, at) => parseConfig(get(name).schema, config, at ?? name) as ConfigOf<E>,
  };
}
