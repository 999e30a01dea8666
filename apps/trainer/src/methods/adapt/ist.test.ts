// IST on the sft stage (config.ist), from a recipe on a two-block model: between two consecutive
// checkpoints, the deltas of the blocks the step did not draw keep their values and Adam moments exactly
// and the drawn block's moved; the scores logged at each importance update follow istScoreUpdate from the
// previous scores and the probes' losses; and a run stopped before and after an update resumes exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { istScoreUpdate } from '@sparse/lora-variants';
import type { SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { startRun } from '../../run/runner.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-ist-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type ISTEvent = { event: string; step: number; probes: number[][]; losses: number[]; scores: number[] };
const blockOf = (name: string) => Number(/^h\.(\d+)\./.exec(name)![1]);

describe('sft with ist (IST layer sampling)', () => {
  it('frozen blocks receive no update, scores follow the probes, and resume is exact', async () => {
    const recipe = resolveRecipe({
      seed: 2,
      model: { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 16 },
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'adapt', method: 'sft', config: { density: 0.1, ist: { update: 0.5, suppress: 0.5, every: 2, probes: 3 } }, steps: 6, batch: 4, lr: 2e-2, checkpointEvery: 1, merge: false },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    const states: { sft: SparseFineTunerState; updated: number[] }[] = [];
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 1, step: 4, resumeAt: 3, state: 'ist' },
        { stage: 1, step: 5, resumeAt: 4, state: 'ist' },
      ],
      (_s, cp) => states.push({ sft: cp.stageState!.sft as SparseFineTunerState, updated: (cp.stageState!.ist as { updated: number[] }).updated }),
    );
    await expectSameRun(whole, broken);
    // step 4 updated one of the two blocks; the other's deltas and moments are exactly those of step 3
    const [s3, s4] = states as [(typeof states)[0], (typeof states)[0]];
    expect(s4.updated).toHaveLength(1);
    let moved = 0;
    for (const [n, l4] of Object.entries(s4.sft.layers)) {
      const l3 = s3.sft.layers[n]!;
      if (s4.updated.includes(blockOf(n))) {
        if (Array.from(l4.values).some((v, i) => v !== l3.values[i])) moved++;
      } else {
        expect(Array.from(l4.values), n).toEqual(Array.from(l3.values));
        expect(Array.from(l4.adam.m), n).toEqual(Array.from(l3.adam.m));
        expect(Array.from(l4.adam.v), n).toEqual(Array.from(l3.adam.v));
      }
    }
    expect(moved).toBeGreaterThan(0);
    // importance updates before steps 3 and 5; two blocks, one suppressed: both sets probed each time
    const updates = events(whole).filter((e) => e.event === 'ist') as unknown as ISTEvent[];
    expect(updates.map((u) => u.step)).toEqual([2, 4]);
    let scores = [0, 0];
    for (const u of updates) {
      expect(u.probes.map((p) => p.join()).sort()).toEqual(['0', '1']);
      scores = Array.from(istScoreUpdate(scores, u.probes, u.losses, 10));
      u.scores.forEach((x, i) => expect(x).toBeCloseTo(scores[i]!, 12));
    }
    expect(scores.some((x) => x !== 0)).toBe(true);
    expect(events(broken).filter((e) => e.event === 'ist')).toEqual(events(whole).filter((e) => e.event === 'ist').map((e) => ({ ...e, time: expect.anything() as unknown })));
  }, 300_000);
});
