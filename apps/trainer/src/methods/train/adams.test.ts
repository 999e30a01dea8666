// train method 'adams' (CAST): the first step's loss is (1 - distill) · the dense cross-entropy (the
// student is the teacher and the scales are 1, so the KL term is 0); the learned row scales get
// gradients and move; the final weight is zero off an exact N:M mask (the merge s · (M ⊙ W) is
// mergeRowScales of @sparse/nm, tested there against a direct loop); a run stopped
// mid-stage resumes to the same losses (AdamS moments, scales and the teacher ride in the checkpoint).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept } from '@sparse/masks';
import { isNM } from '@sparse/nm';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-adams-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

const recipeWith = (method: string, config: Record<string, unknown>, steps = 6) =>
  resolveRecipe({
    seed: 5,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method, config, steps, batch: 4, lr: 3e-3, checkpointEvery: 1 },
      { stage: 'evaluate' },
    ],
  });
const stepLosses = (dir: string) => events(dir).filter((e) => e.event === 'step' && e.stage === 1).map((e) => e.loss!);

describe('train method adams (CAST)', () => {
  const config = { n: 2, m: 4, lambda: 0.05, every: 2, scaling: 'learned', distill: 0.6, temperature: 2 };

  it('step 1 is (1 - distill) x the dense loss; scales train; s (M W) at the end; resumes exactly', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipeWith('adams', config), { dir: whole, ...quiet });
    const dense = join(tmp, 'dense');
    await startRun(recipeWith('dense', {}), { dir: dense, ...quiet });
    expect(stepLosses(whole)[0]).toBeCloseTo(0.4 * stepLosses(dense)[0]!, 5);

    const broken = join(tmp, 'broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipeWith('adams', config), broken, [2, 4].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'castScales' })), (s, cp) => void seen.set(s.resumeAt, cp));
    await expectSameRun(whole, broken);

    const at4 = seen.get(4)!;
    const scales = at4.stageState!.castScales as Record<string, Float32Array>;
    for (const n of LINEARS) {
      // every row scale received gradient and moved off 1
      expect(scales[n]!.length, n).toBe(at4.params.get(n)!.shape[0]);
      expect(Array.from(scales[n]!).every((x) => x !== 1), n).toBe(true);
    }
    // the teacher is the weights the stage started from, unchanged by training
    const teacher = at4.stageState!.castTeacher as Record<string, Float32Array>;
    expect(Array.from(teacher[LINEARS[0]!]!)).toEqual(Array.from(seen.get(2)!.stageState!.castTeacher![LINEARS[0]! as never] as Float32Array));

    const end = await readCheckpoint(whole);
    for (const n of LINEARS) {
      const w = end.params.get(n)!;
      const mask = end.masks.get(n)!;
      expect(isNM(mask, { n: 2, m: 4, exact: true }).valid, n).toBe(true);
      for (let q = 0; q < w.data.length; q++) if (!isKept(mask, q)) expect(w.data[q], `${n}[${q}]`).toBe(0);
    }
  }, 300_000);

  it('without distillation the checkpoint carries no teacher, and the end is still exact N:M', async () => {
    const dir = join(tmp, 'no-distill');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipeWith('adams', { ...config, distill: 0 }, 2), dir, [{ stage: 1, step: 2, resumeAt: 1, state: 'castScales' }], (s, cp) => void seen.set(s.resumeAt, cp));
    expect(seen.get(1)!.stageState!.castTeacher).toBeUndefined();
    const end = await readCheckpoint(dir);
    for (const n of LINEARS) expect(isNM(end.masks.get(n)!, { n: 2, m: 4, exact: true }).valid, n).toBe(true);
  }, 120_000);

  it('refuses a bad config naming the field', () => {
    expect(() => recipeWith('adams', { n: 2, m: 4, scaling: 'post-hoc' })).toThrow(/scaling/);
    expect(() => recipeWith('adams', { n: 2, m: 4, distill: 1.5 })).toThrow(/distill/);
  });
});
