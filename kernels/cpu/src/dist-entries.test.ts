// Each entry point of the built package (ESM and CJS) shares one copy of the package's modules: the
// 'sparse-cpu' backend that `@sparse/kernels-cpu/select-backend` registers is an instance of the
// SparseCPUBackend class `@sparse/kernels-cpu/tfjs` exports (the addon's load state and the backend's
// registration are shared through globalThis besides, so that even two copies register once).
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { nativeSuite } from './__fixtures__/native-suite.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// select-backend registers 'sparse-cpu' first; the tfjs entry, loaded after it, finds it registered.
const body = `
const choice = await selectBackend({ prefer: ['sparse-cpu'], log: () => {} });
const backend = tf.backend();
const tfjs = await load();
console.log(JSON.stringify({
  chosen: choice.name,
  registered: tfjs.sparseCPURegistration.registered,
  sameClass: backend instanceof tfjs.SparseCPUBackend,
  nativeKernels: registerCPUKernels().native,
}));
`;

const esm = `import * as tf from '@tensorflow/tfjs-core';
import { registerCPUKernels } from '@sparse/kernels-cpu';
import { selectBackend } from '@sparse/kernels-cpu/select-backend';
const load = () => import('@sparse/kernels-cpu/tfjs');
${body}`;

const cjs = `const tf = require('@tensorflow/tfjs-core');
const { registerCPUKernels } = require('@sparse/kernels-cpu');
const { selectBackend } = require('@sparse/kernels-cpu/select-backend');
const load = async () => require('@sparse/kernels-cpu/tfjs');
(async () => {
${body}
})().catch((e) => { console.error(e); process.exit(1); });`;

const expected = { chosen: 'sparse-cpu', registered: true, sameClass: true, nativeKernels: true };

nativeSuite()('built entry points share one copy of the package', () => {
  it('ESM: the backend select-backend registered is the tfjs entry SparseCPUBackend', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
