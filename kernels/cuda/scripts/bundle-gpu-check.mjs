#!/usr/bin/env node
// Bundles src/gpu-node-check.ts with @sparse/tensor (its built dist) into build/gpu-node-check.mjs,
// a single file that runs the Node-side GPU checks with plain node: gpu-check.sh uses it on a GPU
// machine that has this package's build/ folder but no node_modules. Run it here (where the
// workspace is installed and @sparse/tensor is built) before carrying build/ to the GPU machine.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.join(pkgDir, 'build', 'gpu-node-check.mjs');
await build({
  entryPoints: [path.join(pkgDir, 'src', 'gpu-node-check.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  logLevel: 'warning',
});
console.log(`@sparse/kernels-cuda: wrote ${path.relative(process.cwd(), outfile) || outfile}`);
