// runSteps with a stage's own update: it gets the batches a seeded sampler draws and the scheduled
// lr, checkpoints at every k steps and the last, and a continuation from startStep with the
// sampler's saved state sees the same batches and lrs as an uninterrupted loop.
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { sampleBatch } from '../data/dataset.js';
import { lrAt, runSteps, type StepInfo } from './steps.js';

beforeAll(async () => {
  await chooseBackend();
});

const data = Int32Array.from({ length: 200 }, (_, i) => (i * 7919) % 97);

interface Seen {
  step: number;
  lr: number;
  ids: number[];
  targets: number[];
}

/** A loop over `steps` from `start`, recording what the update saw; the loss is a function of the batch. */
async function record(steps: number, start: number, rng: Random, checkpointEvery = 3) {
  const seen: Seen[] = [];
  const infos: StepInfo[] = [];
  const checkpoints: { step: number; rng: ReturnType<Random['state']> }[] = [];
  const live: tf.Tensor[] = [];
  await runSteps({
    data,
    steps,
    startStep: start,
    batch: 2,
    len: 5,
    lr: 0.1,
    warmup: 2,
    minLrRatio: 0.2,
    rng,
    update: async (ids, targets, lr, step) => {
      live.push(ids, targets);
      seen.push({ step, lr, ids: [...ids.dataSync()], targets: [...targets.dataSync()] });
      return { loss: Array.from(ids.dataSync()).reduce((s, x) => s + x, 0) / 10, ...(step % 2 === 0 ? { gradNorm: step } : {}) };
    },
    afterStep: (info) => void infos.push(info),
    checkpointEvery,
    onCheckpoint: (step) => void checkpoints.push({ step, rng: rng.state() }),
  });
  return { seen, infos, checkpoints, live };
}

describe('runSteps with an update', () => {
  it('passes the sampled batches and the scheduled lr, and reports the update\'s loss and grad norm', async () => {
    const { seen, infos, checkpoints, live } = await record(7, 0, new Random(3));
    const ref = new Random(3);
    seen.forEach((s, i) => {
      const b = sampleBatch(data, 2, 5, ref);
      expect(s.step).toBe(i + 1);
      expect(s.ids).toEqual([...b.inputs]);
      expect(s.targets).toEqual([...b.targets]);
      expect(s.lr).toBe(lrAt(i + 1, 7, 0.1, 2, 0.2));
      expect(infos[i]!.loss).toBe(b.inputs.reduce((a, x) => a + x, 0) / 10);
      expect(infos[i]!.lr).toBe(s.lr);
      expect(infos[i]!.gradNorm).toBe((i + 1) % 2 === 0 ? i + 1 : undefined);
    });
    expect(checkpoints.map((c) => c.step)).toEqual([3, 6, 7]);
    // the loop disposes each step's ids and targets
    expect(live.every((t) => t.isDisposed)).toBe(true);
  });

  it('continues from a checkpoint\'s step and sampler state with the same batches and lrs', async () => {
    const whole = await record(8, 0, new Random(5));
    const at = whole.checkpoints.find((c) => c.step === 3)!;
    const rest = await record(8, 3, Random.fromState(at.rng));
    expect(rest.seen).toEqual(whole.seen.slice(3));
    expect(rest.infos.map((i) => i.loss)).toEqual(whole.infos.slice(3).map((i) => i.loss));
    expect(rest.checkpoints.map((c) => c.step)).toEqual([6, 8]);
  });

  it('stops on a non-finite loss, naming the step', async () => {
    await expect(
      runSteps({ data, steps: 3, batch: 1, len: 4, lr: 0.1, rng: new Random(1), update: async (_i, _t, _lr, step) => ({ loss: step === 2 ? Number.NaN : 1 }) }),
    ).rejects.toThrow(/loss is NaN at step 2/);
  });
});
