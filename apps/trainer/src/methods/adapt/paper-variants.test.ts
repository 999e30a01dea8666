// The paper parts of SaRA, SNELL and DSEE inside the trainer: SaRA's progressive re-selection and SNELL's
// bi-level budget allocation happen on schedule and a run stopped around them resumes step for step (the
// supports, counts and EMAs travel in the stage state, the re-selected values' Adam reset point in the
// optimizer's); DSEE's pruned merge hands its masks to the run, so the next adapter keeps its zeros.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { count } from '@sparse/masks';
import { loadPEFTAdapter } from '@sparse/lora-variants/node';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-paper-variants-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };

describe('adapter variants with training schedules resume exactly', () => {
  it('sara (nuclear-norm penalty, re-selection before step 5) and snell (allocation every 2 steps) continue with the losses of an uninterrupted run', async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        // the first support by fisher scores, the re-selection by |W + ΔW|: a resumed run must take the support from the checkpoint
        { stage: 'adapt', method: 'sara', config: { density: 0.2, lambda: 0.01, reselectAt: 0.5 }, supportScores: 'fisher', supportBatches: 2, steps: 8, batch: 4, lr: 2e-2, checkpointEvery: 2 },
        { stage: 'adapt', method: 'snell', config: { dim: 2, sparsity: 0.8, init: 'random', allocate: { every: 2, initialSparsity: 0.5 } }, steps: 8, batch: 4, lr: 2e-2, checkpointEvery: 2 },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const ev = events(whole) as (ReturnType<typeof events>[number] & { kept?: Record<string, number> })[];
    expect(ev.filter((e) => e.event === 'reselect').map((e) => [e.stage, e.step])).toEqual([[1, 5]]);
    expect(ev.filter((e) => e.event === 'allocate').map((e) => [e.stage, e.step])).toEqual([[2, 3], [2, 5], [2, 7]]);
    // the budget shrinks from 50% of every adapted weight (ramp over steps 0..5 of 8) to the stage's 20%, reached by step 7
    const allocs = ev.filter((e) => e.event === 'allocate') as unknown as { total: number; kept: Record<string, number> }[];
    const cp = await readCheckpoint(whole);
    const sizes = [...cp.params].filter(([n]) => n in allocs[0]!.kept).map(([, t]) => t.data.length);
    expect(sizes).toHaveLength(4);
    for (const a of allocs) expect(Object.values(a.kept).reduce((x, y) => x + y, 0)).toBe(a.total);
    expect(allocs[0]!.total).toBeLessThan(sizes.reduce((a, n) => a + Math.round(0.5 * n), 0));
    expect(allocs[0]!.total).toBeGreaterThan(allocs[2]!.total);
    expect(allocs[2]!.total).toBe(sizes.reduce((a, n) => a + Math.round(0.2 * n), 0));
    // the PEFT export of the snell stage holds each layer's allocated count (indices.kept), as the last allocation left them
    const folder = readdirSync(join(whole, 'exports', 'adapters')).find((d) => d.includes('snell'))!;
    const peft = await loadPEFTAdapter(join(whole, 'exports', 'adapters', folder));
    const last = ev.filter((e) => e.event === 'allocate').at(-1)!.kept!;
    const saved = Object.values(peft.modules).map((m) => (m as unknown as { indices: { kept: Int32Array } }).indices.kept[0]!);
    expect(saved.sort((a, b) => a - b)).toEqual(Object.values(last).sort((a, b) => a - b));
    const broken = join(tmp, 'broken');
    const stops = [
      { stage: 1, step: 3, resumeAt: 2, state: 'adapter' },
      // after the re-selection before step 5: the new supports and the values' reset point (t = 4) are in the checkpoint
      { stage: 1, step: 7, resumeAt: 6, state: 'adapter' },
      // after the allocations before steps 3 and 5
      { stage: 2, step: 7, resumeAt: 6, state: 'adapter' },
    ];
    await runWithStops(recipe, broken, stops, (s, c) => {
      const st = c.stageState!.adapter as { reselected?: boolean; allocations?: number };
      if (s.stage === 1) {
        expect(st.reselected).toBe(s.step === 7);
        if (s.step === 7) expect(Object.values(c.optimizer!.since!)).toEqual([4, 4, 4, 4]);
      } else expect(st.allocations).toBe(2);
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it("a dsee merge with prune registers its masks (50% of each weight) and a LoRA stage after it keeps dsee's zeros; without prune no mask is registered on a dense model", async () => {
    const run = async (name: string, stages: Record<string, unknown>[]) => {
      const dir = join(tmp, name);
      await startRun(resolveRecipe({ seed: 7, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, ...stages] }), { dir, ...quiet });
      return readCheckpoint(dir);
    };
    const dsee = { stage: 'adapt', method: 'dsee', config: { r: 2, decompositionRank: 2, density: 0.05, prune: { sparsity: 0.5 } }, steps: 3, batch: 4, lr: 1e-2 };
    const pruned = await run('dsee', [dsee]);
    const thenLoRA = await run('dsee-lora', [dsee, { stage: 'adapt', method: 'lora', steps: 3, batch: 4, lr: 1e-2 }]);
    expect(pruned.masks.size).toBe(4);
    for (const [n, m] of pruned.masks) {
      const w1 = pruned.params.get(n)!.data;
      const w2 = thenLoRA.params.get(n)!.data;
      expect(count(m), n).toBe(w1.length / 2);
      expect(Array.from(w1, (x, q) => (((m.bits[q >>> 5]! >>> (q & 31)) & 1) === 1) === (x !== 0)).every(Boolean), n).toBe(true);
      for (let q = 0; q < w1.length; q++) if (w1[q] === 0) expect(w2[q], `${n}[${q}]`).toBe(0);
      expect(w2.some((x, q) => x !== 0 && x !== w1[q]), n).toBe(true);
    }
    const plain = await run('dsee-plain', [{ ...dsee, config: { r: 2, decompositionRank: 2, density: 0.05 } }]);
    expect(plain.masks.size).toBe(0);
  }, 300_000);
});
