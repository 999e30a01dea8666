// @sparse/kernels-cpu/select-backend: the project's tfjs backend selection. It knows this package's
// 'sparse-cpu' backend directly (registered on demand, not by importing '/tfjs', so a choice that
// never reaches sparse-cpu registers nothing) and tries the optional peers tfjs-node-gpu,
// tfjs-node and tfjs-backend-wasm by dynamic import from this package's own location.
import { BackendError } from '@sparse/tensor';
import { tryBackends, type BackendAttempt, type BackendCandidate, type BackendChoice } from '@sparse/tensor/tfjs';
import { SPARSE_CPU_BACKEND, registerSparseCPUBackend } from './tfjs/backend.js';

export type { BackendAttempt, BackendChoice };

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
  /**
   * Loads an optional package by specifier (default: dynamic import() from this package, whose
   * optional peers they are); for custom loaders and tests. 'sparse-cpu' is this package's own
   * and never goes through it.
   */
  load?: (specifier: string) => Promise<unknown>;
}

/** tfjs-node-gpu (with a GPU), tfjs-node, this package's native CPU backend, wasm, then plain JS. */
export const DEFAULT_BACKEND_ORDER: readonly string[] = ['tensorflow', SPARSE_CPU_BACKEND, 'wasm', 'cpu'];

const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';
const TFJS_CPU = '@tensorflow/tfjs-backend-cpu';

// A non-literal specifier keeps bundlers and TypeScript from resolving packages that may be absent.
const dynamicImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

/** tfjs-node's backend reports whether TensorFlow placed its context on a CUDA device. */
function usesGpu(backend: unknown): boolean {
  const b = backend as { isUsingGpuDevice?: unknown; binding?: { isUsingGpuDevice?: unknown } } | null;
  if (typeof b?.isUsingGpuDevice === 'boolean') return b.isUsingGpuDevice;
  if (typeof b?.isUsingGpuDevice === 'function') return Boolean((b.isUsingGpuDevice as () => unknown).call(b));
  const viaBinding = b?.binding?.isUsingGpuDevice;
  return typeof viaBinding === 'function' && Boolean((viaBinding as () => unknown).call(b!.binding));
}

/** Registers 'sparse-cpu'; the reason it cannot goes into the selection's one line instead of a warning. */
async function registerSparseCPU(): Promise<void> {
  const registration = registerSparseCPUBackend({ log: () => {} });
  if (!registration.registered) throw new Error(`native addon unavailable (${registration.reason})`);
}

/** What trying the backend `name` means, in order (tfjs-node-gpu and tfjs-node both register 'tensorflow'). */
function candidatesFor(name: string, load: (specifier: string) => Promise<unknown>, skipWasm: boolean): BackendCandidate[] {
  const importing = (specifier: string) => ({ from: specifier, load: () => load(specifier) });
  switch (name) {
    case 'tensorflow':
      // Always imported: only the import says which of the two packages registered 'tensorflow'.
      return [
        {
          name,
          ...importing(TFJS_NODE_GPU),
          alwaysLoad: true,
          reason: `${TFJS_NODE_GPU} on a CUDA GPU`,
          accept: (backend) => (usesGpu(backend) ? undefined : `${TFJS_NODE_GPU} installed but TensorFlow sees no GPU`),
        },
        { name, ...importing(TFJS_NODE), alwaysLoad: true, reason: `${TFJS_NODE} (libtensorflow on the CPU)` },
      ];
    case SPARSE_CPU_BACKEND:
      return [{ name, load: registerSparseCPU, reason: 'native kernels from @sparse/kernels-cpu' }];
    case 'wasm':
      return [
        {
          name,
          ...importing(TFJS_WASM),
          reason: TFJS_WASM,
          ...(skipWasm ? { skip: 'skipped for training: the wasm backend lacks kernels some gradients need' } : {}),
        },
      ];
    case 'cpu':
      return [{ name, ...importing(TFJS_CPU), reason: `${TFJS_CPU} (plain JavaScript)` }];
    default:
      return [{ name, reason: 'registered with tfjs' }];
  }
}

function envOverride(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const value = env?.SPARSE_BACKEND?.trim();
  return value ? value : undefined;
}

/**
 * Picks, activates (tf.setBackend + tf.ready) and reports a tfjs backend. Default order:
 * 'tensorflow' through @tensorflow/tfjs-node-gpu when a GPU is present, then through
 * @tensorflow/tfjs-node, then 'sparse-cpu' (this package's native backend, registered here when
 * the addon loads), 'wasm' (skipped when training), 'cpu'. The tfjs packages are optional peers,
 * loaded with a guarded dynamic import; none is required. `prefer` or SPARSE_BACKEND replace the
 * order. Logs one line; throws BackendError (with `tried`) when nothing works.
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
  // wasm is skipped for training only in the default order: a list that names it means it.
  const skipWasm = (opts.training ?? false) && order === DEFAULT_BACKEND_ORDER;
  const candidates = order.flatMap((name) => candidatesFor(name, opts.load ?? dynamicImport, skipWasm));
  const choice = await tryBackends(candidates, { source, caller: 'selectBackend' });
  (opts.log ?? console.info)(`[@sparse/kernels-cpu] tfjs backend '${choice.name}': ${choice.reason}`);
  return choice;
}
