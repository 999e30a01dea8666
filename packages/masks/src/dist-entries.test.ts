// Each entry point of the built package (ESM and CJS) shares one copy of the package's modules: the
// accumulators `@sparse/masks/tfjs` makes are instances of the classes `@sparse/masks` exports.
import { runInPackage } from '@sparse/config/packaging';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const body = `
// No loss functions: the accumulators are made (by /tfjs) but no gradient is taken, so the script
// needs no registered gradients.
const [acc] = tfjs.accumulateFisher([], [tf.variable(tf.ones([2, 3]))]);
const mask = tfjs.maskFromTf(tf.tensor2d([[1, 0, 1], [0, 0, 1]]));
console.log(JSON.stringify({
  squaredGradient: acc instanceof index.SquaredGradientAccumulator,
  accumulator: acc instanceof index.GradientAccumulator,
  shape: acc.shape,
  kept: index.count(mask),
  schemaEvery: schemas.sparsityScheduleSchema.parse({ kind: 'cubic', initial: 0, final: 0.9, begin: 0, end: 10 }).every,
}));
`;

const esm = `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as index from '@sparse/masks';
import * as tfjs from '@sparse/masks/tfjs';
import * as schemas from '@sparse/masks/schemas';
${body}`;

const cjs = `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const index = require('@sparse/masks');
const tfjs = require('@sparse/masks/tfjs');
const schemas = require('@sparse/masks/schemas');
${body}`;

const expected = { squaredGradient: true, accumulator: false, shape: [2, 3], kept: 3, schemaEvery: 1 };

describe('built entry points share one copy of the package', () => {
  it('ESM: accumulators made by /tfjs are instances of the main entry classes', () => {
    expect(JSON.parse(runInPackage(root, esm, { ext: '.mjs' }))).toEqual(expected);
  });
  it('CJS: the same through require', () => {
    expect(JSON.parse(runInPackage(root, cjs, { ext: '.cjs' }))).toEqual(expected);
  });
});
