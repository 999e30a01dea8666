// train method 'exploration' (DST with an exploration bonus): the activity counts equal a step-by-step
// brute-force count of the steps each entry spent in its mask; the bonus is c · sqrt(ln t / (1 + n)) written
// out here; an update regrows exactly the inactive entries with the largest |dense gradient| + bonus
// (gradient from tf.grad here), which differ from RigL's pure-gradient choice; every layer keeps its ERK
// count; inactive weights stay exactly 0 through Adam; the counts ride in the checkpoint and a stopped run
// resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, layerBudgets, maskIndices } from '@sparse/masks';
import { explorationConfigSchema } from '@sparse/masks/schemas';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { sampleBatch } from '../../data/dataset.js';
import { createModel } from '../../model/index.js';
import type { LinearInfo } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { NamedAdam } from '../../train/adam.js';
import { ActivityCounts, explorationBonus, type ActivityState } from './activity.js';
import { denseGradients, initialMasks, rewire } from './dst.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-exploration-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A run context on a fresh tiny GPT with random ERK masks at 80%, weights outside them zeroed. */
function context(): { ctx: RunContext; layers: LinearInfo[] } {
  const recipe = resolveRecipe({ seed: 5, model: MODEL, stages: [{ stage: 'train', method: 'masked', steps: 1, batch: 4 }] });
  const data = loadRunData(recipe.data);
  const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 5 });
  const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, `m${Math.random()}.jsonl`), 'quiet', { stdout: silent, stderr: silent }), backend);
  const layers = ctx.linears();
  for (const [n, m] of initialMasks(layers, { sparsity: 0.8, budget: 'erk' }, new Random(1))) {
    ctx.setMask(n, m);
    const p = ctx.model.params[n]!;
    p.assign(tf.tensor(Float32Array.from(p.dataSync() as Float32Array).map((x, i) => (isKept(m, i) ? x : 0)), p.shape));
  }
  return { ctx, layers };
}

function batchOf(ctx: RunContext, seed: number): { ids: tf.Tensor2D; targets: tf.Tensor2D } {
  const b = sampleBatch(ctx.data.main.train, 4, MODEL.ctx, new Random(seed));
  return { ids: tf.tensor2d(b.inputs, [4, MODEL.ctx], 'int32'), targets: tf.tensor2d(b.targets, [4, MODEL.ctx], 'int32') };
}

/** One masked Adam step on a fixed batch. */
function adamStep(ctx: RunContext, optimizer: NamedAdam, seed: number): void {
  const hooks = ctx.hooks({ maskBase: true });
  const vars = Object.entries(ctx.model.params);
  const { ids, targets } = batchOf(ctx, seed);
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => ctx.model.loss(ids, targets, hooks), vars.map(([, v]) => v));
    optimizer.apply(vars.map(([key, variable]) => ({ key, variable, grad: grads[variable.name]! })), 1e-2);
  });
  tf.dispose([ids, targets]);
}

const values = (ctx: RunContext, name: string) => Float32Array.from(ctx.model.params[name]!.dataSync() as Float32Array);

describe('exploration: counts, bonus and one update', () => {
  it('explorationBonus is c · sqrt(ln t / (1 + n)) entry by entry', () => {
    const counts = Int32Array.from([0, 1, 2, 7, 40, 0, 1000]);
    for (const [t, c] of [[1, 0.5], [2, 1e-3], [37, 0.2], [600, 3]] as const) {
      const b = explorationBonus(counts, t, c);
      counts.forEach((n, i) => expect(b[i]).toBeCloseTo(Math.fround(c * Math.sqrt(Math.log(t) / (1 + n))), 7));
    }
    expect(Array.from(explorationBonus(counts, 1, 5))).toEqual(Array.from(counts, () => 0));
    expect(() => explorationBonus(counts, 0, 1)).toThrow(/t must be a positive integer/);
  });

  it('counts equal a step-by-step count of active steps; each update regrows the top |grad| + bonus among inactive entries (brute force), unlike RigL', () => {
    const { ctx, layers } = context();
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    const activity = ActivityCounts.fresh(layers);
    // brute force: after every step, +1 for each entry of the mask that step trained through
    const brute = new Map(layers.map((l) => [l.name, new Int32Array(l.out * l.in)]));
    const rng = new Random(3);
    const c = 2e-3;
    let differsFromRigL = 0;
    for (let t = 1; t <= 12; t++) {
      // step t trains through the current masks
      adamStep(ctx, optimizer, 50 + t);
      for (const l of layers) for (const i of maskIndices(ctx.masks.get(l.name)!)) brute.get(l.name)![i]!++;
      if (t % 3 !== 0) continue;
      // an update after t steps done
      activity.advance(t, (n) => ctx.masks.get(n)!);
      for (const l of layers) expect(Array.from(activity.counts.get(l.name)!), `${l.name} after ${t}`).toEqual(Array.from(brute.get(l.name)!));
      const { ids, targets } = batchOf(ctx, 900 + t);
      const grads = denseGradients(ctx, layers, ids, targets);
      // the dense gradient of one layer at W ⊙ M, independently (tf.grad through the model)
      const l0 = layers[0]!;
      const g0 = tf.tidy(() => {
        const hooks = ctx.hooks({ maskBase: true });
        const eff = tf.mul(ctx.model.params[l0.name]!, ctx.maskTensor(l0.name)!);
        return Float32Array.from(tf.grad((x: tf.Tensor) => ctx.model.loss(ids, targets, { weight: (n, p) => (n === l0.name ? x : hooks.weight!(n, p)) }))(eff).dataSync() as Float32Array);
      });
      tf.dispose([ids, targets]);
      g0.forEach((x, i) => expect(Math.abs(grads.get(l0.name)![i]! - x)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(x)));
      const bonus = new Map(layers.map((l) => [l.name, explorationBonus(activity.counts.get(l.name)!, t, c)]));
      const before = new Map(layers.map((l) => [l.name, { mask: ctx.masks.get(l.name)!, w: values(ctx, l.name) }]));
      const fraction = 0.3;
      const r = rewire(ctx, layers, { fraction, rng, grads, bonus, optimizer });
      const state = optimizer.state();
      for (const l of layers) {
        const { mask, w } = before.get(l.name)!;
        const g = grads.get(l.name)!;
        const n = brute.get(l.name)!;
        const active = Array.from(maskIndices(mask));
        const inactive = Array.from({ length: w.length }, (_, i) => i).filter((i) => !isKept(mask, i));
        const d = Math.min(Math.round(fraction * active.length), inactive.length);
        // the acquisition score written out: |g| + c·sqrt(ln t / (1 + n)), in float32 as the scores are held
        const score = (i: number) => Math.fround(Math.abs(g[i]!) + Math.fround(c * Math.sqrt(Math.log(t) / (1 + n[i]!))));
        const grownRef = [...inactive].sort((a, b) => score(b) - score(a) || a - b).slice(0, d);
        const droppedRef = [...active].sort((a, b) => Math.abs(w[a]!) - Math.abs(w[b]!) || b - a).slice(0, d);
        const x = r.get(l.name)!;
        expect(Array.from(x.grown), `${l.name} at ${t}`).toEqual(grownRef.sort((a, b) => a - b));
        expect(Array.from(x.dropped), `${l.name} at ${t}`).toEqual(droppedRef.sort((a, b) => a - b));
        const rigl = [...inactive].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!) || a - b).slice(0, d);
        if (rigl.sort((a, b) => a - b).join() !== Array.from(x.grown).join()) differsFromRigL++;
        // the layer keeps its count; regrown and dropped weights are exactly 0 with zero moments
        expect(count(ctx.masks.get(l.name)!)).toBe(active.length);
        const after = values(ctx, l.name);
        for (const i of [...x.grown, ...x.dropped]) {
          expect(Object.is(after[i], 0), `${l.name}[${i}]`).toBe(true);
          expect([state.m[l.name]!.data[i], state.v[l.name]!.data[i]]).toEqual([0, 0]);
        }
      }
    }
    // the bonus changed the choice somewhere (else this would only test RigL)
    expect(differsFromRigL).toBeGreaterThan(0);
    // inactive weights are exactly 0 after all the steps
    for (const l of layers) {
      const w = values(ctx, l.name);
      const m = ctx.masks.get(l.name)!;
      for (let i = 0; i < w.length; i++) if (!isKept(m, i)) expect(w[i]).toBe(0);
    }
    // a checkpoint's state restores the same counts
    const back = ActivityCounts.fromState(activity.state(), layers);
    expect(back.since).toBe(12);
    for (const l of layers) expect(back.counts.get(l.name)).toEqual(activity.counts.get(l.name));
    optimizer.dispose();
    ctx.dispose();
  });
});

describe('exploration from a recipe', () => {
  it('rewires on RigL\'s cosine schedule at ERK counts, the counts ride in the checkpoint, and it resumes exactly', async () => {
    const config = { sparsity: 0.8, budget: 'erk', every: 2, end: 0.75, fraction: 0.5, c: 5e-3 };
    const recipe = resolveRecipe({ seed: 2, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [{ stage: 'train', method: 'exploration', config, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 3 }, { stage: 'evaluate' }] });
    expect(explorationConfigSchema.parse(config).c).toBe(5e-3);
    const recipeModel = createModel({ ...MODEL, vocab: loadRunData(recipe.data).main.tokenizer.vocabSize }, { seed: 2 });
    const linears = recipeModel.linears();
    recipeModel.dispose();
    const b = layerBudgets(linears.map((l) => ({ shape: [l.out, l.in] })), 0.8, { method: 'erk' });
    const budget = new Map(linears.map((l, i) => [l.name, b[i]!.keep]));
    /** Each layer holds its budget, weights and moments off the mask are 0, and the counts add up. */
    const check = (cp: CheckpointContent, where: string) => {
      for (const [n, keep] of budget) {
        const m = cp.masks.get(n)!;
        expect(count(m), `${where}: ${n}`).toBe(keep);
        const w = cp.params.get(n)!.data;
        const mo = cp.optimizer?.m[n]?.data;
        for (let q = 0; q < w.length; q++) if (!isKept(m, q) && (w[q] !== 0 || (mo && mo[q] !== 0))) throw new Error(`${where}: ${n}[${q}] off the mask is ${w[q]}`);
      }
      const a = cp.stageState?.activity as ActivityState | undefined;
      if (a === undefined) return;
      // every step trains exactly `keep` entries of each layer: the counts up to `since` add up to keep · since
      for (const [n, keep] of budget) {
        const c = a.counts[n]!;
        expect(c).toBeInstanceOf(Int32Array);
        expect(c.reduce((s, x) => s + x, 0), `${where}: ${n}`).toBe(keep * a.since);
        expect(Math.max(...c)).toBeLessThanOrEqual(a.since);
      }
    };
    const whole = join(tmp, 'whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    check(await readCheckpoint(whole), 'end');
    const rewires = events(whole).filter((e) => e.event === 'rewire') as unknown as { step: number; fraction: number; rewired: Record<string, number>; fresh: Record<string, number> }[];
    expect(rewires.map((e) => e.step)).toEqual([2, 4, 6, 8]);
    for (const e of rewires) {
      const f = (0.5 / 2) * (1 + Math.cos((Math.PI * e.step) / 9));
      expect(e.fraction).toBeCloseTo(f, 12);
      for (const [n, keep] of budget) expect(e.rewired[n]).toBe(Math.round(f * keep));
      for (const [n] of budget) expect(e.fresh[n]).toBeLessThanOrEqual(e.rewired[n]!);
    }
    // the first update regrows only entries never active before (all inactive ones are fresh then)
    for (const [n] of budget) expect(rewires[0]!.fresh[n]).toBe(rewires[0]!.rewired[n]);
    const broken = join(tmp, 'broken');
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 0, step: 4, resumeAt: 3, state: 'activity' },
        { stage: 0, step: 10, resumeAt: 9, state: 'activity' },
      ],
      (s, cp) => {
        check(cp, `checkpoint at ${s.resumeAt}`);
        // the counts are as of the last update before the checkpoint
        expect((cp.stageState!.activity as ActivityState).since).toBe(s.resumeAt === 3 ? 2 : 8);
      },
    );
    await expectSameRun(whole, broken);
    expect(events(broken).filter((e) => e.event === 'rewire').map((e) => e.step)).toEqual([2, 4, 6, 8]);
  }, 300_000);
});
