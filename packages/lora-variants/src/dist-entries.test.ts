// Each entry point of the built package (ESM and CJS) shares one variant registry and one copy of
// the error classes: a variant registered through `@sparse/lora-variants` is known to `/node`
// (savePEFTAdapter / loadPEFTAdapter) and to `/tfjs` (registerTfForm, attachAdapters), and an error
// thrown by `/node` is an instance of the class the main entry exports.
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const body = `
const out = {};
const rng = new tensor.Random(0);
const weight = tensor.randomTensor([8, 12], rng, { dist: 'normal' });
// A user's variants: copies of built-ins under new names, registered through the main entry.
index.registerVariant({ ...index.getVariant('rosa'), name: 'my-rosa' });
index.registerVariant({ ...index.getVariant('lora'), name: 'my-lora' });
const state = { ...index.getVariant('rosa').init(weight, { r: 2, density: 0.1 }, rng), variant: 'my-rosa' };
const dir = mkdtempSync(join(tmpdir(), 'lora-variants-dist-check-'));
try {
  await node.savePEFTAdapter(dir, { 'block.fc': state });
  const loaded = await node.loadPEFTAdapter(dir);
  out.nodeRoundTrip = loaded.variant;
  try {
    await node.loadPEFTAdapter(join(dir, 'missing'));
  } catch (e) {
    out.nodeError = e.name;
    out.nodePEFTFormatError = e instanceof index.PEFTFormatError;
    out.nodeArgumentError = e instanceof tensor.ArgumentError;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
tfjs.registerTfForm({ ...tfjs.getTfForm('lora'), variant: 'my-lora' });
const model = tfjs.attachAdapters({ fc: tf.variable(tf.randomNormal([8, 12]), false) }, { targets: 'fc', variant: 'my-lora', config: { r: 2 } });
out.tfjsTrainable = model.trainableReport().trainable;
console.log(JSON.stringify(out));
`;

const esm = `import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tensor from '@sparse/tensor';
import * as index from '@sparse/lora-variants';
import * as node from '@sparse/lora-variants/node';
import * as tfjs from '@sparse/lora-variants/tfjs';
${body}`;

const cjs = `const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tensor = require('@sparse/tensor');
const index = require('@sparse/lora-variants');
const node = require('@sparse/lora-variants/node');
const tfjs = require('@sparse/lora-variants/tfjs');
(async () => {
${body}
})().catch((e) => { console.error(e); process.exit(1); });`;

const expected = {
  nodeRoundTrip: 'my-rosa',
  nodeError: 'PEFTFormatError',
  nodePEFTFormatError: true,
  nodeArgumentError: true,
  // LoRA r = 2 on [8, 12]: A [2, 12] + B [8, 2].
  tfjsTrainable: 2 * 12 + 8 * 2,
};

describe('built entry points share one copy of the package', () => {
  it('ESM: a variant registered through the main entry is known to /node and /tfjs', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
