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

export interface SelectBackendOptions {
  /**
   * Backends to try, in this order, instead of the default order; only these are tried. Names are
   * tfjs backend names: 'tensorflow', 'sparse-cpu', 'wasm', 'cpu', or any backend registered with tfjs.
   * The SPARSE_BACKEND environment variable (one name or a comma-separated list) overrides this.
   */
  prefer?: string[];
  /** Skip wasm in the default order: it lacks kernels some gradients need. */
  training?: boolean;
  /** Receives the one line saying which backend was chosen and why (default: console.info). */
  log?: (line: string) => void;
  /** Loads an optional package by specifier (default: dynamic import()); for custom loaders and tests. */
  load?: (specifier: string) => Promise<unknown>;
}

/** tfjs-node-gpu (with a GPU), tfjs-node, the project's native CPU backend, wasm, then plain JS. */
export const DEFAULT_BACKEND_ORDER: readonly string[] = ['tensorflow', 'sparse-cpu', 'wasm', 'cpu'];

const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const TFJS_NODE = '@tensorflow/tfjs-node';
const SPARSE_CPU_TFJS = '@sparse/kernels-cpu/tfjs';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';
const TFJS_CPU = '@tensorflow/tfjs-backend-cpu';

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

// A non-literal specifier keeps bundlers and TypeScript from resolving packages that may be absent.
const dynamicImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

type Loaded = { ok: true } | { ok: false; reason: string };

async function load(loader: (s: string) => Promise<unknown>, specifier: string): Promise<Loaded> {
  try {
    await loader(specifier);
    return { ok: true };
  } catch (err) {
    const pkg = packageOf(specifier);
    return { ok: false, reason: isNotInstalled(err, pkg) ? `${pkg} not installed` : `${specifier} failed to load: ${firstLine(err)}` };
  }
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

/** tfjs-node's backend reports whether TensorFlow placed its context on a CUDA device. */
function usesGpu(backend: unknown): boolean {
  const b = backend as { isUsingGpuDevice?: unknown; binding?: { isUsingGpuDevice?: unknown } } | null;
  if (typeof b?.isUsingGpuDevice === 'boolean') return b.isUsingGpuDevice;
  if (typeof b?.isUsingGpuDevice === 'function') return Boolean((b.isUsingGpuDevice as () => unknown).call(b));
  const viaBinding = b?.binding?.isUsingGpuDevice;
  return typeof viaBinding === 'function' && Boolean((viaBinding as () => unknown).call(b!.binding));
}

interface Context {
  loader: (specifier: string) => Promise<unknown>;
  training: boolean;
  forced: boolean;
  tried: BackendAttempt[];
}

/** Loads a package that registers `name` (unless already registered), then activates it. */
async function tryPackage(ctx: Context, name: string, specifier: string, okReason: string): Promise<boolean> {
  if (!isRegistered(name)) {
    const loaded = await load(ctx.loader, specifier);
    if (!loaded.ok) {
      ctx.tried.push({ name, ok: false, reason: loaded.reason });
      return false;
    }
    if (!isRegistered(name)) {
      ctx.tried.push({ name, ok: false, reason: `${specifier} loaded but registered no '${name}' backend` });
      return false;
    }
  }
  const failed = await activate(name);
  ctx.tried.push(failed ? { name, ok: false, reason: failed } : { name, ok: true, reason: okReason });
  return !failed;
}

async function tryTensorflow(ctx: Context): Promise<boolean> {
  const gpu = await load(ctx.loader, TFJS_NODE_GPU);
  if (!gpu.ok) {
    ctx.tried.push({ name: 'tensorflow', ok: false, reason: gpu.reason });
  } else {
    const failed = isRegistered('tensorflow') ? await activate('tensorflow') : `${TFJS_NODE_GPU} loaded but registered no 'tensorflow' backend`;
    if (failed) ctx.tried.push({ name: 'tensorflow', ok: false, reason: failed });
    else if (usesGpu(tf.backend())) {
      ctx.tried.push({ name: 'tensorflow', ok: true, reason: `${TFJS_NODE_GPU} on a CUDA GPU` });
      return true;
    } else ctx.tried.push({ name: 'tensorflow', ok: false, reason: `${TFJS_NODE_GPU} installed but TensorFlow sees no GPU` });
  }
  const cpu = await load(ctx.loader, TFJS_NODE);
  if (!cpu.ok) {
    ctx.tried.push({ name: 'tensorflow', ok: false, reason: cpu.reason });
    return false;
  }
  const failed = isRegistered('tensorflow') ? await activate('tensorflow') : `${TFJS_NODE} loaded but registered no 'tensorflow' backend`;
  ctx.tried.push(failed ? { name: 'tensorflow', ok: false, reason: failed } : { name: 'tensorflow', ok: true, reason: `${TFJS_NODE} (libtensorflow on the CPU)` });
  return !failed;
}

async function tryBackend(ctx: Context, name: string): Promise<boolean> {
  switch (name) {
    case 'tensorflow':
      return tryTensorflow(ctx);
    case 'sparse-cpu':
      // @sparse/kernels-cpu/tfjs registers 'sparse-cpu' with tf.registerBackend when imported.
      return tryPackage(ctx, name, SPARSE_CPU_TFJS, 'native kernels from @sparse/kernels-cpu');
    case 'wasm':
      if (ctx.training && !ctx.forced) {
        ctx.tried.push({ name, ok: false, reason: 'skipped for training: the wasm backend lacks kernels some gradients need' });
        return false;
      }
      return tryPackage(ctx, name, TFJS_WASM, TFJS_WASM);
    case 'cpu':
      return tryPackage(ctx, name, TFJS_CPU, `${TFJS_CPU} (plain JavaScript)`);
    default: {
      if (!isRegistered(name)) {
        const known = registeredBackends();
        ctx.tried.push({ name, ok: false, reason: `no tfjs backend named '${name}' is registered${known.length ? ` (registered: ${known.join(', ')})` : ''}` });
        return false;
      }
      const failed = await activate(name);
      ctx.tried.push(failed ? { name, ok: false, reason: failed } : { name, ok: true, reason: 'registered with tfjs' });
      return !failed;
    }
  }
}

function envOverride(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.SPARSE_BACKEND?.trim();
  return value ? value : undefined;
}

function describeTried(tried: readonly BackendAttempt[]): string {
  return tried.map((t) => `${t.name}: ${t.reason}`).join('; ');
}

/**
 * Picks, activates (tf.setBackend + tf.ready) and reports a tfjs backend. Default order:
 * 'tensorflow' through @tensorflow/tfjs-node-gpu when a GPU is present, then through
 * @tensorflow/tfjs-node, then 'sparse-cpu', 'wasm' (skipped when training), 'cpu'. Every optional
 * package is loaded with a guarded dynamic import; none is required. `prefer` or SPARSE_BACKEND
 * replace the order. Logs one line; throws BackendError (with `tried`) when nothing works.
 */
export async function selectBackend(opts: SelectBackendOptions = {}): Promise<BackendChoice> {
  const fromEnv = envOverride();
  const order = fromEnv
    ? fromEnv
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : (opts.prefer ?? DEFAULT_BACKEND_ORDER);
  const source = fromEnv
    ? `SPARSE_BACKEND=${fromEnv}`
    : opts.prefer
      ? `preferred order [${order.join(', ')}]`
      : `default order [${DEFAULT_BACKEND_ORDER.join(', ')}]`;
  if (order.length === 0) throw new BackendError('selectBackend: the preferred backend list is empty');
  const ctx: Context = { loader: opts.load ?? dynamicImport, training: opts.training ?? false, forced: order !== DEFAULT_BACKEND_ORDER, tried: [] };

  for (const name of order) {
    if (!(await tryBackend(ctx, name))) continue;
    const chosen = ctx.tried[ctx.tried.length - 1]!;
    const passed = ctx.tried.slice(0, -1);
    const reason = `${chosen.reason}; first that works in ${source}${passed.length ? ` (before it: ${describeTried(passed)})` : ''}`;
    (opts.log ?? console.info)(`[@sparse/tensor] tfjs backend '${name}': ${reason}`);
    return { name, reason, tried: ctx.tried };
  }
  const err = new BackendError(`selectBackend: no usable tfjs backend in ${source}; tried ${describeTried(ctx.tried)}`);
  throw Object.assign(err, { tried: ctx.tried });
}
