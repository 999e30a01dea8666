// The built package's entry points (ESM and CJS) work together: a Seer gate trained by /tfjs is used by the
// main entry's predictor, a recipe spec becomes a block mask, and the errors thrown are @sparse/tensor's classes.
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const body = `
// steps 0: the gate is initialized and its loss evaluated, no gradient taken (tfjs-core alone registers none).
const out = {};
const mask = index.blockMaskFromSpec({ pattern: 'sliding-window', window: 2, blockSize: 2 }, { seq: 6 });
out.tiles = Array.from(mask.tiles);
const q = new Float32Array(6 * 2).map((_, i) => Math.sin(i));
const k = new Float32Array(6 * 2).map((_, i) => Math.cos(i));
const shape = { heads: 1, seq: 6, headDim: 2 };
const { gate, losses } = tfjs.trainSeerGate([{ shape, q, k }], { blockSize: 2, gateDim: 2, steps: 0 });
out.losses = losses.length;
out.keep = Array.from(index.predictBlockMask('seer', { blockSize: 2, topK: 0 }, { shape, q, k }, { gate }).keep);
try {
  index.patternFromSpec({ pattern: 'causal', blockSize: 0 });
} catch (e) {
  out.error = e.name;
  out.configError = e instanceof tensor.ConfigError;
}
console.log(JSON.stringify(out));
`;

const esm = `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tensor from '@sparse/tensor';
import * as index from '@sparse/attention';
import * as tfjs from '@sparse/attention/tfjs';
await tf.setBackend('cpu');
${body}`;

const cjs = `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tensor = require('@sparse/tensor');
const index = require('@sparse/attention');
const tfjs = require('@sparse/attention/tfjs');
${body}`;

// Window 2 (keys i - 1 and i) in tiles of 2: the diagonal tiles are partial (causal), and so are the tiles just
// below them (only their corner element is in the window). topK 0 keeps the diagonal tiles alone.
const expected = { tiles: [2, 0, 0, 2, 2, 0, 0, 2, 2], losses: 1, keep: [1, 0, 0, 0, 1, 0, 0, 0, 1], error: 'ConfigError', configError: true };

describe('built entry points work together', () => {
  it('ESM: a gate made by /tfjs drives the main entry predictor', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
