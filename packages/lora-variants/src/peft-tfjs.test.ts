// The trainer's path: adapters trained through the tfjs AdapterModel, saved with savePEFTAdapter from
// adapterStates(), loaded back, and merged by the core variant give the weights AdapterModel.merge gives.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { loadPEFTAdapter, savePEFTAdapter } from './node.js';
import { attachAdapters } from './tfjs.js';
import { getVariant } from './variants/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const SHAPES: Record<string, [number, number]> = { 'layers.0.fc': [8, 12], 'layers.1.fc': [4, 12] };

it.each([
  ['rosa', { r: 2, density: 0.2 }],
  ['lora-xs', { r: 2 }],
  ['smt', { blockSize: 4, blocks: 1 }],
  ['selective-lora', { r: 2 }],
] as const)('%s: trained, saved, loaded and merged equals AdapterModel.merge', async (variant, config) => {
  const rng = new Random(21);
  const bases: Record<string, Float32Array> = {};
  const weights: Record<string, tf.Variable> = {};
  for (const [n, [o, i]] of Object.entries(SHAPES)) {
    bases[n] = Float32Array.from({ length: o * i }, () => (rng.uniform() < 0.25 ? 0 : rng.normal()));
    weights[n] = tf.variable(tf.tensor(bases[n], [o, i]), false);
  }
  const model = attachAdapters(weights, { targets: ['fc'], variant, config, seed: 3 });
  const x = tf.tensor(Float32Array.from({ length: 6 * 12 }, () => rng.normal()), [6, 12]);
  const loss = () => tf.addN(Object.keys(SHAPES).map((n) => tf.mean(tf.square(tf.sub(tf.matMul(x, model.effectiveWeight(n), false, true), 1))))) as tf.Scalar;
  const opt = tf.train.adam(0.05);
  for (let k = 0; k < 3; k++) opt.minimize(loss, false, model.trainableVariables());
  const states = model.adapterStates();
  const dir = await mkdtemp(join(tmpdir(), 'lora-variants-peft-tfjs-'));
  try {
    await savePEFTAdapter(dir, states);
    const back = await loadPEFTAdapter(dir);
    expect(back.variant).toBe(variant);
    model.merge();
    for (const [n, [o, i]] of Object.entries(SHAPES)) {
      expect(back.modules[n]).toEqual(states[n]);
      const merged = getVariant(variant).merge(tensor(bases[n]!, [o, i]), back.modules[n]!);
      expect(Array.from(merged.data)).toEqual(Array.from(weights[n]!.dataSync()));
      expect(merged.data.some((v, k) => v !== bases[n]![k])).toBe(true);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
