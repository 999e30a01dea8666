// selectBackend's order and explanations. tfjs-node(-gpu) are not installed in this repository
// (real imports report them absent; stand-in loaders play them present); wasm and cpu are
// (devDependencies). 'sparse-cpu' registration is replaced here by a stand-in that either registers
// a working backend or reports the addon missing, so every path runs with or without the addon;
// the real registration is tested in tfjs.test.ts.
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '@sparse/tensor';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_BACKEND_ORDER, selectBackend, type BackendAttempt, type BackendChoice, type SelectBackendOptions } from './select-backend.js';
import { registerSparseCPUBackend, type SparseCPURegistration } from './tfjs/backend.js';

vi.mock('./tfjs/backend.js', async (original) => ({ ...(await original<typeof import('./tfjs/backend.js')>()), registerSparseCPUBackend: vi.fn() }));
const register = vi.mocked(registerSparseCPUBackend);

function collect(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

const fakeBackends: string[] = [];

/** A stand-in for what tfjs-node or registration registers: a working backend object that says whether it uses a GPU. */
function registerFake(name: string, gpu?: boolean): void {
  tf.registerBackend(name, () => Object.assign(new MathBackendCPU(), gpu === undefined ? {} : { isUsingGpuDevice: gpu }));
  fakeBackends.push(name);
}

const MISSING: SparseCPURegistration = { registered: false, nativeKernels: [], fastKernels: [], reason: 'pretend it is missing' };

/** Registration as with the addon: a working 'sparse-cpu'. */
function sparseCPUAvailable(): void {
  register.mockImplementation(() => {
    if (tf.findBackendFactory('sparse-cpu') == null) registerFake('sparse-cpu');
    return { registered: true, nativeKernels: [], fastKernels: [] };
  });
}

beforeEach(() => {
  register.mockReset();
  register.mockReturnValue(MISSING);
});
afterEach(() => {
  vi.unstubAllEnvs();
  for (const name of fakeBackends.splice(0)) tf.removeBackend(name);
});

function notInstalled(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}' imported from /app/index.js`), { code: 'ERR_MODULE_NOT_FOUND' });
}

/**
 * selectBackend with a stand-in loader: a specifier in `installed` is "imported" by running its
 * function (which registers a fake or throws), any other is not installed. Also returns what was loaded.
 */
async function selectWith(installed: Record<string, () => void>, opts: SelectBackendOptions = {}): Promise<{ choice: BackendChoice; loaded: string[] }> {
  const loaded: string[] = [];
  const load = async (s: string): Promise<void> => {
    loaded.push(s);
    const found = installed[s];
    if (!found) throw notInstalled(s);
    found();
  };
  return { choice: await selectBackend({ log: () => {}, load, ...opts }), loaded };
}

describe('selectBackend in this environment', () => {
  it('skips the missing packages and the missing addon and picks wasm, logging exactly one line', async () => {
    const { lines, log } = collect();
    const choice = await selectBackend({ log });
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.tried).toEqual<BackendAttempt[]>([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node not installed' },
      { name: 'sparse-cpu', ok: false, reason: 'native addon unavailable (pretend it is missing)' },
      { name: 'wasm', ok: true, reason: '@tensorflow/tfjs-backend-wasm' },
    ]);
    expect(choice.reason).toMatch(/^@tensorflow\/tfjs-backend-wasm; first that works in default order \[tensorflow, sparse-cpu, wasm, cpu\] \(before it: tensorflow: @tensorflow\/tfjs-node-gpu not installed;/);
    expect(lines).toEqual([`[@sparse/kernels-cpu] tfjs backend 'wasm': ${choice.reason}`]);
    // The addon's reason is in that line, not in a separate warning.
    expect(register).toHaveBeenCalledWith({ log: expect.any(Function) });
    // The chosen backend is ready to compute.
    expect(Array.from(tf.add(tf.scalar(1), tf.scalar(2)).dataSync())).toEqual([3]);
  });

  it('picks sparse-cpu when the addon loads, ahead of wasm and cpu', async () => {
    sparseCPUAvailable();
    const choice = await selectBackend({ training: true, log: () => {} });
    expect(choice.name).toBe('sparse-cpu');
    expect(tf.getBackend()).toBe('sparse-cpu');
    expect(choice.tried.at(-1)).toEqual({ name: 'sparse-cpu', ok: true, reason: 'native kernels from @sparse/kernels-cpu' });
    expect(DEFAULT_BACKEND_ORDER).toEqual(['tensorflow', 'sparse-cpu', 'wasm', 'cpu']);
  });

  it('skips wasm when training and picks cpu', async () => {
    const { lines, log } = collect();
    const choice = await selectBackend({ training: true, log });
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(choice.tried.find((t) => t.name === 'wasm')).toEqual({
      name: 'wasm',
      ok: false,
      reason: 'skipped for training: the wasm backend lacks kernels some gradients need',
    });
    expect(choice.tried.at(-1)).toEqual({ name: 'cpu', ok: true, reason: '@tensorflow/tfjs-backend-cpu (plain JavaScript)' });
    expect(lines).toEqual([expect.stringContaining("tfjs backend 'cpu'")]);
  });

  it('follows prefer, trying only what it lists', async () => {
    await selectBackend({ log: () => {} });
    const choice = await selectBackend({ prefer: ['cpu'], log: () => {} });
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(choice.tried).toEqual([{ name: 'cpu', ok: true, reason: '@tensorflow/tfjs-backend-cpu (plain JavaScript)' }]);
    expect(choice.reason).toContain('preferred order [cpu]');
    // An explicitly preferred wasm is tried even when training.
    expect((await selectBackend({ prefer: ['wasm'], training: true, log: () => {} })).name).toBe('wasm');
  });

  it('lets SPARSE_BACKEND override prefer', async () => {
    vi.stubEnv('SPARSE_BACKEND', 'cpu');
    const { lines, log } = collect();
    const choice = await selectBackend({ prefer: ['wasm'], log });
    expect(choice.name).toBe('cpu');
    expect(choice.reason).toContain('SPARSE_BACKEND=cpu');
    expect(lines).toHaveLength(1);
    vi.stubEnv('SPARSE_BACKEND', ' tensorflow , wasm ');
    expect((await selectBackend({ training: true, log: () => {} })).name).toBe('wasm');
  });

  it('throws BackendError listing what was tried when no preferred backend works', async () => {
    const { lines, log } = collect();
    const attempt = selectBackend({ prefer: ['webgpu-nope', 'tensorflow'], log });
    const err = (await attempt.catch((e: unknown) => e)) as BackendError & { tried: BackendAttempt[] };
    // isInstance: @sparse/tensor's entries each bundle their own copy of the error classes.
    expect(BackendError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/^selectBackend: no usable tfjs backend in preferred order \[webgpu-nope, tensorflow\]; tried webgpu-nope: no tfjs backend named 'webgpu-nope' is registered \(registered: .*cpu.*\)/);
    expect(err.message).toContain('tensorflow: @tensorflow/tfjs-node not installed');
    expect(err.tried.map((t) => t.ok)).toEqual([false, false, false]);
    expect(lines).toEqual([]);
    vi.stubEnv('SPARSE_BACKEND', 'nope');
    await expect(selectBackend({ log })).rejects.toThrow(/in SPARSE_BACKEND=nope; tried nope: no tfjs backend named 'nope'/);
    vi.unstubAllEnvs();
    const empty = await selectBackend({ prefer: [], log }).catch((e: unknown) => e);
    expect(BackendError.isInstance(empty) && empty.message).toBe('selectBackend: the preferred backend list is empty');
  });
});

describe('selectBackend decisions (with a stand-in loader)', () => {
  it('takes tensorflow through tfjs-node-gpu when TensorFlow reports a GPU', async () => {
    const { choice, loaded } = await selectWith({ '@tensorflow/tfjs-node-gpu': () => registerFake('tensorflow', true) });
    expect(choice.name).toBe('tensorflow');
    expect(choice.tried).toEqual([{ name: 'tensorflow', ok: true, reason: '@tensorflow/tfjs-node-gpu on a CUDA GPU' }]);
    expect(loaded).toEqual(['@tensorflow/tfjs-node-gpu']);
    expect(register).not.toHaveBeenCalled();
  });

  it('passes over tfjs-node-gpu without a GPU and takes tfjs-node', async () => {
    const { choice, loaded } = await selectWith({ '@tensorflow/tfjs-node-gpu': () => registerFake('tensorflow', false), '@tensorflow/tfjs-node': () => {} });
    expect(choice.name).toBe('tensorflow');
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu installed but TensorFlow sees no GPU' },
      { name: 'tensorflow', ok: true, reason: '@tensorflow/tfjs-node (libtensorflow on the CPU)' },
    ]);
    // tfjs-node is imported although 'tensorflow' is registered by then.
    expect(loaded).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
  });

  it('takes tfjs-node (a GPU reported through its binding is still taken by tfjs-node-gpu)', async () => {
    const { choice } = await selectWith({ '@tensorflow/tfjs-node': () => registerFake('tensorflow') });
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', ok: true, reason: '@tensorflow/tfjs-node (libtensorflow on the CPU)' },
    ]);
    tf.removeBackend(fakeBackends.pop()!);
    tf.registerBackend('tensorflow', () => Object.assign(new MathBackendCPU(), { binding: { isUsingGpuDevice: () => true } }));
    fakeBackends.push('tensorflow');
    expect((await selectBackend({ log: () => {}, load: async () => {} })).reason).toMatch(/^@tensorflow\/tfjs-node-gpu on a CUDA GPU/);
  });

  it('reports a package that is present but broken differently from one that is absent, then takes sparse-cpu', async () => {
    sparseCPUAvailable();
    const { choice, loaded } = await selectWith({
      '@tensorflow/tfjs-node': () => {
        throw new Error('libtensorflow.so.2: cannot open shared object file\n    at Module._extensions');
      },
    });
    expect(choice.name).toBe('sparse-cpu');
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node failed to load: libtensorflow.so.2: cannot open shared object file' },
      { name: 'sparse-cpu', ok: true, reason: 'native kernels from @sparse/kernels-cpu' },
    ]);
    // sparse-cpu is this package's own: registered directly, never loaded by specifier.
    expect(loaded).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    expect(register).toHaveBeenCalledOnce();
  });

  it('uses a sparse-cpu backend that is already registered without registering it again', async () => {
    registerFake('sparse-cpu');
    const choice = await selectBackend({ prefer: ['sparse-cpu'], log: () => {}, load: async () => {} });
    expect(choice.name).toBe('sparse-cpu');
    expect(register).not.toHaveBeenCalled();
  });

  it('says so when a package loads but registers no backend, and a failing backend init falls through', async () => {
    tf.registerBackend('broken-init', () => {
      throw new Error('no device');
    });
    fakeBackends.push('broken-init');
    const quiet = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const choice = await selectBackend({
      prefer: ['tensorflow', 'broken-init', 'cpu'],
      log: () => {},
      load: async () => {},
    });
    quiet.mockRestore();
    expect(choice.name).toBe('cpu');
    expect(choice.tried.slice(0, 3)).toEqual([
      { name: 'tensorflow', ok: false, reason: "@tensorflow/tfjs-node-gpu loaded but registered no 'tensorflow' backend" },
      { name: 'tensorflow', ok: false, reason: "@tensorflow/tfjs-node loaded but registered no 'tensorflow' backend" },
      { name: 'broken-init', ok: false, reason: "backend 'broken-init' failed to initialize" },
    ]);
  });
});
