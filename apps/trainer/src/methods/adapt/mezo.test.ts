// The masked zeroth-order adapt methods against selections computed here independently: sensitive MeZO's
// entries are the global top-k of E[g²] (per-batch tf.grad on the same calibration windows, then a plain
// sort) and only they change; Sparse MeZO's mask, re-chosen every `every` steps, is the smallest-|w|
// selection of the weights the step left; both resume inside the stage exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { resolveRecipe } from '../../recipe/load.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { startRun } from '../../run/runner.js';
import { selectLinears } from '../../stages/common.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { supportScoreBatches } from './adapter.js';
import { prune2of4, testContext, weightGradientsOf } from '../../testing/context.js';
import { sensitiveMasks, sensitiveMeZOMethod, sparseMeZOMethod } from './mezo.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-adapt-mezo-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A run context for a one-stage adapt recipe on a fresh tiny GPT, its linear weights 2:4-pruned by |W|. */
function contextFor(stage: Record<string, unknown>): { ctx: RunContext; stage: StageOf<'adapt'> } {
  const recipe = resolveRecipe({ seed: 4, model: MODEL, stages: [{ stage: 'adapt', batch: 4, supportBatches: 3, ...stage }] });
  const ctx = testContext(recipe, MODEL, tmp, backend, 4);
  prune2of4(ctx);
  return { ctx, stage: recipe.stages[0] as StageOf<'adapt'> };
}

const weightsOf = (ctx: RunContext, names: string[]) => names.map((n) => Float32Array.from(ctx.model.params[n]!.dataSync() as Float32Array));
/** The kept (unpruned) entries of each layer; the contexts above zero exactly the pruned ones. */
const keptOf = (ctx: RunContext, names: string[]) => names.map((n) => Uint8Array.from(ctx.maskTensor(n)!.dataSync() as Float32Array, (v) => (v !== 0 ? 1 : 0)));

/** Per-batch loss gradients of one weight on the stage's support batches. */
const gradientsOf = (ctx: RunContext, stage: StageOf<'adapt'>, name: string): Float32Array[] => weightGradientsOf(ctx, supportScoreBatches(ctx, stage, 0, 'sensitive-mezo'), name);

const noCheckpoint = async () => {};

describe('sensitive-mezo', () => {
  it('chooses the global top-k of E[g²] over the kept entries and changes only those', async () => {
    const density = 0.02;
    const { ctx, stage } = contextFor({ method: 'sensitive-mezo', config: { density }, steps: 5, lr: 0.05 });
    const layers = selectLinears(ctx.linears(), stage.targets, 'test');
    const names = layers.map((l) => l.name);
    const kept = keptOf(ctx, names);
    // brute force: E[g²] per entry (float32, as scores are stored), all kept entries sorted by score, then layer, then index
    const all: { layer: number; k: number; score: number }[] = [];
    names.forEach((n, i) => {
      const gs = gradientsOf(ctx, stage, n);
      const fisher = Float32Array.from(gs[0]!, (_, j) => gs.reduce((s, g) => s + g[j]! * g[j]!, 0) / gs.length);
      fisher.forEach((score, k) => kept[i]![k] && all.push({ layer: i, k, score }));
    });
    all.sort((a, b) => b.score - a.score || a.layer - b.layer || a.k - b.k);
    const count = Math.max(1, Math.round(density * all.length));
    expect(count).toBeGreaterThan(5);
    const expected = new Set(all.slice(0, count).map((e) => `${e.layer}:${e.k}`));

    const chosen = sensitiveMasks(ctx, stage, 0, layers, density);
    const got = new Set(chosen.flatMap((m, i) => [...m].flatMap((v, k) => (v ? [`${i}:${k}`] : []))));
    expect(got).toEqual(expected);

    const before = weightsOf(ctx, names);
    await sensitiveMeZOMethod.run({ ctx, stage, index: 0, label: 'sensitive', checkpoint: noCheckpoint });
    const after = weightsOf(ctx, names);
    const changed = new Set(after.flatMap((w, i) => [...w].flatMap((x, k) => (x !== before[i]![k] ? [`${i}:${k}`] : []))));
    // every chosen entry moved (five Gaussian steps), nothing else did
    expect(changed).toEqual(expected);
    expect(ctx.report.adapters.at(-1)!.trainable).toBe(count);
  }, 120_000);
});

describe('sparse-mezo every', () => {
  /** The `density` fraction of each layer's kept entries with the smallest |w|, by a plain sort (ties to the lower index). */
  const smallest = (w: Float32Array[], kept: Uint8Array[], density: number) =>
    w.map((wi, i) => {
      const idx = [...wi.keys()].filter((k) => kept[i]![k]).sort((a, b) => Math.abs(wi[a]!) - Math.abs(wi[b]!) || a - b);
      const m = new Uint8Array(wi.length);
      for (const k of idx.slice(0, Math.round(density * idx.length))) m[k] = 1;
      return m;
    });

  it('re-chooses the mask from the weights the step left every `every` steps, keeps it in between', async () => {
    const density = 0.5;
    const every = 2;
    const { ctx, stage } = contextFor({ method: 'sparse-mezo', config: { density, every }, steps: 7, lr: 0.2, checkpointEvery: 1 });
    const names = selectLinears(ctx.linears(), stage.targets, 'test').map((l) => l.name);
    const kept = keptOf(ctx, names);
    const first = smallest(weightsOf(ctx, names), kept, density);
    const seen: { step: number; masks: Uint8Array[]; weights: Float32Array[] }[] = [];
    await sparseMeZOMethod.run({
      ctx,
      stage,
      index: 0,
      label: 'sparse',
      checkpoint: async (step, state) => {
        const masks = state.masks as Record<string, Uint8Array>;
        seen.push({ step, masks: names.map((n) => Uint8Array.from(masks[n]!)), weights: weightsOf(ctx, names) });
      },
    });
    expect(seen.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    let previous = first;
    let recomputedDiffers = 0;
    for (const s of seen) {
      // the mask the checkpoint holds is the one of the next step
      const expected = s.step % every === 0 ? smallest(s.weights, kept, density) : previous;
      expect(s.masks, `step ${s.step}`).toEqual(expected);
      if (s.step % every === 0 && expected.some((m, i) => m.some((v, k) => v !== previous[i]![k]))) recomputedDiffers++;
      // never a pruned entry, always the same count
      s.masks.forEach((m, i) => m.forEach((v, k) => v && expect(kept[i]![k]).toBe(1)));
      expect(s.masks.map((m) => m.reduce((a, b) => a + b, 0))).toEqual(first.map((m) => m.reduce((a, b) => a + b, 0)));
      previous = expected;
    }
    // the re-selection is not a no-op here: the weights moved enough to change the mask
    expect(recomputedDiffers).toBeGreaterThan(0);
  }, 120_000);

  it('every: 0 keeps the stage-start mask', async () => {
    const { ctx, stage } = contextFor({ method: 'sparse-mezo', config: { density: 0.5, every: 0 }, steps: 4, lr: 0.2, checkpointEvery: 1 });
    const names = selectLinears(ctx.linears(), stage.targets, 'test').map((l) => l.name);
    const first = smallest(weightsOf(ctx, names), keptOf(ctx, names), 0.5);
    const masks: Uint8Array[][] = [];
    await sparseMeZOMethod.run({ ctx, stage, index: 0, label: 'sparse', checkpoint: async (_s, state) => void masks.push(names.map((n) => Uint8Array.from((state.masks as Record<string, Uint8Array>)[n]!))) });
    expect(masks).toHaveLength(4);
    for (const m of masks) expect(m).toEqual(first);
  }, 120_000);
});

describe('sensitive-mezo / sparse-mezo resume inside the stage', () => {
  it('continues from the in-stage checkpoint with the losses and weights of an uninterrupted run', async () => {
    const recipe = resolveRecipe({
      seed: 6,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 4, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
        { stage: 'adapt', method: 'sensitive-mezo', config: { density: 0.01 }, steps: 8, batch: 4, lr: 1e-2, supportBatches: 2, checkpointEvery: 3 },
        // re-chosen after steps 4 and 8: the checkpoint at 6 holds the mask of step 4, not one from the weights at 6
        { stage: 'adapt', method: 'sparse-mezo', config: { density: 0.5, every: 4 }, steps: 9, batch: 4, lr: 1e-2, checkpointEvery: 3 },
        { stage: 'evaluate' },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [
      { stage: 2, step: 5, resumeAt: 3, state: 'masks' },
      { stage: 3, step: 8, resumeAt: 6, state: 'masks' },
    ]);
    expect(events(whole).filter((e) => e.event === 'step' && (e.stage === 2 || e.stage === 3))).toHaveLength(17);
    await expectSameRun(whole, broken);
    expect(events(broken).filter((e) => e.event === 'resume')).toHaveLength(2);
    const evalOf = (dir: string) => events(dir).find((e) => e.event === 'eval')!.perplexity;
    expect(evalOf(broken)).toBe(evalOf(whole));
  }, 300_000);
});
