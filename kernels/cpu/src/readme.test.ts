import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isNativeAvailable } from './native.js';

// The README examples run against the built dist, as a user would import it.
describe('README examples', () => {
  it('run: the gemm product on the native backend when the addon is built, a sparse layer step, and a matMul on sparse-cpu', () => {
    const [registry, sparseLayer, tfjs] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(registry!.stdout).toContain('C = 58 64 139 154');
    expect(registry!.stdout).toContain(isNativeAvailable() ? 'gemm runs on: sparse-cpu' : 'gemm runs on: reference');
    expect(sparseLayer!.stdout).toContain(`Y = 7 12 0 19 24 0; dX = 1 0 2 0 0 0 0 3; dW at the mask = 1 3 8 (${isNativeAvailable() ? 'sparse-cpu' : 'reference'})`);
    expect(tfjs!.stdout).toContain(isNativeAvailable() ? 'sparse-cpu: 58 64 139 154' : 'sparse-cpu unavailable');
  });
});
