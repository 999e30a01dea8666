// Adapter stages stopped mid-stage and resumed match an uninterrupted run step for step: MoSA's per-layer
// module draws and LoSiA's optimizer reset points (a re-localized core's first-step bias correction)
// travel in the stage state. PST's merge hands its masks M to the run, so a later adapter keeps PST's zeros.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-adapt-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };

describe('adapter stages resume inside the stage', () => {
  it('mosa (draw counters) and losia (Adam reset points) continue with the losses of an uninterrupted run', async () => {
    const recipe = resolveRecipe({
      seed: 4,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'adapt', method: 'mosa', config: { r: 4, modules: 4 }, steps: 8, batch: 4, lr: 2e-2, checkpointEvery: 2 },
        { stage: 'adapt', method: 'losia', config: { rows: 0.25, cols: 0.25, every: 3 }, supportBatches: 2, steps: 8, batch: 4, lr: 2e-2, checkpointEvery: 2 },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    // mosa stops after its checkpoint at 4; losia after its checkpoint at 4, which follows the re-localization
    // before step 4: steps 5 and 6 need the core's reset point (t = 3) to be bias-corrected as steps 2 and 3
    const stops = [
      // both variants' hook state rides under the stage state's 'adapter' key
      { stage: 1, step: 5, resumeAt: 4, state: 'adapter' },
      { stage: 2, step: 5, resumeAt: 4, state: 'adapter' },
    ];
    await runWithStops(recipe, broken, stops, (s, cp) => {
      if (s.stage === 1) {
        // one draw per training forward of each of the 4 linear layers: 4 steps so far
        const draws = (cp.stageState!.adapter as { draws: Record<string, number> }).draws;
        expect(Object.keys(draws)).toHaveLength(4);
        for (const c of Object.values(draws)) expect(c).toBe(4);
      } else {
        // the re-localized cores' Adam reset points are in the checkpoint's optimizer state
        expect(Object.values(cp.optimizer!.since!)).toEqual([3, 3, 3, 3]);
      }
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it("a PST merge registers its masks M: a LoRA stage after it keeps PST's zeros", async () => {
    const stages = [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'adapt', method: 'pst', config: { r: 2, scoreRank: 2, sparsity: 0.5, scheduleEnd: 0.5 }, steps: 4, batch: 4, lr: 1e-2 },
    ];
    const pstOnly = join(tmp, 'pst');
    await startRun(resolveRecipe({ seed: 6, model: MODEL, eval: { windows: 4, batch: 4 }, stages }), { dir: pstOnly, ...quiet });
    const thenLoRA = join(tmp, 'pst-lora');
    await startRun(resolveRecipe({ seed: 6, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [...stages, { stage: 'adapt', method: 'lora', steps: 3, batch: 4, lr: 1e-2 }] }), { dir: thenLoRA, ...quiet });
    const first = await readCheckpoint(pstOnly);
    const second = await readCheckpoint(thenLoRA);
    expect(first.masks.size).toBe(4);
    for (const [n, m] of first.masks) {
      const w1 = first.params.get(n)!.data;
      const w2 = second.params.get(n)!.data;
      const zeros = Array.from(w1, (x, q) => (x === 0 ? q : -1)).filter((q) => q >= 0);
      expect(zeros.length, n).toBe(w1.length / 2);
      // the mask the run holds is M: exactly the merged weight's nonzeros
      expect(Array.from(w1, (x, q) => (((m.bits[q >>> 5]! >>> (q & 31)) & 1) === 1) === (x !== 0)).every(Boolean), n).toBe(true);
      for (const q of zeros) expect(w2[q], `${n}[${q}]`).toBe(0);
      expect(w2.some((x, q) => x !== 0 && x !== w1[q]), n).toBe(true); // the LoRA did change the kept weights
    }
  }, 300_000);
});
