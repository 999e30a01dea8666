// train method 'static': the random masks hold exactly the ER / ERK counts of layerBudgets (computed here on
// their own), never change over the stage (the masks at every stop equal the final ones, and the weights off
// them and their Adam moments stay exactly 0), a stopped run resumes to the same losses, the masks are the
// ones set starts from at the same seed, and a pruned run's masks are kept as they are.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, layerBudgets, type Mask } from '@sparse/masks';
import { afterAll, describe, expect, it } from 'vitest';
import { createModel } from '../../model/index.js';
import type { LinearInfo } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { loadRunData } from '../../run/data.js';
import { startRun } from '../../run/runner.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-static-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };

function linearsOf(seed: number): LinearInfo[] {
  const recipe = resolveRecipe({ seed, model: MODEL, stages: [{ stage: 'evaluate' }] });
  const model = createModel({ ...MODEL, vocab: loadRunData(recipe.data).main.tokenizer.vocabSize }, { seed });
  const out = model.linears();
  model.dispose();
  return out;
}

/** Each layer's keep count straight from layerBudgets over [out, in] in model order. */
function budgetOf(linears: readonly LinearInfo[], sparsity: number, method: 'er' | 'erk'): Map<string, number> {
  const b = layerBudgets(linears.map((l) => ({ shape: [l.out, l.in] })), sparsity, { method });
  return new Map(linears.map((l, i) => [l.name, b[i]!.keep]));
}

/** Exactly `keep` entries per layer, weights and Adam moments exactly 0 off the mask. */
function expectMasked(cp: CheckpointContent, budget: Map<string, number>, where: string): void {
  for (const [n, keep] of budget) {
    const m = cp.masks.get(n)!;
    expect(count(m), `${where}: ${n}`).toBe(keep);
    expectZeroOffMask(cp, n, m, where);
  }
}

const bitsOf = (masks: Map<string, Mask>) => new Map([...masks].map(([n, m]) => [n, Array.from(m.bits)]));

describe('train method static', () => {
  for (const budget of ['er', 'erk'] as const) {
    it(`${budget}: random masks with exactly layerBudgets' counts, unchanged through the stage, zeros kept through Adam, exact resume`, async () => {
      const sparsity = budget === 'er' ? 0.85 : 0.8;
      const recipe = resolveRecipe({
        seed: 6,
        model: MODEL,
        eval: { windows: 4, batch: 4 },
        stages: [{ stage: 'train', method: 'static', config: { sparsity, budget }, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 3 }, { stage: 'evaluate' }],
      });
      const linears = linearsOf(6);
      const want = budgetOf(linears, sparsity, budget);
      // the budgets differ between layers (so the test tells ER/ERK from uniform)
      expect(new Set(linears.map((l) => want.get(l.name)! / (l.out * l.in))).size).toBeGreaterThan(1);
      const whole = join(tmp, `${budget}-whole`);
      const summary = await startRun(recipe, { dir: whole, ...quiet });
      expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
      const end = await readCheckpoint(whole);
      expectMasked(end, want, 'end');
      const final = bitsOf(end.masks);
      const drawn = events(whole).filter((e) => e.event === 'static') as unknown as { step: number; kept: Record<string, number> }[];
      expect(drawn).toHaveLength(1);
      expect(drawn[0]!.kept).toEqual(Object.fromEntries(want));
      // stopped after the checkpoints at 3 and 6: the masks there are already the final ones
      const broken = join(tmp, `${budget}-broken`);
      const seen: Map<string, number[]>[] = [];
      await runWithStops(
        recipe,
        broken,
        [
          { stage: 0, step: 4, resumeAt: 3, state: 'static' },
          { stage: 0, step: 8, resumeAt: 6, state: 'static' },
        ],
        (s, cp) => {
          expectMasked(cp, want, `checkpoint at ${s.resumeAt}`);
          seen.push(bitsOf(cp.masks));
        },
      );
      expect(seen).toHaveLength(2);
      for (const b of seen) expect(b).toEqual(final);
      await expectSameRun(whole, broken);
      // the active weights trained: some differ from the initial model's
      const init = createModel({ ...MODEL, vocab: loadRunData(recipe.data).main.tokenizer.vocabSize }, { seed: 6 });
      for (const l of linears) {
        const w0 = init.params[l.name]!.dataSync() as Float32Array;
        const w1 = end.params.get(l.name)!.data;
        expect(w1.some((x, q) => x !== 0 && x !== w0[q]), l.name).toBe(true);
      }
      init.dispose();
    }, 300_000);
  }

  it('draws the masks set starts from (the same seed stream): static and a set stage that never rewires end on the same masks', async () => {
    const masksOf = async (method: string, seed: number, extra: Record<string, unknown> = {}) => {
      const dir = join(tmp, `same-${method}-${seed}`);
      const stage = { stage: 'train', method, config: { sparsity: 0.8, budget: 'erk', ...extra }, steps: 3, batch: 4 };
      await startRun(resolveRecipe({ seed, model: MODEL, stages: [stage] }), { dir, ...quiet });
      return bitsOf((await readCheckpoint(dir)).masks);
    };
    const a = await masksOf('static', 12);
    expect(a).toEqual(await masksOf('set', 12, { every: 100 }));
    expect(a).not.toEqual(await masksOf('static', 13));
  }, 120_000);

  it("keeps a pruned run's masks bit for bit", async () => {
    const recipe = resolveRecipe({
      seed: 3,
      model: MODEL,
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.6 } },
        { stage: 'export', formats: ['dense'] },
        { stage: 'train', method: 'static', steps: 4, batch: 4 },
      ],
    });
    const dir = join(tmp, 'pruned');
    await startRun(recipe, { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    const linears = linearsOf(3);
    expectMasked(cp, new Map(linears.map((l) => [l.name, Math.round(0.4 * l.out * l.in)])), 'end');
    // the masks are the prune stage's: the exported (pruned) weights are zero exactly off them
    const { loadExportedModel } = await import('../../stages/export.js');
    const pruned = await loadExportedModel(join(dir, 'exports', 'model.safetensors'));
    for (const l of linears) {
      const w = pruned.params[l.name]!.dataSync() as Float32Array;
      const m = cp.masks.get(l.name)!;
      for (let q = 0; q < w.length; q++) expect(isKept(m, q), `${l.name}[${q}]`).toBe(w[q] !== 0);
    }
    pruned.dispose();
  }, 120_000);

  it('refuses a stage whose layers are only partly pruned', async () => {
    const recipe = resolveRecipe({
      seed: 3,
      model: MODEL,
      stages: [
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 }, targets: ['mlp.up'] },
        { stage: 'train', method: 'static', steps: 2, batch: 4 },
      ],
    });
    await expect(startRun(recipe, { dir: join(tmp, 'partial'), ...quiet })).rejects.toThrow(/stages\[1\]: static needs all or none of its layers pruned/);
  }, 120_000);
});
