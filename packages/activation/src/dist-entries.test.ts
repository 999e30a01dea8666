// The built package's entry points (ESM and CJS) work together: a sparsifier the main entry calibrates is
// applied in a tfjs graph by /tfjs, and the errors /tfjs throws are the classes of @sparse/tensor.
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const body = `
const out = {};
const site = { name: 'h.0.mlp.act', kind: 'mlp-activation', block: 0, role: 'mlp.act', features: 4 };
const [sp] = index.calibrateActivation('top-k', { k: 2 }, [{ site, x: new Float32Array(4), tokens: 1 }]);
out.values = Array.from(tfjs.sparsifyTensor(sp, tf.tensor2d([[1, -3, 2, 0.5]])).dataSync());
try {
  tfjs.sparsifyTensor(sp, tf.zeros([1, 4], 'int32'));
} catch (e) {
  out.error = e.name;
  out.dtypeError = e instanceof tensor.DTypeError;
}
const down = { name: 'h.0.mlp.c_proj.weight', kind: 'linear-input', block: 0, role: 'mlp.down', features: 4, out: 2 };
const weight = { data: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]), out: 2, in: 4 };
const [rs] = index.calibrateActivation('r-sparse', { sparsity: 0.5, rank: 2 }, [{ site: down, x: new Float32Array(4), tokens: 1, weight }]);
const x = tf.tensor2d([[3, 1, 0.5, 2]]);
const r = tfjs.sparsifySite(rs, x);
out.add = Array.from(r.add.dataSync(), (v) => Math.round(v * 1e5) / 1e5);
out.methods = ['top-k', 'cats', 'teal', 'wina', 'r-sparse', 'nm'].every((m) => index.activationMethods.has(m));
console.log(JSON.stringify(out));
`;

const esm = `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tensor from '@sparse/tensor';
import * as index from '@sparse/activation';
import * as tfjs from '@sparse/activation/tfjs';
${body}`;

const cjs = `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tensor = require('@sparse/tensor');
const index = require('@sparse/activation');
const tfjs = require('@sparse/activation/tfjs');
${body}`;

// top-k 2 of [1, -3, 2, 0.5] keeps -3 and 2. R-Sparse keeps 3 and 2 (channels 0, 3); the dropped channels 1
// and 2 go through W (rank 2 is W itself): [1, 0.5] times columns 1 and 2 of W gives [0, 1].
const expected = { values: [0, -3, 2, 0], error: 'DTypeError', dtypeError: true, add: [0, 1], methods: true };

describe('built entry points work together', () => {
  it('ESM: a sparsifier calibrated by the main entry runs in /tfjs', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
