import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { embeddedData } from '../data/dataset.js';
import { createGPT } from '../model/gpt.js';
import { evaluatePerplexity } from './evaluate.js';
import { lrAt, trainLoop } from './loop.js';

beforeAll(async () => {
  await chooseBackend();
});

describe('lrAt', () => {
  it('warms up linearly, then decays by a cosine to the floor', () => {
    expect(lrAt(1, 100, 1, 10, 0.1)).toBeCloseTo(0.1);
    expect(lrAt(10, 100, 1, 10, 0.1)).toBeCloseTo(1);
    expect(lrAt(55, 100, 1, 10, 0.1)).toBeCloseTo(0.55);
    expect(lrAt(100, 100, 1, 10, 0.1)).toBeCloseTo(0.1);
    expect(lrAt(5, 5, 1, 0, 0.1)).toBeCloseTo(0.1);
  });
});

describe('trainLoop', () => {
  const data = embeddedData({ chars: 40_000 });
  const cfg = { vocab: data.tokenizer.vocabSize, d: 16, layers: 1, heads: 2, ctx: 16, mlpRatio: 2 };

  it('lowers the held-out loss in a few dozen steps', async () => {
    const model = createGPT(cfg, { seed: 0 });
    const before = evaluatePerplexity(model, data.heldOut, { maxWindows: 32 });
    const result = await trainLoop(model, { data: data.train, steps: 40, batch: 8, lr: 1e-2, seed: 0 });
    const after = evaluatePerplexity(model, data.heldOut, { maxWindows: 32 });
    expect(result.losses).toHaveLength(40);
    expect(result.tokens).toBe(40 * 8 * 16);
    expect(before.perplexity).toBeGreaterThan(cfg.vocab * 0.7);
    expect(after.loss).toBeLessThan(before.loss - 0.8);
    expect(after.tokens).toBe(32 * 16);
    model.dispose();
  });

  it('keeps the number of live tensors flat across steps', async () => {
    const model = createGPT(cfg, { seed: 1 });
    const counts: number[] = [];
    await trainLoop(model, { data: data.train, steps: 6, batch: 2, lr: 1e-3, onStep: () => void counts.push(tf.memory().numTensors) });
    // step 1 creates the optimizer's moment estimates; after that nothing may accumulate
    expect(new Set(counts.slice(1)).size).toBe(1);
    const afterTraining = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBeLessThan(afterTraining);
    const other = createGPT(cfg, { seed: 2 });
    const live = tf.memory().numTensors;
    evaluatePerplexity(other, data.heldOut, { maxWindows: 4 });
    expect(tf.memory().numTensors).toBe(live);
    other.dispose();
  });

  it('is reproducible for a seed', async () => {
    const run = async () => {
      const model = createGPT(cfg, { seed: 3 });
      const r = await trainLoop(model, { data: data.train, steps: 3, batch: 2, lr: 1e-3, seed: 4 });
      model.dispose();
      return r.losses;
    };
    expect(await run()).toEqual(await run());
  });

  it('reports progress on every step', async () => {
    const model = createGPT(cfg, { seed: 1 });
    const steps: number[] = [];
    await trainLoop(model, {
      data: data.train,
      steps: 3,
      batch: 2,
      lr: 1e-3,
      onStep: (s) => {
        steps.push(s.step);
        expect(s.steps).toBe(3);
        expect(s.tokensPerSec).toBeGreaterThan(0);
        expect(Number.isFinite(s.loss)).toBe(true);
      },
    });
    expect(steps).toEqual([1, 2, 3]);
    model.dispose();
  });
});
