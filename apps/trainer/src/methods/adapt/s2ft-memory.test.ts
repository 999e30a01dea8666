// What S2FT saves in training memory, measured on s2ft-finetune.yaml's model (GPT, d 32, 2 blocks, 4
// heads) against LoRA (lora-finetune.yaml's r 4) and full fine-tuning (a dense train stage): the trained
// scalars and the Adam moments the run's checkpoint holds for them (m and v, float32), and the
// high-water of the bytes held by live tfjs tensors over the run (tfjs-core's engine counter, read on
// every tensor allocation: the model, activations, gradients and optimizer state together), with S2FT
// trained through the weight and through partial backpropagation (`partialBackprop`).
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

// Two sizes: the recipe's model at batch 8 × 32 tokens (activations dominate the tensors), and a wider
// model at batch 1 × 8 tokens (weights dominate, as in a large model fine-tuned on short batches). The
// configs give S2FT and LoRA the same budget at each size.
const SIZES = {
  'd 32, batch 8 × 32': { model: { architecture: 'gpt' as const, d: 32, layers: 2, heads: 4, ctx: 32 }, batch: 8, lora: 4, hd: 8, d: 32 },
  'd 256, batch 1 × 8': { model: { architecture: 'gpt' as const, d: 256, layers: 2, heads: 4, ctx: 8 }, batch: 1, lora: 18, hd: 64, d: 256 },
};
const rowsOf = (lora: number): Record<string, Record<string, unknown>> => ({
  'full fine-tuning': { stage: 'train', method: 'dense' },
  [`lora r ${lora}`]: { stage: 'adapt', method: 'lora', config: { r: lora, alpha: 2 * lora } },
  's2ft 1 head + 16 channels': { stage: 'adapt', method: 's2ft', config: { heads: 1, channels: 16 } },
  's2ft, partial backprop': { stage: 'adapt', method: 's2ft', config: { heads: 1, channels: 16, partialBackprop: true } },
});

const recipe = (model: Record<string, unknown>, batch: number, stage: Record<string, unknown>) =>
  resolveRecipe({ seed: 0, model, eval: { windows: 4, batch: 4 }, stages: [{ ...stage, steps: 3, batch, lr: 5e-3, checkpointEvery: 2 }] });

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

type Row = { row: string; trainable: number; adamBytes: number; tfPeak: number };

async function measure(size: keyof typeof SIZES): Promise<Row[]> {
  const { model, batch, lora } = SIZES[size];
  const rows: Row[] = [];
  for (const [row, stage] of Object.entries(rowsOf(lora))) {
    const key = `${size}-${row}`.replace(/\W+/g, '-');
    const peak = await tfPeak(() => startRun(recipe(model, batch, stage), { dir: join(tmp, `${key}-peak`), ...quiet }));
    let cp: CheckpointContent | undefined;
    await runWithStops(recipe(model, batch, stage), join(tmp, key), [{ stage: 0, step: 3, resumeAt: 2, state: 'batches' }], (_s, c) => (cp = c));
    const moments = [...Object.values(cp!.optimizer!.m), ...Object.values(cp!.optimizer!.v)];
    const trainable = Object.values(cp!.optimizer!.m).reduce((n, t) => n + t.data.length, 0);
    rows.push({ row, trainable, adamBytes: moments.reduce((n, t) => n + t.data.byteLength, 0), tfPeak: peak });
  }
  console.log([`${size}: row | trained scalars | Adam m+v bytes | tf peak bytes`, ...rows.map((r) => `${r.row} | ${r.trainable} | ${r.adamBytes} | ${r.tfPeak}`)].join('\n'));
  return rows;
}

describe('s2ft training memory against lora and full fine-tuning', () => {
  for (const size of Object.keys(SIZES) as (keyof typeof SIZES)[]) {
    it(`${size}: the closed-form scalars (LoRA's budget), a fraction of full fine-tuning's optimizer state${size.startsWith('d 256') ? ', and partial backpropagation lowers the peak' : ''}`, async () => {
      const { hd, d } = SIZES[size];
      const [full, lora, s2ft, partial] = (await measure(size)) as [Row, Row, Row, Row];
      expect(s2ft.trainable).toBe(2 * (3 * hd * d + d * hd + 16 * d + d * 16));
      expect(s2ft.trainable).toBe(lora.trainable);
      expect(partial.trainable).toBe(s2ft.trainable);
      for (const r of [lora, s2ft, partial]) expect(r.adamBytes).toBe(2 * 4 * r.trainable);
      expect(s2ft.adamBytes * 3).toBeLessThan(full.adamBytes);
      if (size.startsWith('d 256')) {
        // no full weight gradient of an adapted layer is formed: below the weight-path S2FT and LoRA, which form them
        expect(partial.tfPeak).toBeLessThan(s2ft.tfPeak);
        expect(partial.tfPeak).toBeLessThan(lora.tfPeak);
      }
    }, 300_000);
  }
});
