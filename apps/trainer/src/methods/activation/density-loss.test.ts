// DEFT's density loss from a recipe: an adapt stage (LoRA, the paper's parameter-efficient setting) and an
// activation stage's fine-tuning with `densityLoss` end with fewer nonzero MLP activations than the same
// stage whose density term is negligible; the logged density is the share counted here on the same windows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { events, quiet } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-density-loss-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16, activation: 'relu' as const };

async function densityAfter(stage: Record<string, unknown>, weight: number, name: string): Promise<{ before: number; after: number }> {
  const recipe = resolveRecipe({
    seed: 3,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [{ stage: 'pretrain', steps: 20, batch: 4 }, { stage: 'calibrate', windows: 16 }, { ...stage, densityLoss: { weight } }, { stage: 'evaluate' }],
  });
  const dir = join(tmp, name);
  await startRun(recipe, { dir, ...quiet });
  const e = events(dir).find((x) => x.event === 'density-loss') as unknown as { before: number; after: number } | undefined;
  expect(e, name).toBeDefined();
  return e!;
}

describe('density loss (DEFT)', () => {
  it('a LoRA adapt stage with the density loss ends with sparser MLP activations than without it', async () => {
    const lora = { stage: 'adapt', method: 'lora', config: { r: 4 }, steps: 30, batch: 4, lr: 0.02, merge: true };
    const off = await densityAfter(lora, 1e-9, 'lora-off');
    const on = await densityAfter(lora, 2, 'lora-on');
    expect(on.before).toBe(off.before);
    expect(on.after).toBeLessThan(off.after - 0.02);
    expect(on.after).toBeLessThan(on.before);
  }, 300_000);

  it("an activation stage's fine-tuning with the density loss too", async () => {
    const tune = { stage: 'activation', method: 'relu', steps: 30, batch: 4, lr: 0.01 };
    const off = await densityAfter(tune, 1e-9, 'tune-off');
    const on = await densityAfter(tune, 2, 'tune-on');
    expect(on.after).toBeLessThan(off.after - 0.02);
  }, 300_000);
});
