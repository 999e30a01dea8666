// Each entry point of the built package (ESM and CJS) shares one copy of the package's modules: an
// error thrown by `@sparse/tensor/node` or `/tfjs` is an instance of the class `@sparse/tensor`
// exports, and a kernel registered through one entry runs through the registry every entry uses.
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const body = `
const out = {};
const bad = join(tmpdir(), 'sparse-tensor-dist-check-' + process.pid + '.safetensors');
writeFileSync(bad, 'not a safetensors file');
try {
  await node.readSafetensorsFile(bad);
} catch (e) {
  out.nodeError = e.name;
  out.nodeSafetensors = e instanceof index.SafetensorsError;
  out.nodeSparse = e instanceof index.SparseError;
} finally {
  rmSync(bad, { force: true });
}
try {
  tfjs.toTf({ data: new Float32Array(1), shape: [1], stride: [1], offset: 0, dtype: 'complex64' });
} catch (e) {
  out.tfjsError = e.name;
  out.tfjsDType = e instanceof index.DTypeError;
}
out.testingRandom = testing.seededUniform(3)() === new index.Random(3).next();
const calls = [];
const unregister = index.registerKernel({ name: 'gemm', backend: 'dist-check', priority: 1e9, fn: (args) => calls.push(args.m) });
index.getKernel('gemm')({ transA: false, transB: false, m: 1, n: 1, k: 1, alpha: 1, a: new Float32Array(1), aOffset: 0, lda: 1, b: new Float32Array(1), bOffset: 0, ldb: 1, beta: 0, c: new Float32Array(1), cOffset: 0, ldc: 1 });
unregister();
out.kernelCalls = calls.length;
out.kernelBackendAfter = index.kernelBackend('gemm');
console.log(JSON.stringify(out));
`;

const esm = `import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as index from '@sparse/tensor';
import * as node from '@sparse/tensor/node';
import * as tfjs from '@sparse/tensor/tfjs';
import * as testing from '@sparse/tensor/testing';
${body}`;

const cjs = `const { writeFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const index = require('@sparse/tensor');
const node = require('@sparse/tensor/node');
const tfjs = require('@sparse/tensor/tfjs');
const testing = require('@sparse/tensor/testing');
(async () => {
${body}
})().catch((e) => { console.error(e); process.exit(1); });`;

const expected = {
  nodeError: 'SafetensorsError',
  nodeSafetensors: true,
  nodeSparse: true,
  tfjsError: 'DTypeError',
  tfjsDType: true,
  testingRandom: true,
  kernelCalls: 1,
  kernelBackendAfter: 'reference',
};

describe('built entry points share one copy of the package', () => {
  it('ESM: errors from /node and /tfjs are instances of the main entry classes', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
