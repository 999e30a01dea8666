// Runs the kernel tests again under every other kernel family this machine can run (SPARSE_CPU_ISA),
// after the main run has tested the best one: avx512-emu (the 16-wide kernels compiled for AVX2) on any
// AVX2 machine, avx2 where the best is avx512, and avx512 where the hardware has it. A family the
// machine cannot run is reported as skipped with the reason; none passes by falling back to another
// (native.test.ts checks the family that ran against SPARSE_EXPECT_ISA).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const addonPath = path.join(root, 'build', 'Release', 'sparse_cpu.node');
// The files whose kernels have a 16-wide form (gemm, the sparse products, gemvSparseInput, the optimizers,
// the float64 factorizations, the attention backward and bitmap-KV row kernels, the elementwise spans and
// row reductions, and the fused softmax built on those spans).
const files = [
  'src/gemm.test.ts',
  'src/spmm.test.ts',
  'src/ops.test.ts',
  'src/native.test.ts',
  'src/linalg-f64.test.ts',
  'src/attention.test.ts',
  'src/tfjs-elementwise.test.ts',
  'src/tfjs-unary.test.ts',
  'src/tfjs-fused.test.ts',
];

if (!existsSync(addonPath)) {
  if (process.env.SPARSE_SKIP_NATIVE_BUILD === '1') {
    console.log('test-isas: skipped (SPARSE_SKIP_NATIVE_BUILD=1, no addon)');
    process.exit(0);
  }
  console.error(`test-isas: ${addonPath} does not exist; build it with node scripts/build-native.mjs`);
  process.exit(1);
}
const info = createRequire(import.meta.url)(addonPath).info();
const built = new Set(info.cpu.built.split(','));
const can = {
  avx512: built.has('avx512') && info.cpu.avx512 ? '' : built.has('avx512') ? 'this CPU or OS lacks AVX-512 F/BW/VL' : 'not built on this platform',
  'avx512-emu': built.has('avx512-emu') && info.cpu.avx2 ? '' : 'needs AVX2+FMA and an x86-64 build',
  avx2: built.has('avx2') && info.cpu.avx2 ? '' : 'this CPU lacks AVX2+FMA',
};
console.log(`test-isas: the main run used ${info.isa}; CPU avx512=${info.cpu.avx512} avx2=${info.cpu.avx2}`);
let failed = false;
for (const isa of ['avx512', 'avx512-emu', 'avx2']) {
  if (isa === info.isa) continue;
  if (can[isa]) {
    console.log(`test-isas: ${isa} skipped (${can[isa]})`);
    continue;
  }
  console.log(`test-isas: ${isa}: ${files.join(' ')}`);
  const r = spawnSync('npx', ['vitest', 'run', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SPARSE_CPU_ISA: isa, SPARSE_EXPECT_ISA: isa },
  });
  if (r.status !== 0) {
    console.error(`test-isas: ${isa} failed`);
    failed = true;
  }
}
// Where the avx512 family runs the AVX2 N:M strips (CPUs that split 512-bit operations), its own
// 16-wide strips are tested too, forced with SPARSE_NM_WIDE=1.
if (!can.avx512 && info.cpu.split512) {
  const wide = ['src/spmm.test.ts', 'src/native.test.ts'];
  console.log(`test-isas: avx512 with SPARSE_NM_WIDE=1 (this CPU runs the AVX2 N:M strips by default): ${wide.join(' ')}`);
  const r = spawnSync('npx', ['vitest', 'run', ...wide], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SPARSE_CPU_ISA: 'avx512', SPARSE_EXPECT_ISA: 'avx512', SPARSE_NM_WIDE: '1' },
  });
  if (r.status !== 0) {
    console.error('test-isas: avx512 with SPARSE_NM_WIDE=1 failed');
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
