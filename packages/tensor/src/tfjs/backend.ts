// Trying tfjs backends in order: the generic part of backend selection. It knows no backend or
// package by name; the candidates and their order come from the caller (the project's order,
// tfjs-node-gpu, tfjs-node, sparse-cpu, wasm, cpu, is chosen in the package of the native backend,
// which depends on this one).
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

/** One candidate that was considered, in order. `reason` says why it was or was not usable. */
export interface BackendAttempt {
  name: string;
  ok: boolean;
  reason: string;
}

export interface BackendChoice {
  /** The tfjs backend now active (tf.getBackend()). */
  name: string;
  /** Why it was chosen, in one line. */
  reason: string;
  /** Every candidate considered, in order, the chosen one last. */
  tried: BackendAttempt[];
}

/** One way to get a tfjs backend, for tryBackends. */
export interface BackendCandidate {
  /** The tfjs backend it activates (tf.setBackend). */
  name: string;
  /** Why to take it, said when it is the one chosen ('@tensorflow/tfjs-node (libtensorflow on the CPU)'). */
  reason: string;
  /**
   * Registers the backend with tfjs, typically by importing a package; rejects when it cannot.
   * Called only while no backend `name` is registered (one the application registered is used as
   * it is), unless `alwaysLoad`. Without `load` the candidate takes a registered backend or fails.
   */
  load?: () => Promise<unknown>;
  /**
   * The specifier `load` imports, for its failure: '<package> not installed' when that package is
   * absent, '<from> failed to load: <first line>' when it is present but broken. Without it the
   * failure is the error's first line.
   */
  from?: string;
  /** Call `load` even when `name` is registered (when which package registered it matters). */
  alwaysLoad?: boolean;
  /** Checked once the backend is active: a reason to pass it over (say, no GPU), or undefined to take it. */
  accept?: (backend: tf.KernelBackend) => string | undefined;
  /** A reason not to try the candidate at all; it is listed in `tried` with this reason. */
  skip?: string;
}

export interface TryBackendsOptions {
  /** How the list came about, quoted in the reason and the error: 'default order [tensorflow, cpu]'. */
  source: string;
  /** Starts the error message ('<caller>: no usable tfjs backend in ...'); default 'tryBackends'. */
  caller?: string;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0]!.trim();
}

/** '@scope/name/sub' -> '@scope/name'; 'name/sub' -> 'name'. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  const missing =
    e?.code === 'ERR_MODULE_NOT_FOUND' ||
    e?.code === 'MODULE_NOT_FOUND' ||
    // Node, Vite/vitest and webpack wordings for an unresolvable specifier.
    /Cannot find (package|module)|Could not resolve|Can't resolve|Failed to (load|resolve)/.test(message);
  // A missing dependency *of* the package is a broken install, not an absent package.
  return missing && message.includes(pkg);
}

function loadFailure(err: unknown, from: string | undefined): string {
  if (from === undefined) return firstLine(err);
  const pkg = packageOf(from);
  return isNotInstalled(err, pkg) ? `${pkg} not installed` : `${from} failed to load: ${firstLine(err)}`;
}

function isRegistered(name: string): boolean {
  try {
    return tf.findBackendFactory(name) != null;
  } catch {
    return false;
  }
}

function registeredBackends(): string[] {
  const registry = (tf.engine() as unknown as { registryFactory?: Record<string, unknown> }).registryFactory;
  return registry ? Object.keys(registry) : [];
}

/** Makes `name` the active backend; returns why not on failure. */
async function activate(name: string): Promise<string | undefined> {
  try {
    if (!(await tf.setBackend(name))) return `backend '${name}' failed to initialize`;
    await tf.ready();
    return undefined;
  } catch (err) {
    return `backend '${name}' failed to initialize: ${firstLine(err)}`;
  }
}

/** Loads (when needed), activates and checks one candidate; returns why it is not usable, or undefined. */
async function attempt(c: BackendCandidate): Promise<string | undefined> {
  if (c.skip !== undefined) return c.skip;
  if (c.load && (c.alwaysLoad || !isRegistered(c.name))) {
    try {
      await c.load();
    } catch (err) {
      return loadFailure(err, c.from);
    }
  }
  if (!isRegistered(c.name)) {
    if (c.load) return `${c.from ?? 'its loader'} loaded but registered no '${c.name}' backend`;
    const known = registeredBackends();
    return `no tfjs backend named '${c.name}' is registered${known.length ? ` (registered: ${known.join(', ')})` : ''}`;
  }
  return (await activate(c.name)) ?? c.accept?.(tf.backend());
}

function describeTried(tried: readonly BackendAttempt[]): string {
  return tried.map((t) => `${t.name}: ${t.reason}`).join('; ');
}

/**
 * Tries the candidates in order and leaves the first usable one active (tf.setBackend + tf.ready):
 * each is loaded when needed, activated and checked. Returns its name, every attempt, and the choice
 * explained in one line ('<reason>; first that works in <source> (before it: <name>: <why not>; ...)').
 * Throws BackendError (with `tried`) when none is usable. Logs nothing.
 */
export async function tryBackends(candidates: readonly BackendCandidate[], options: TryBackendsOptions): Promise<BackendChoice> {
  const tried: BackendAttempt[] = [];
  for (const candidate of candidates) {
    const failed = await attempt(candidate);
    tried.push({ name: candidate.name, ok: failed === undefined, reason: failed ?? candidate.reason });
    if (failed !== undefined) continue;
    const passed = tried.slice(0, -1);
    const reason = `${candidate.reason}; first that works in ${options.source}${passed.length ? ` (before it: ${describeTried(passed)})` : ''}`;
    return { name: candidate.name, reason, tried };
  }
  const err = new BackendError(`${options.caller ?? 'tryBackends'}: no usable tfjs backend in ${options.source}; tried ${describeTried(tried)}`);
  throw Object.assign(err, { tried });
}
