import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cubinArchs, fatbinEntries } from '../scripts/fatbin-archs.mjs';
import { loadCudaKernels } from './native.js';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const script = path.join(pkgDir, 'scripts', 'build-native.mjs');
const addon = path.join(pkgDir, 'build', 'Release', 'sparse_cuda.node');
const gpuTest = path.join(pkgDir, 'build', 'gpu_test');

function nvccFound(): string | null {
  const candidates = process.env.SPARSE_NVCC ? [process.env.SPARSE_NVCC] : ['nvcc', '/usr/local/cuda/bin/nvcc'];
  for (const c of candidates) if (spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  return null;
}

const nvcc = nvccFound();
// CI on a machine with nvcc must build; SPARSE_REQUIRE_CUDA_BUILD=1 also forces these tests on elsewhere.
const required = process.env.SPARSE_REQUIRE_CUDA_BUILD === '1';

describe('build script without nvcc', () => {
  it('skips with one line and exits 0 (exit 1 with SPARSE_REQUIRE_CUDA_BUILD=1), leaving the build alone', () => {
    const env = { ...process.env, SPARSE_NVCC: '/nonexistent/nvcc', SPARSE_REQUIRE_CUDA_BUILD: '' };
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/@sparse\/kernels-cuda: CUDA build skipped \(nvcc not found/);
    const strict = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...env, SPARSE_REQUIRE_CUDA_BUILD: '1' } });
    expect(strict.status).toBe(1);
  });
});

describe.skipIf(!nvcc && !required)(`CUDA build (${nvcc ? `nvcc: ${nvcc}` : 'skipped: nvcc not found'})`, () => {
  beforeAll(() => {
    // Up to date in a second after `pnpm build`; a full build takes a minute or two on two cores.
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, SPARSE_REQUIRE_CUDA_BUILD: '1' }, timeout: 900_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 900_000);

  it('the addon and the test program carry cubins for sm_80 and sm_90 in every fat binary, and compute_90 PTX', () => {
    for (const file of [addon, gpuTest]) {
      expect(existsSync(file), file).toBe(true);
      const archs = cubinArchs(file);
      expect(archs).toContain(80);
      expect(archs).toContain(90);
      // One fat binary per kernel source carries compute_90 PTX too (cudart's own has cubins only).
      const withPtx = fatbinEntries(file).filter((entries) => entries.some((e) => e.kind === 'ptx' && e.sm === 90));
      expect(withPtx.length).toBeGreaterThanOrEqual(4);
    }
  });

  it('fatbinEntries finds nothing in a file without GPU code', () => {
    expect(fatbinEntries(script)).toEqual([]);
    expect(cubinArchs(script)).toEqual([]);
  });

  it('gpu_test: exit 77 and "no CUDA device: <reason>" without a device, exit 0 (all tests pass) with one', () => {
    const r = spawnSync(gpuTest, [], { encoding: 'utf8', timeout: 600_000 });
    if (loadCudaKernels().available) {
      expect(r.status, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/tests, 0 failed/);
    } else {
      expect(r.status).toBe(77);
      expect(r.stdout).toMatch(/^no CUDA device: \S/);
    }
  });

  const gpu = loadCudaKernels().available;
  it.skipIf(gpu)(`cusparselt_bench: exit 77 and "no CUDA device: <reason>" without a device${gpu ? ' (skipped: a GPU is here; gpu-check.sh runs the comparison)' : ''}`, () => {
    const r = spawnSync(path.join(pkgDir, 'build', 'cusparselt_bench'), [], { encoding: 'utf8' });
    expect(r.status).toBe(77);
    expect(r.stdout).toMatch(/^no CUDA device: \S/);
  });

  it('gpu_test rejects unknown flags with exit 64', () => {
    const r = spawnSync(gpuTest, ['--nonsense'], { encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/usage: gpu_test/);
  });
});
