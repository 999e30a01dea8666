// What S2FT saves in training memory, measured on s2ft-finetune.yaml's model (GPT, d 32, 2 blocks, 4
// heads) against LoRA (lora-finetune.yaml's r 4) and full fine-tuning (a dense train stage): the trained
// scalars and the Adam moments the run's checkpoint holds for them (m and v, float32), and the
// high-water of the bytes held by live tfjs tensors over the run (tfjs-core's engine counter, read on
// every tensor allocation: the model, activations, gradients and optimizer state together).
// The trained scalars are also checked against S2FT's closed form: per block one head's rows of the
// fused QKV weight (3 · 8 rows × 32) and its columns of c_proj (32 × 8), 16 MLP channels' rows of c_fc
// (16 × 32) and columns of mlp.c_proj (32 × 16): 2048 a block, LoRA r 4's budget on these layers. The
// README's table is what this test logs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import type { CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-s2ft-memory-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 32, layers: 2, heads: 4, ctx: 32 };
const ROWS: Record<string, Record<string, unknown>> = {
  'full fine-tuning': { stage: 'train', method: 'dense' },
  'lora r 4': { stage: 'adapt', method: 'lora', config: { r: 4, alpha: 8 } },
  's2ft 1 head + 16 channels': { stage: 'adapt', method: 's2ft', config: { heads: 1, channels: 16 } },
};

const recipe = (stage: Record<string, unknown>) =>
  resolveRecipe({ seed: 0, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [{ ...stage, steps: 3, batch: 8, lr: 5e-3, checkpointEvery: 2 }] });

/** The high-water of live tfjs bytes above the start while `run` runs. */
async function tfPeak(run: () => Promise<unknown>): Promise<number> {
  const engine = tf.engine() as unknown as { trackTensor: (a: unknown, b: unknown) => void; state: { numBytes: number } };
  const track = engine.trackTensor.bind(engine);
  const start = engine.state.numBytes;
  let high = start;
  engine.trackTensor = (a, b) => {
    track(a, b);
    high = Math.max(high, engine.state.numBytes);
  };
  try {
    await run();
  } finally {
    engine.trackTensor = track;
  }
  return high - start;
}

describe('s2ft training memory against lora and full fine-tuning', () => {
  it('trains the closed-form number of scalars (lora r 4\'s budget), with a sixth of the optimizer state of full fine-tuning', async () => {
    const rows: { row: string; trainable: number; adamBytes: number; tfPeak: number }[] = [];
    for (const [row, stage] of Object.entries(ROWS)) {
      const key = row.replace(/\W+/g, '-');
      const peak = await tfPeak(() => startRun(recipe(stage), { dir: join(tmp, `${key}-peak`), ...quiet }));
      let cp: CheckpointContent | undefined;
      await runWithStops(recipe(stage), join(tmp, key), [{ stage: 0, step: 3, resumeAt: 2, state: 'batches' }], (_s, c) => (cp = c));
      const moments = [...Object.values(cp!.optimizer!.m), ...Object.values(cp!.optimizer!.v)];
      const trainable = Object.values(cp!.optimizer!.m).reduce((n, t) => n + t.data.length, 0);
      rows.push({ row, trainable, adamBytes: moments.reduce((n, t) => n + t.data.byteLength, 0), tfPeak: peak });
    }
    console.log(['row | trained scalars | Adam m+v bytes | tf peak bytes', ...rows.map((r) => `${r.row} | ${r.trainable} | ${r.adamBytes} | ${r.tfPeak}`)].join('\n'));
    const [full, lora, s2ft] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    const hd = 32 / 4;
    expect(s2ft.trainable).toBe(2 * (3 * hd * 32 + 32 * hd + 16 * 32 + 32 * 16));
    expect(s2ft.adamBytes).toBe(2 * 4 * s2ft.trainable);
    // these configs give both adapters the same budget (2048 scalars a block), as the paper compares them
    expect(s2ft.trainable).toBe(lora.trainable);
    expect(lora.adamBytes).toBe(2 * 4 * lora.trainable);
    expect(s2ft.adamBytes * 6).toBeLessThan(full.adamBytes);
    expect(s2ft.tfPeak).toBeLessThan(full.tfPeak);
  }, 300_000);
});
