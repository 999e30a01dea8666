// When the executable's resolution hooks retry an import from the trainer (see peer-hooks.ts), and
// that they do retry it through node:module's hook chain.
import { describe, expect, it } from 'vitest';
import { initialize, packageOf, resolve, retryFrom, type PeerHookData } from './peer-hooks.js';

const hook: PeerHookData = {
  trainerURL: 'file:///g/lib/node_modules/@sparse/trainer/dist/bin.js',
  packages: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', 'zod', 'yaml'],
};
const lora = 'file:///g/lib/node_modules/@sparse/lora-variants/dist/tfjs.js';

describe('packageOf', () => {
  it('names the package of bare specifiers only', () => {
    expect(packageOf('@tensorflow/tfjs-core')).toBe('@tensorflow/tfjs-core');
    expect(packageOf('@tensorflow/tfjs-core/dist/ops/ops')).toBe('@tensorflow/tfjs-core');
    expect(packageOf('zod')).toBe('zod');
    expect(packageOf('zod/v4')).toBe('zod');
    for (const s of ['./x.js', '../x.js', '/abs/x.js', 'node:fs', 'file:///x.js', 'data:text/javascript,1', '#internal', '@scope', '']) expect(packageOf(s)).toBeUndefined();
  });
});

describe('retryFrom', () => {
  it('retries a package the trainer depends on, imported by a sibling @sparse package, from the trainer', () => {
    expect(retryFrom('@tensorflow/tfjs-core', lora, hook)).toBe(hook.trainerURL);
    expect(retryFrom('zod', 'file:///g/lib/node_modules/@sparse/masks/dist/schemas.js', hook)).toBe(hook.trainerURL);
  });
  it('keeps the failure otherwise', () => {
    // not a dependency of the trainer (an optional backend detected at run time)
    expect(retryFrom('@tensorflow/tfjs-node', lora, hook)).toBeUndefined();
    // imported by the trainer itself, or by a package outside @sparse
    expect(retryFrom('zod', 'file:///g/lib/node_modules/@sparse/trainer/dist/chunk-1.js', hook)).toBeUndefined();
    expect(retryFrom('zod', 'file:///g/lib/node_modules/other/index.js', hook)).toBeUndefined();
    // relative and builtin specifiers, and no parent
    expect(retryFrom('./chunk.js', lora, hook)).toBeUndefined();
    expect(retryFrom('node:fs', lora, hook)).toBeUndefined();
    expect(retryFrom('zod', undefined, hook)).toBeUndefined();
  });
});

describe('resolve', () => {
  const notFound = () => Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' });

  it('retries from the trainer after ERR_MODULE_NOT_FOUND, and passes other results through', async () => {
    initialize(hook);
    const calls: (string | undefined)[] = [];
    const next = async (specifier: string, context?: { parentURL?: string }) => {
      calls.push(context?.parentURL);
      if (context?.parentURL === lora) throw notFound();
      return { url: `file:///g/lib/node_modules/@sparse/trainer/node_modules/${specifier}/index.js` };
    };
    await expect(resolve('@tensorflow/tfjs-core', { parentURL: lora }, next)).resolves.toEqual({
      url: 'file:///g/lib/node_modules/@sparse/trainer/node_modules/@tensorflow/tfjs-core/index.js',
    });
    expect(calls).toEqual([lora, hook.trainerURL]);
  });

  it('rethrows the original error when the retry fails too, or when no retry applies', async () => {
    initialize(hook);
    const original = notFound();
    const failing = async () => {
      throw original;
    };
    await expect(resolve('@tensorflow/tfjs-core', { parentURL: lora }, failing)).rejects.toBe(original);
    await expect(resolve('@tensorflow/tfjs-node', { parentURL: lora }, failing)).rejects.toBe(original);
    const other = new Error('syntax');
    await expect(resolve('zod', { parentURL: lora }, async () => Promise.reject(other))).rejects.toBe(other);
  });
});
