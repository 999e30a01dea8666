// The sft, mezo and sparse-mezo adapt stages checkpoint inside the stage: a run stopped in the middle
// of each (after a checkpoint, before the next) and resumed gives every step's loss of an
// uninterrupted run, the same final weights, and metrics.jsonl with each step once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-adapt-direct-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const recipe = resolveRecipe({
  seed: 5,
  model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
  eval: { windows: 4, batch: 4 },
  stages: [
    { stage: 'pretrain', steps: 4, batch: 4 },
    { stage: 'adapt', method: 'sft', config: { density: 0.2, every: 4, regrowFraction: 0.5 }, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 3, merge: true },
    { stage: 'adapt', method: 'mezo', config: { eps: 1e-3 }, steps: 8, batch: 4, lr: 1e-3, checkpointEvery: 3 },
    { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
    { stage: 'adapt', method: 'sparse-mezo', config: { eps: 1e-3, density: 0.5 }, steps: 8, batch: 4, lr: 1e-3, checkpointEvery: 3 },
    { stage: 'evaluate' },
  ],
});

describe('sft / mezo / sparse-mezo resume inside the stage', () => {
  it('continues from the in-stage checkpoint with the losses and weights of an uninterrupted run', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });

    const broken = join(tmp, 'broken');
    // each stop comes after the stage's checkpoint at `resumeAt` and before its next one
    const stops = [
      { stage: 1, step: 8, resumeAt: 6, state: 'sft' },
      { stage: 2, step: 5, resumeAt: 3, state: 'mezo' },
      { stage: 4, step: 7, resumeAt: 6, state: 'masks' },
    ];
    let sftChecked = 0;
    await runWithStops(recipe, broken, stops, (s, cp) => {
      if (s.state !== 'sft') return;
      sftChecked++;
      // the tuner's state came back typed: int32 supports, and step 6 is inside a regrowth window
      const layers = Object.values((cp.stageState!.sft as SparseFineTunerState).layers);
      expect(layers.length).toBeGreaterThan(0);
      for (const l of layers) {
        expect(l.indices).toBeInstanceOf(Int32Array);
        expect(l.accumulated).toBeInstanceOf(Float32Array);
      }
    });

    expect(sftChecked).toBe(1);
    expect(events(whole).filter((e) => e.event === 'step' && (e.stage === 1 || e.stage === 2 || e.stage === 4))).toHaveLength(26);
    await expectSameRun(whole, broken);
    expect(events(broken).filter((e) => e.event === 'resume')).toHaveLength(3);
    const evalOf = (dir: string) => events(dir).find((e) => e.event === 'eval')!.perplexity;
    expect(evalOf(broken)).toBe(evalOf(whole));
    // the SFT delta written at the stage's end is the same file
    const sft = (dir: string) => readFileSync(join(dir, 'exports', 'sft', 'adapt_sft_1.safetensors'));
    expect(sft(broken).equals(sft(whole))).toBe(true);
  }, 300_000);
});
