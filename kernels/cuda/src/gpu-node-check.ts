// Standalone runner of the GPU checks (no vitest), bundled with its dependencies into
// build/gpu-node-check.mjs by scripts/bundle-gpu-check.mjs so a GPU machine without node_modules can
// run it: node build/gpu-node-check.mjs [results.json]. Exits 1 when CUDA is unavailable or a check
// fails.
import { writeFileSync } from 'node:fs';
import { gpuChecks } from './gpu-checks.js';
import { loadCudaKernels, registerCUDAKernels } from './index.js';

const out = process.argv[2];
const status = loadCudaKernels();
const registered = registerCUDAKernels();
const results: Array<{ name: string; pass: boolean; ms: number; error?: string }> = [];
for (const check of gpuChecks()) {
  const t0 = performance.now();
  try {
    check.run();
    results.push({ name: check.name, pass: true, ms: performance.now() - t0 });
  } catch (err) {
    results.push({ name: check.name, pass: false, ms: performance.now() - t0, error: err instanceof Error ? err.message : String(err) });
  }
  const r = results.at(-1)!;
  console.log(`${r.pass ? 'ok  ' : 'FAIL'} ${r.name} (${r.ms.toFixed(0)} ms)${r.error ? `\n     ${r.error}` : ''}`);
}
registered.unregister();
const failed = results.filter((r) => !r.pass).length;
console.log(`${results.length} checks, ${failed} failed${status.available ? ` on ${status.device.name}` : ` (${status.reason})`}`);
if (out) {
  writeFileSync(out, JSON.stringify({ device: status.available ? status.device : null, reason: status.available ? null : status.reason, results }, null, 2));
}
process.exit(failed > 0 || !status.available ? 1 : 0);
