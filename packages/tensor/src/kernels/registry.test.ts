import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { ArgumentError, KernelError } from '../errors.js';
import { gemmReference } from './reference/gemm.js';
import { spmmBlockReference } from './reference/spmm-block.js';
import { spmmCSRReference } from './reference/spmm-csr.js';
import { spmmNMReference } from './reference/spmm-nm.js';
import {
  REFERENCE_BACKEND,
  getKernel,
  hasKernel,
  kernelBackend,
  listKernels,
  registerKernel,
  registerReferenceKernels,
  unregisterKernel,
} from './registry.js';
import type { GemmArgs, GemmKernel, SpmmNMKernel } from './types.js';

// A kernel name added by module augmentation, the way @sparse/kernels-cpu adds its own.
declare module './registry.js' {
  interface KernelSignatures {
    registryTestScale: (x: Float32Array, factor: number) => void;
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
  registerReferenceKernels();
});

function fakeGemm(tag: string): GemmKernel & { tag: string } {
  return Object.assign((args: GemmArgs) => gemmReference(args), { tag });
}

describe('kernel registry', () => {
  it('has every reference kernel registered under backend "reference" at priority 0 without an explicit call', () => {
    const reference = listKernels().filter((k) => k.backend === REFERENCE_BACKEND);
    expect(reference).toEqual([
      { name: 'activationF32', backend: 'reference', priority: 0 },
      { name: 'attentionBitmapKV', backend: 'reference', priority: 0 },
      { name: 'blockSparseAttention', backend: 'reference', priority: 0 },
      { name: 'blockSparseAttentionBackward', backend: 'reference', priority: 0 },
      { name: 'choleskyF64', backend: 'reference', priority: 0 },
      { name: 'columnMomentsF32', backend: 'reference', priority: 0 },
      { name: 'denseAttention', backend: 'reference', priority: 0 },
      { name: 'gemm', backend: 'reference', priority: 0 },
      { name: 'gemvSparseInput', backend: 'reference', priority: 0 },
      { name: 'linearCSR', backend: 'reference', priority: 0 },
      { name: 'linearCSRGradInput', backend: 'reference', priority: 0 },
      { name: 'maskedAdam', backend: 'reference', priority: 0 },
      { name: 'maskedSGD', backend: 'reference', priority: 0 },
      { name: 'rowTopKScaledAbs', backend: 'reference', priority: 0 },
      { name: 'sddmmCSR', backend: 'reference', priority: 0 },
      { name: 'spmmBlock', backend: 'reference', priority: 0 },
      { name: 'spmmCSR', backend: 'reference', priority: 0 },
      { name: 'spmmNM', backend: 'reference', priority: 0 },
      { name: 'triangularInverseF64', backend: 'reference', priority: 0 },
    ]);
    expect(getKernel('gemm')).toBe(gemmReference);
    expect(getKernel('spmmCSR')).toBe(spmmCSRReference);
    expect(getKernel('spmmNM')).toBe(spmmNMReference);
    expect(getKernel('spmmBlock')).toBe(spmmBlockReference);
    expect(kernelBackend('gemm')).toBe('reference');
  });

  it('returns the highest-priority implementation, or the named backend', () => {
    const fast = fakeGemm('fast');
    const medium = fakeGemm('medium');
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-fast', priority: 10, fn: fast }));
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-medium', priority: 5, fn: medium }));
    expect(getKernel('gemm')).toBe(fast);
    expect(kernelBackend('gemm')).toBe('test-fast');
    expect(getKernel('gemm', 'test-medium')).toBe(medium);
    expect(getKernel('gemm', 'reference')).toBe(gemmReference);
    expect(listKernels('gemm').map((k) => k.backend)).toEqual(['test-fast', 'test-medium', 'reference']);

    expect(unregisterKernel('gemm', 'test-fast')).toBe(true);
    expect(unregisterKernel('gemm', 'test-fast')).toBe(false);
    expect(getKernel('gemm')).toBe(medium);
  });

  it('breaks priority ties by registration order, latest first, and never loses to a lazy reference registration', () => {
    const tied = fakeGemm('tied');
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-tied', priority: 0, fn: tied }));
    expect(getKernel('gemm')).toBe(tied);
    const below = fakeGemm('below');
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-below', priority: -1, fn: below }));
    expect(getKernel('gemm')).toBe(tied);
  });

  it('replaces a backend on re-registration; the older unregister handle then leaves the newer one alone', () => {
    const first = fakeGemm('first');
    const second = fakeGemm('second');
    const dropFirst = registerKernel({ name: 'gemm', backend: 'test-swap', priority: 3, fn: first });
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-swap', priority: 3, fn: second }));
    expect(getKernel('gemm', 'test-swap')).toBe(second);
    dropFirst();
    expect(getKernel('gemm', 'test-swap')).toBe(second);
    expect(listKernels('gemm').filter((k) => k.backend === 'test-swap')).toHaveLength(1);
  });

  it('throws KernelError naming what is registered', () => {
    expect(() => getKernel('gemm', 'cuda')).toThrow(KernelError);
    expect(() => getKernel('gemm', 'cuda')).toThrow(/no kernel "gemm" for backend "cuda"; registered backends for gemm: reference/);
    expect(() => getKernel('noSuchKernel' as 'gemm')).toThrow(/no kernel "noSuchKernel"; registered kernels: activationF32, attentionBitmapKV, blockSparseAttention, blockSparseAttentionBackward, choleskyF64, columnMomentsF32, denseAttention, gemm, gemvSparseInput, linearCSR, linearCSRGradInput, maskedAdam, maskedSGD, rowTopKScaledAbs, sddmmCSR, spmmBlock, spmmCSR, spmmNM, triangularInverseF64/);
    expect(hasKernel('gemm')).toBe(true);
    expect(hasKernel('gemm', 'cuda')).toBe(false);
  });

  it('keeps a removed reference kernel removed until registerReferenceKernels() is called', () => {
    expect(unregisterKernel('spmmNM', 'reference')).toBe(true);
    expect(hasKernel('spmmNM')).toBe(false);
    registerReferenceKernels();
    expect(getKernel('spmmNM')).toBe(spmmNMReference);
  });

  it('validates registrations', () => {
    expect(() => registerKernel({ name: 'gemm', backend: '', fn: gemmReference })).toThrow(ArgumentError);
    expect(() => registerKernel({ name: 'gemm', backend: 'x', priority: NaN, fn: gemmReference })).toThrow(/priority must be a finite number/);
    expect(() => registerKernel({ name: 'gemm', backend: 'x', fn: 42 as unknown as GemmKernel })).toThrow(/fn must be a function/);
  });

  it('types kernels by name, including names added by module augmentation', () => {
    expectTypeOf(getKernel('gemm')).toEqualTypeOf<GemmKernel>();
    expectTypeOf(getKernel('spmmNM')).toEqualTypeOf<SpmmNMKernel>();
    const seen: number[] = [];
    cleanups.push(
      registerKernel({
        name: 'registryTestScale',
        backend: 'test',
        fn: (x, factor) => {
          for (let i = 0; i < x.length; i++) x[i]! *= factor;
          seen.push(factor);
        },
      }),
    );
    const x = Float32Array.from([1, 2]);
    getKernel('registryTestScale')(x, 3);
    expect([...x]).toEqual([3, 6]);
    expect(seen).toEqual([3]);
  });
});

describe('kernel registry shared across package copies', () => {
  it('lives on a Symbol.for global', () => {
    const store = (globalThis as Record<symbol, unknown>)[Symbol.for('@sparse/tensor.kernels')] as { version: number; kernels: Map<string, unknown> };
    expect(store.version).toBe(1);
    expect([...store.kernels.keys()]).toEqual(expect.arrayContaining(['gemm', 'spmmCSR', 'spmmNM', 'spmmBlock']));
  });

  it('a second, freshly evaluated copy of the module sees and feeds the same registry', async () => {
    vi.resetModules();
    const copy = (await import('./registry.js')) as typeof import('./registry.js');
    // A fresh evaluation: different function objects, same store.
    expect(copy.getKernel).not.toBe(getKernel);
    const fromCopy = fakeGemm('copy');
    cleanups.push(copy.registerKernel({ name: 'gemm', backend: 'test-copy', priority: 50, fn: fromCopy }));
    expect(getKernel('gemm')).toBe(fromCopy);
    // The copy found the reference kernels already registered and did not add a second set.
    expect(copy.listKernels('gemm').filter((k) => k.backend === 'reference')).toHaveLength(1);
    expect(copy.getKernel('gemm', 'reference')).toBe(gemmReference);
    cleanups.push(registerKernel({ name: 'gemm', backend: 'test-original', priority: 60, fn: fakeGemm('original') }));
    expect(copy.kernelBackend('gemm')).toBe('test-original');
  });
});
