import { registerCPUKernels } from '@sparse/kernels-cpu';
import { BackendError, kernelBackend, listKernels } from '@sparse/tensor';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceBuffer, compress24, defaultAddonPath, loadCudaKernels, probeCuda, registerCUDAKernels } from './index.js';

const KERNELS = ['gemm', 'spmmCSR', 'spmmNM', 'spmmBlock', 'denseAttention', 'blockSparseAttention', 'maskedAdam'] as const;

function snapshot() {
  return JSON.stringify(listKernels());
}

describe('loader fallback', () => {
  afterEach(() => {
    delete process.env.SPARSE_DISABLE_CUDA;
    delete process.env.SPARSE_CUDA_ADDON;
    loadCudaKernels({ reload: true });
  });

  it('a missing addon gives available: false with the path and how to build it', () => {
    const status = probeCuda('/nonexistent/sparse_cuda.node');
    expect(status.available).toBe(false);
    if (!status.available) expect(status.reason).toMatch(/the CUDA addon is not built \(\/nonexistent\/sparse_cuda\.node is missing; .*build-native\.mjs\)/);
  });

  it('a file that is not the addon gives available: false (does not load), never a throw', () => {
    for (const file of ['../LICENSE', '../package.json']) {
      const status = probeCuda(new URL(file, import.meta.url).pathname);
      expect(status.available).toBe(false);
      if (!status.available) expect(status.reason).toMatch(/^the CUDA addon does not load: /);
    }
  });

  const here = loadCudaKernels({ reload: true });
  it.skipIf(here.available)(
    `without a device (or driver) the built addon reports "no CUDA device: <cudart error>"${here.available ? ' (skipped: this machine has a GPU; the GPU suites run instead)' : ''}`,
    () => {
      const status = loadCudaKernels({ reload: true });
      expect(status.available).toBe(false);
      if (status.available) return;
      if (existsSync(defaultAddonPath())) expect(status.reason).toMatch(/^(no CUDA device: |.* is sm_\d+; the kernels need sm_80)/);
      else expect(status.reason).toMatch(/not built/);
    },
  );

  it.runIf(here.available)('with a device, loadCudaKernels reports it (sm_80 or newer)', () => {
    const status = loadCudaKernels({ reload: true });
    expect(status.available).toBe(true);
    if (status.available) expect(status.device.sm).toBeGreaterThanOrEqual(80);
  });

  it('registerCUDAKernels without CUDA registers nothing: the registry is unchanged and says why', () => {
    process.env.SPARSE_DISABLE_CUDA = '1';
    loadCudaKernels({ reload: true });
    const before = snapshot();
    const result = registerCUDAKernels();
    expect(result.available).toBe(false);
    expect(result.kernels).toEqual([]);
    if (!result.available) expect(result.reason).toBe('disabled by SPARSE_DISABLE_CUDA=1');
    expect(snapshot()).toBe(before);
    result.unregister();
    expect(snapshot()).toBe(before);
  });

  it('the CPU kernels stay registered and in charge when CUDA is unavailable', () => {
    const cpu = registerCPUKernels();
    try {
      const backends = Object.fromEntries(KERNELS.map((k) => [k, kernelBackend(k)]));
      if (cpu.native) expect(backends.gemm).toBe('sparse-cpu');
      else expect(backends.gemm).toBe('reference');
      process.env.SPARSE_CUDA_ADDON = '/nonexistent/sparse_cuda.node';
      loadCudaKernels({ reload: true });
      const before = snapshot();
      const result = registerCUDAKernels();
      expect(result.available).toBe(false);
      expect(Object.fromEntries(KERNELS.map((k) => [k, kernelBackend(k)]))).toEqual(backends);
      expect(snapshot()).toBe(before);
    } finally {
      cpu.unregister();
    }
  });

  it('the GPU entry points throw BackendError naming the reason', () => {
    process.env.SPARSE_DISABLE_CUDA = '1';
    loadCudaKernels({ reload: true });
    expect(() => DeviceBuffer.alloc('float32', 4)).toThrow(BackendError);
    expect(() => DeviceBuffer.alloc('float32', 4)).toThrow(/DeviceBuffer.alloc: CUDA is not available \(disabled by SPARSE_DISABLE_CUDA=1\)/);
    expect(() => compress24(new Uint16Array(4), 1, 4, 'bfloat16')).toThrow(BackendError);
  });
});
