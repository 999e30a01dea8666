import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isNativeAvailable } from './native.js';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the product, on the native backend when the addon is built', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('C = 58 64 139 154');
    expect(result!.stdout).toContain(isNativeAvailable() ? 'gemm runs on: native-cpu' : 'gemm runs on: reference');
  });
});
