// The GPU suites (src/gpu-checks.ts). They run only where a CUDA device is found, and are forced on
// (failing when there is none) by SPARSE_REQUIRE_CUDA=1.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { gpuChecks } from './gpu-checks.js';
import { loadCudaKernels, registerCUDAKernels } from './index.js';

const status = loadCudaKernels();
const required = process.env.SPARSE_REQUIRE_CUDA === '1';
const title = status.available
  ? `GPU kernels on ${status.device.name} (sm_${status.device.sm})`
  : `GPU kernels (${required ? 'required by SPARSE_REQUIRE_CUDA=1, but' : 'skipped:'} ${status.reason})`;

describe.skipIf(!status.available && !required)(title, () => {
  let unregister = () => {};
  beforeAll(() => {
    unregister = registerCUDAKernels().unregister;
  });
  afterAll(() => unregister());
  for (const check of gpuChecks()) it(check.name, check.run);
});
