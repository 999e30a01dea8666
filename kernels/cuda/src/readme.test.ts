import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCudaKernels } from './native.js';

// The README examples run against the built dist, as a user would import them.
describe('README examples', () => {
  it('run: the registry gemm (on sparse-cuda with a GPU, else the reference, saying why) and the tensor-core layout', () => {
    const [registry, layout] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    const status = loadCudaKernels();
    expect(registry!.stdout).toContain('C = 58 64 139 154');
    if (status.available) {
      expect(registry!.stdout).toContain(`CUDA kernels on ${status.device.name}`);
      expect(registry!.stdout).toContain('gemm runs on: sparse-cuda');
    } else {
      expect(registry!.stdout).toContain(`CUDA unavailable: ${status.reason}`);
      expect(registry!.stdout).toContain('gemm runs on: reference');
    }
    expect(layout!.stdout).toContain('word of lane 0: 0x4444444d');
    expect(layout!.stdout).toContain('back to N:M: 1.5 -2');
  });
});
