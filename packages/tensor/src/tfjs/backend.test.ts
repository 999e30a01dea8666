import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendError } from '../errors.js';
import { tryBackends, type BackendAttempt, type BackendCandidate } from '../tfjs.js';

// tryBackends with real dynamic imports of what this package has (tfjs-backend-wasm and -cpu are
// devDependencies) and stand-in loaders for the rest. The project's order and its candidates are
// tested where selectBackend lives.

const fakeBackends: string[] = [];
afterEach(() => {
  for (const name of fakeBackends.splice(0)) tf.removeBackend(name);
});

/** A stand-in for what a backend package registers: a working backend, optionally saying whether it uses a GPU. */
function registerFake(name: string, gpu?: boolean): void {
  tf.registerBackend(name, () => Object.assign(new MathBackendCPU(), gpu === undefined ? {} : { isUsingGpuDevice: gpu }));
  fakeBackends.push(name);
}

function notInstalled(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}' imported from /app/index.js`), { code: 'ERR_MODULE_NOT_FOUND' });
}

const importing = (specifier: string): Pick<BackendCandidate, 'load' | 'from'> => ({
  from: specifier,
  load: () => import(/* @vite-ignore */ specifier),
});

const WASM: BackendCandidate = { name: 'wasm', reason: 'the wasm backend', ...importing('@tensorflow/tfjs-backend-wasm') };
const CPU: BackendCandidate = { name: 'cpu', reason: 'plain JavaScript', ...importing('@tensorflow/tfjs-backend-cpu') };

describe('tryBackends', () => {
  it('activates the first candidate that works and explains the choice in one line', async () => {
    const choice = await tryBackends([{ name: 'fast', reason: 'the fast one', ...importing('@nowhere/fast-backend') }, WASM, CPU], { source: 'test order [fast, wasm, cpu]' });
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.tried).toEqual<BackendAttempt[]>([
      { name: 'fast', ok: false, reason: '@nowhere/fast-backend not installed' },
      { name: 'wasm', ok: true, reason: 'the wasm backend' },
    ]);
    expect(choice.reason).toBe('the wasm backend; first that works in test order [fast, wasm, cpu] (before it: fast: @nowhere/fast-backend not installed)');
    // The chosen backend is ready to compute.
    expect(Array.from(tf.add(tf.scalar(1), tf.scalar(2)).dataSync())).toEqual([3]);
    const first = await tryBackends([CPU], { source: 'cpu only' });
    expect(first).toEqual({ name: 'cpu', reason: 'plain JavaScript; first that works in cpu only', tried: [{ name: 'cpu', ok: true, reason: 'plain JavaScript' }] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('lists a skipped candidate with its reason without loading it', async () => {
    const load = vi.fn(async () => {});
    const choice = await tryBackends([{ ...WASM, load, skip: 'skipped for this test' }, CPU], { source: 's' });
    expect(load).not.toHaveBeenCalled();
    expect(choice.tried).toEqual([
      { name: 'wasm', ok: false, reason: 'skipped for this test' },
      { name: 'cpu', ok: true, reason: 'plain JavaScript' },
    ]);
  });

  it('uses a registered backend without loading it, unless alwaysLoad', async () => {
    registerFake('fake');
    const load = vi.fn(async () => {});
    expect((await tryBackends([{ name: 'fake', reason: 'r', load }], { source: 's' })).name).toBe('fake');
    expect(load).not.toHaveBeenCalled();
    expect((await tryBackends([{ name: 'fake', reason: 'r', load, alwaysLoad: true }], { source: 's' })).name).toBe('fake');
    expect(load).toHaveBeenCalledOnce();
  });

  it('passes over an active backend that accept rejects', async () => {
    const choice = await tryBackends(
      [
        { name: 'tensorflow', reason: 'on a GPU', from: 'gpu-pkg', load: async () => registerFake('tensorflow', false), accept: (b) => ((b as unknown as { isUsingGpuDevice: boolean }).isUsingGpuDevice ? undefined : 'sees no GPU') },
        { name: 'tensorflow', reason: 'on the CPU', alwaysLoad: true, load: async () => {} },
      ],
      { source: 's' },
    );
    expect(choice.tried).toEqual([
      { name: 'tensorflow', ok: false, reason: 'sees no GPU' },
      { name: 'tensorflow', ok: true, reason: 'on the CPU' },
    ]);
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('tells an absent package, a broken one, a loader without a specifier, and one that registers nothing apart', async () => {
    const quiet = vi.spyOn(console, 'warn').mockImplementation(() => {});
    tf.registerBackend('broken-init', () => {
      throw new Error('no device');
    });
    fakeBackends.push('broken-init');
    const choice = await tryBackends(
      [
        { name: 'a', reason: 'r', from: '@scope/a/sub', load: () => Promise.reject(notInstalled('@scope/a')) },
        // A missing dependency of the package is a broken install, not an absent package.
        { name: 'b', reason: 'r', from: 'b', load: () => Promise.reject(new Error('libtensorflow.so.2: cannot open shared object file\n    at Module._extensions')) },
        { name: 'c', reason: 'r', from: 'c-pkg', load: () => Promise.reject(notInstalled('c-dep')) },
        { name: 'd', reason: 'r', load: () => Promise.reject(new Error('native addon unavailable (no compiler)\nstack')) },
        { name: 'e', reason: 'r', from: 'e-pkg', load: async () => {} },
        { name: 'f', reason: 'r', load: async () => {} },
        { name: 'broken-init', reason: 'r' },
        CPU,
      ],
      { source: 's' },
    );
    quiet.mockRestore();
    expect(choice.name).toBe('cpu');
    expect(choice.tried.slice(0, -1)).toEqual([
      { name: 'a', ok: false, reason: '@scope/a not installed' },
      { name: 'b', ok: false, reason: 'b failed to load: libtensorflow.so.2: cannot open shared object file' },
      { name: 'c', ok: false, reason: "c-pkg failed to load: Cannot find package 'c-dep' imported from /app/index.js" },
      { name: 'd', ok: false, reason: 'native addon unavailable (no compiler)' },
      { name: 'e', ok: false, reason: "e-pkg loaded but registered no 'e' backend" },
      { name: 'f', ok: false, reason: "its loader loaded but registered no 'f' backend" },
      { name: 'broken-init', ok: false, reason: "backend 'broken-init' failed to initialize" },
    ]);
  });

  it('throws BackendError listing what was tried when nothing works', async () => {
    const attempt = tryBackends([{ name: 'webgpu-nope', reason: 'r' }, { ...WASM, skip: 'not today' }], { source: 'preferred order [webgpu-nope, wasm]', caller: 'pick' });
    await expect(attempt).rejects.toThrow(BackendError);
    const err = (await attempt.catch((e: unknown) => e)) as BackendError & { tried: BackendAttempt[] };
    expect(BackendError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/^pick: no usable tfjs backend in preferred order \[webgpu-nope, wasm\]; tried webgpu-nope: no tfjs backend named 'webgpu-nope' is registered \(registered: .*cpu.*\); wasm: not today$/);
    expect(err.tried).toEqual([
      { name: 'webgpu-nope', ok: false, reason: expect.stringContaining('no tfjs backend named') },
      { name: 'wasm', ok: false, reason: 'not today' },
    ]);
    await expect(tryBackends([], { source: 'nothing' })).rejects.toThrow(/^tryBackends: no usable tfjs backend in nothing; tried $/);
  });
});
