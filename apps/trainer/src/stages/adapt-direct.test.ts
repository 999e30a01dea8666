// The sft, mezo and sparse-mezo adapt stages checkpoint inside the stage: a run stopped in the middle
// of each (after a checkpoint, before the next) and resumed gives every step's loss of an
// uninterrupted run, the same final weights, and metrics.jsonl with each step once.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../recipe/load.js';
import { readCheckpoint } from '../run/checkpoint.js';
import { resumeRun, startRun } from '../run/runner.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-adapt-direct-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Event {
  event: string;
  stage?: number;
  step?: number;
  loss?: number;
  perplexity?: number;
}

const silent = { write: () => true };

/** JSON-mode output that throws (stopping the run there) when the step event of `stop` is written. */
function stopAt(stop: { stage: number; step: number }) {
  return {
    stdout: {
      write: (line: string) => {
        const e = JSON.parse(line) as Event;
        if (e.event === 'step' && e.stage === stop.stage && e.step === stop.step) throw new Error(`stopped at ${stop.stage}:${stop.step}`);
        return true;
      },
    },
    stderr: silent,
  };
}

function events(dir: string): Event[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);
}

const recipe = resolveRecipe({
  seed: 5,
  model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
  eval: { windows: 4, batch: 4 },
  stages: [
    { stage: 'pretrain', steps: 4, batch: 4 },
    { stage: 'adapt', method: 'sft', config: { density: 0.2, regrowEvery: 4, regrowFraction: 0.5 }, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 3, merge: true },
    { stage: 'adapt', method: 'mezo', config: { eps: 1e-3 }, steps: 8, batch: 4, lr: 1e-3, checkpointEvery: 3 },
    { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
    { stage: 'adapt', method: 'sparse-mezo', config: { eps: 1e-3, fraction: 0.5 }, steps: 8, batch: 4, lr: 1e-3, checkpointEvery: 3 },
    { stage: 'evaluate' },
  ],
});

describe('sft / mezo / sparse-mezo resume inside the stage', () => {
  it('continues from the in-stage checkpoint with the losses and weights of an uninterrupted run', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, mode: 'quiet', io: { stdout: silent, stderr: silent } });

    const broken = join(tmp, 'broken');
    // each stop comes after the stage's checkpoint at `resumeAt` and before its next one
    const stops = [
      { stage: 1, step: 8, resumeAt: 6, state: 'sft' },
      { stage: 2, step: 5, resumeAt: 3, state: 'mezo' },
      { stage: 4, step: 7, resumeAt: 6, state: 'masks' },
    ];
    for (const [i, s] of stops.entries()) {
      const io = stopAt(s);
      const run = i === 0 ? startRun(recipe, { dir: broken, mode: 'json', io }) : resumeRun(broken, { mode: 'json', io });
      await expect(run).rejects.toThrow(`stopped at ${s.stage}:${s.step}`);
      const cp = await readCheckpoint(broken);
      expect(cp.next).toEqual({ stage: s.stage, step: s.resumeAt });
      expect(cp.stageState).toHaveProperty(s.state);
      if (s.state === 'sft') {
        // the tuner's state came back typed: int32 supports, and step 6 is inside a regrowth window
        const layers = Object.values((cp.stageState!.sft as SparseFineTunerState).layers);
        expect(layers.length).toBeGreaterThan(0);
        for (const l of layers) {
          expect(l.indices).toBeInstanceOf(Int32Array);
          expect(l.accumulated).toBeInstanceOf(Float32Array);
        }
      }
    }
    await resumeRun(broken, { mode: 'quiet', io: { stdout: silent, stderr: silent } });

    const key = (e: Event) => `${e.stage}:${e.step}`;
    const a = events(whole).filter((e) => e.event === 'step');
    const b = events(broken).filter((e) => e.event === 'step');
    expect(a.filter((e) => e.stage === 1 || e.stage === 2 || e.stage === 4)).toHaveLength(26);
    expect(new Set(b.map(key)).size).toBe(b.length);
    expect(b.map(key)).toEqual(a.map(key));
    for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]!.loss! - a[i]!.loss!), key(a[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(a[i]!.loss!)));
    expect(events(broken).filter((e) => e.event === 'resume')).toHaveLength(3);

    const wa = (await readCheckpoint(whole)).params;
    const wb = (await readCheckpoint(broken)).params;
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [k, v] of wa) expect(wb.get(k)!.data, k).toEqual(v.data);
    const evalOf = (dir: string) => events(dir).find((e) => e.event === 'eval')!.perplexity;
    expect(evalOf(broken)).toBe(evalOf(whole));
    // the SFT delta written at the stage's end is the same file
    const sft = (dir: string) => readFileSync(join(dir, 'exports', 'sft', 'adapt_sft_1.safetensors'));
    expect(sft(broken).equals(sft(whole))).toBe(true);
  }, 300_000);
});
