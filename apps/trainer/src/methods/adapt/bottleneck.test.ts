// Bottleneck adapters (SparseAdapter's and MoSA's form 'bottleneck') in a run: refused with merge: true
// (naming merge and the reason), trained with merge: false through the layers' product term so the
// later evaluation differs from the pretrained one, saved as a PEFT folder; a MoSA run stopped inside the
// stage resumes to the same losses (its module draws ride in the checkpoint).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPEFTAdapter } from '@sparse/lora-variants/node';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-bottleneck-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const recipe = (method: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  resolveRecipe({
    seed: 3,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'evaluate', name: 'before', data: ['shifted'] },
      { stage: 'adapt', name: 'ft', method, config, merge: false, steps: 6, batch: 4, lr: 2e-2, data: 'shifted', checkpointEvery: 2, ...extra },
      { stage: 'evaluate', name: 'after', data: ['shifted'] },
      { stage: 'export', formats: ['adapters'] },
    ],
  });

describe('bottleneck adapters in a run', () => {
  it('are refused with merge: true, naming the stage field and why', () => {
    for (const method of ['sparse-adapter', 'mosa']) {
      expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'adapt', method, config: { r: 2, form: 'bottleneck' } }] })).toThrow(/stages\[0\]\.merge: .*cannot merge into the weights: form 'bottleneck'.*merge: false/);
    }
  });

  for (const [method, config] of [['sparse-adapter', { r: 4, sparsity: 0.5, form: 'bottleneck' }], ['mosa', { r: 4, modules: 2, form: 'bottleneck', activation: 'gelu' }]] as const) {
    it(`${method}: trains through the product term, later stages run through it, the PEFT folder holds it`, async () => {
      const dir = join(tmp, method);
      const summary = await startRun(recipe(method, config), { dir, ...quiet });
      const [before, after] = summary.evaluations;
      expect(Math.abs(after!.perplexity - before!.perplexity)).toBeGreaterThan(1e-3);
      const [name] = readdirSync(join(dir, 'exports', 'adapters'));
      const a = await loadPEFTAdapter(join(dir, 'exports', 'adapters', name!));
      expect(a.variant).toBe(method);
      expect((a.config as { form: string }).form).toBe('bottleneck');
      const up = method === 'mosa' ? 'lora_B' : 'sa_B';
      for (const s of Object.values(a.modules)) expect(s.params[up]!.data.some((v) => v !== 0)).toBe(true);
    }, 300_000);
  }

  it('mosa bottleneck: a run stopped inside the stage resumes to the losses of an uninterrupted one', async () => {
    const r = recipe('mosa', { r: 4, modules: 3, form: 'bottleneck' });
    const whole = join(tmp, 'whole');
    await startRun(r, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(r, broken, [{ stage: 2, step: 5, resumeAt: 4, state: 'adapter' }]);
    await expectSameRun(whole, broken);
  }, 300_000);
});
