import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendError } from '../errors.js';
import { selectBackend, type BackendAttempt } from '../tfjs.js';

// In this repository tfjs-node(-gpu) and @sparse/kernels-cpu are not installed; the wasm and cpu
// backends are (devDependencies). The first tests use the real dynamic imports.

function collect(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

const fakeBackends: string[] = [];
afterEach(() => {
  vi.unstubAllEnvs();
  for (const name of fakeBackends.splice(0)) tf.removeBackend(name);
});

/** A stand-in for what tfjs-node registers: a working backend object that says whether it uses a GPU. */
function registerFake(name: string, gpu?: boolean): void {
  tf.registerBackend(name, () => Object.assign(new MathBackendCPU(), gpu === undefined ? {} : { isUsingGpuDevice: gpu }));
  fakeBackends.push(name);
}

function notInstalled(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}' imported from /app/index.js`), { code: 'ERR_MODULE_NOT_FOUND' });
}

describe('selectBackend in this environment', () => {
  it('skips the missing native packages and picks wasm, logging exactly one line', async () => {
    const { lines, log } = collect();
    const choice = await selectBackend({ log });
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.tried).toEqual<BackendAttempt[]>([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node not installed' },
      { name: 'sparse-cpu', ok: false, reason: '@sparse/kernels-cpu not installed' },
      { name: 'wasm', ok: true, reason: '@tensorflow/tfjs-backend-wasm' },
    ]);
    expect(choice.reason).toMatch(/^@tensorflow\/tfjs-backend-wasm; first that works in default order \[tensorflow, sparse-cpu, wasm, cpu\] \(before it: tensorflow: @tensorflow\/tfjs-node-gpu not installed;/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(lines[0]).toBe(`[@sparse/tensor] tfjs backend 'wasm': ${choice.reason}`);
    // The chosen backend is ready to compute.
    expect(Array.from(tf.add(tf.scalar(1), tf.scalar(2)).dataSync())).toEqual([3]);
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
    expect((await selectBackend({ log: () => {} })).name).toBe('wasm');
  });

  it('throws BackendError listing what was tried when no preferred backend works', async () => {
    const { lines, log } = collect();
    const attempt = selectBackend({ prefer: ['webgpu-nope', 'tensorflow'], log });
    await expect(attempt).rejects.toThrow(BackendError);
    const err = (await attempt.catch((e: unknown) => e)) as BackendError & { tried: BackendAttempt[] };
    expect(BackendError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/^selectBackend: no usable tfjs backend in preferred order \[webgpu-nope, tensorflow\]; tried webgpu-nope: no tfjs backend named 'webgpu-nope' is registered \(registered: .*cpu.*\)/);
    expect(err.message).toContain('tensorflow: @tensorflow/tfjs-node not installed');
    expect(err.tried.map((t) => t.ok)).toEqual([false, false, false]);
    expect(lines).toEqual([]);
    vi.stubEnv('SPARSE_BACKEND', 'nope');
    await expect(selectBackend({ log })).rejects.toThrow(/in SPARSE_BACKEND=nope; tried nope: no tfjs backend named 'nope'/);
  });
});

describe('selectBackend decisions (with a stand-in loader)', () => {
  it('takes tensorflow through tfjs-node-gpu when TensorFlow reports a GPU', async () => {
    const loaded: string[] = [];
    const choice = await selectBackend({
      log: () => {},
      load: async (s) => {
        loaded.push(s);
        if (s === '@tensorflow/tfjs-node-gpu') registerFake('tensorflow', true);
        else throw notInstalled(s);
      },
    });
    expect(choice.name).toBe('tensorflow');
    expect(choice.tried).toEqual([{ name: 'tensorflow', ok: true, reason: '@tensorflow/tfjs-node-gpu on a CUDA GPU' }]);
    expect(loaded).toEqual(['@tensorflow/tfjs-node-gpu']);
  });

  it('passes over tfjs-node-gpu without a GPU and takes tfjs-node', async () => {
    const choice = await selectBackend({
      log: () => {},
      load: async (s) => {
        if (s === '@tensorflow/tfjs-node-gpu') registerFake('tensorflow', false);
        else if (s !== '@tensorflow/tfjs-node') throw notInstalled(s);
      },
    });
    expect(choice.name).toBe('tensorflow');
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu installed but TensorFlow sees no GPU' },
      { name: 'tensorflow', ok: true, reason: '@tensorflow/tfjs-node (libtensorflow on the CPU)' },
    ]);
  });

  it('reports a package that is present but broken differently from one that is absent', async () => {
    const choice = await selectBackend({
      log: () => {},
      load: async (s) => {
        if (s === '@tensorflow/tfjs-node') throw new Error('libtensorflow.so.2: cannot open shared object file\n    at Module._extensions');
        if (s === '@sparse/kernels-cpu/tfjs') registerFake('sparse-cpu');
        else throw notInstalled(s);
      },
    });
    expect(choice.name).toBe('sparse-cpu');
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node-gpu not installed' },
      { name: 'tensorflow', ok: false, reason: '@tensorflow/tfjs-node failed to load: libtensorflow.so.2: cannot open shared object file' },
      { name: 'sparse-cpu', ok: true, reason: 'native kernels from @sparse/kernels-cpu' },
    ]);
  });

  it('uses a sparse-cpu backend that is already registered without importing anything for it', async () => {
    registerFake('sparse-cpu');
    const loaded: string[] = [];
    const choice = await selectBackend({
      prefer: ['sparse-cpu'],
      log: () => {},
      load: async (s) => void loaded.push(s),
    });
    expect(choice.name).toBe('sparse-cpu');
    expect(loaded).toEqual([]);
  });

  it('says so when a package loads but registers no backend, and a failing backend init falls through', async () => {
    tf.registerBackend('broken-init', () => {
      throw new Error('no device');
    });
    fakeBackends.push('broken-init');
    const quiet = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const choice = await selectBackend({
      prefer: ['sparse-cpu', 'broken-init', 'cpu'],
      log: () => {},
      load: async () => {},
    });
    quiet.mockRestore();
    expect(choice.name).toBe('cpu');
    expect(choice.tried.slice(0, 2)).toEqual([
      { name: 'sparse-cpu', ok: false, reason: "@sparse/kernels-cpu/tfjs loaded but registered no 'sparse-cpu' backend" },
      { name: 'broken-init', ok: false, reason: "backend 'broken-init' failed to initialize" },
    ]);
  });
});
