// The diff-pruning adapt stage: on a 50%-pruned base its delta lies inside the mask and within the
// density budget, merging adds exactly that delta to the weights (a merge: false run of the same seed
// gives the base), a strong L0 penalty leaves fewer open gates than none, and a stopped and resumed
// run matches an uninterrupted one step for step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept } from '@sparse/masks';
import { loadSparseDeltas } from '@sparse/lora-variants/node';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-diff-pruning-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function recipeWith(config: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return resolveRecipe({
    seed: 6,
    model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
    eval: { windows: 2, batch: 2 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 } },
      { stage: 'adapt', method: 'diff-pruning', config, steps: 8, batch: 4, lr: 5e-2, ...extra },
    ],
  });
}

const deltasOf = (dir: string) => loadSparseDeltas(join(dir, 'exports', 'sft', 'adapt_diff-pruning_2.safetensors'));

describe('diff-pruning stage', () => {
  it('keeps its delta inside the mask and the density budget, and merging adds exactly that delta', async () => {
    const merged = join(tmp, 'merged');
    const base = join(tmp, 'base');
    await startRun(recipeWith({ density: 0.05 }), { dir: merged, ...quiet });
    await startRun(recipeWith({ density: 0.05 }, { merge: false }), { dir: base, ...quiet });
    const deltas = await deltasOf(merged);
    expect(await deltasOf(base)).toEqual(deltas);
    const after = await readCheckpoint(merged);
    const before = await readCheckpoint(base);
    expect(Object.keys(deltas).length).toBeGreaterThan(0);
    for (const [name, d] of Object.entries(deltas)) {
      const mask = before.masks.get(name)!;
      const size = d.shape[0] * d.shape[1];
      expect(d.indices.length).toBeGreaterThan(0);
      expect(d.indices.length).toBeLessThanOrEqual(Math.round(0.05 * size));
      for (const k of d.indices) expect(isKept(mask, k), `${name}[${k}]`).toBe(true);
      const w0 = before.params.get(name)!.data as Float32Array;
      const w1 = after.params.get(name)!.data as Float32Array;
      const expected = Float32Array.from(w0);
      d.indices.forEach((k, i) => (expected[k] = w0[k]! + d.values[i]!));
      expect(w1).toEqual(expected);
      // pruned entries stay exactly 0 after the merge
      for (let k = 0; k < size; k++) if (!isKept(mask, k)) expect(w1[k]).toBe(0);
    }
  }, 120_000);

  it('a strong L0 penalty closes more gates than none', async () => {
    const none = join(tmp, 'lambda0');
    const strong = join(tmp, 'lambda50');
    // long enough at a high lr for log α to move past the gate's closing point (about −2.4)
    await startRun(recipeWith({ lambda: 0 }, { steps: 30, lr: 0.2 }), { dir: none, ...quiet });
    await startRun(recipeWith({ lambda: 50 }, { steps: 30, lr: 0.2 }), { dir: strong, ...quiet });
    const count = async (dir: string) => Object.values(await deltasOf(dir)).reduce((n, d) => n + d.indices.length, 0);
    expect(await count(strong)).toBeLessThan(await count(none));
  }, 120_000);

  it('resumes exactly inside the stage', async () => {
    const recipe = recipeWith({ lambda: 1 }, { checkpointEvery: 3 });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 2, step: 5, resumeAt: 3, state: 'diff' }]);
    await expectSameRun(whole, broken);
    expect(await deltasOf(broken)).toEqual(await deltasOf(whole));
  }, 120_000);
});
