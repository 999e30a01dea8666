// Dynamic sparse training (train methods 'set' and 'rigl'): every layer holds exactly its layerBudgets
// count of active weights after any number of updates (budgets computed here independently); RigL
// regrows exactly the inactive entries with the largest |dense gradient| (gradient computed here with
// tf.grad through the model at W ⊙ M) and drops the smallest |w|, the regrown ones at 0 with zero Adam
// moments; SET regrows among inactive entries only; the number rewired follows the cosine (RigL) or
// constant (SET) fraction; inactive weights stay exactly 0 through Adam; a stopped and resumed run
// matches an uninterrupted one step for step; and both start from a pruned run's masks, keeping counts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, countPerRow, isKept, layerBudgets, maskIndices, type Mask } from '@sparse/masks';
import { riglConfigSchema, setConfigSchema } from '@sparse/masks/schemas';
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
import { denseGradients, initialMasks, rewire, type DSTConfig } from './dst.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-dst-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Each layer's keep count for a global sparsity, straight from layerBudgets over the linear layers in model order. */
function budgetOf(linears: readonly LinearInfo[], sparsity: number, method: 'uniform' | 'er' | 'erk'): Map<string, number> {
  const b = layerBudgets(linears.map((l) => ({ shape: [l.out, l.in] })), sparsity, { method });
  return new Map(linears.map((l, i) => [l.name, b[i]!.keep]));
}

let runs = 0;
/** A run context on a fresh tiny GPT with random masks of cfg's budget, weights outside them zeroed. */
function contextFor(cfg: DSTConfig): { ctx: RunContext; layers: LinearInfo[] } {
  const recipe = resolveRecipe({ seed: 5, model: MODEL, stages: [{ stage: 'train', method: 'masked', steps: 1, batch: 4 }] });
  const data = loadRunData(recipe.data);
  const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 5 });
  const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, `m${runs++}.jsonl`), 'quiet', { stdout: silent, stderr: silent }), backend);
  const layers = ctx.linears();
  for (const [n, m] of initialMasks(layers, cfg, new Random(1))) {
    ctx.setMask(n, m);
    const p = ctx.model.params[n]!;
    const w = Float32Array.from(p.dataSync() as Float32Array).map((x, i) => (isKept(m, i) ? x : 0));
    p.assign(tf.tensor(w, p.shape));
  }
  return { ctx, layers };
}

function batchOf(ctx: RunContext, seed: number): { ids: tf.Tensor2D; targets: tf.Tensor2D } {
  const b = sampleBatch(ctx.data.main.train, 4, MODEL.ctx, new Random(seed));
  return { ids: tf.tensor2d(b.inputs, [4, MODEL.ctx], 'int32'), targets: tf.tensor2d(b.targets, [4, MODEL.ctx], 'int32') };
}

/** A few masked Adam steps, so the active weights have nonzero moments. */
function adamSteps(ctx: RunContext, optimizer: NamedAdam, n: number): void {
  const hooks = ctx.hooks({ maskBase: true });
  const vars = Object.entries(ctx.model.params);
  for (let s = 0; s < n; s++) {
    const { ids, targets } = batchOf(ctx, 100 + s);
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => ctx.model.loss(ids, targets, hooks), vars.map(([, v]) => v));
      optimizer.apply(vars.map(([key, variable]) => ({ key, variable, grad: grads[variable.name]! })), 1e-2);
    });
    tf.dispose([ids, targets]);
  }
}

const values = (ctx: RunContext, name: string) => Float32Array.from(ctx.model.params[name]!.dataSync() as Float32Array);
const sortedIdx = (xs: Iterable<number>) => Int32Array.from(xs).sort();

describe('one update', () => {
  it('rigl drops the smallest |w| and regrows the inactive entries with the largest |dense gradient| (tf.grad here), at 0 with zero moments', () => {
    const cfg = riglConfigSchema.parse({ sparsity: 0.8, budget: 'erk' });
    const { ctx, layers } = contextFor(cfg);
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    adamSteps(ctx, optimizer, 3);
    const before = new Map(layers.map((l) => [l.name, { mask: ctx.masks.get(l.name)!, w: values(ctx, l.name) }]));
    const { ids, targets } = batchOf(ctx, 7);
    // the dense gradient at W ⊙ M, one layer at a time, independently of denseGradients
    const reference = new Map<string, Float32Array>();
    for (const l of layers) {
      const g = tf.tidy(() => {
        const hooks = ctx.hooks({ maskBase: true });
        const eff = tf.mul(ctx.model.params[l.name]!, ctx.maskTensor(l.name)!);
        return tf.grad((x: tf.Tensor) => ctx.model.loss(ids, targets, { weight: (n, p) => (n === l.name ? x : hooks.weight!(n, p)) }))(eff);
      });
      reference.set(l.name, Float32Array.from(g.dataSync() as Float32Array));
      g.dispose();
    }
    const grads = denseGradients(ctx, layers, ids, targets);
    tf.dispose([ids, targets]);
    const fraction = 0.3;
    const r = rewire(ctx, layers, { fraction, rng: new Random(2), grads, optimizer });
    const state = optimizer.state();
    let regrown = 0;
    for (const l of layers) {
      const { mask, w } = before.get(l.name)!;
      const g = reference.get(l.name)!;
      const gd = grads.get(l.name)!;
      for (let i = 0; i < g.length; i++) expect(Math.abs(gd[i]! - g[i]!), `${l.name}[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(g[i]!));
      const active = maskIndices(mask);
      const inactive = Int32Array.from({ length: w.length }, (_, i) => i).filter((i) => !isKept(mask, i));
      const d = Math.min(Math.round(fraction * active.length), inactive.length);
      // brute force: sort by score, ties to the lower index
      const droppedRef = [...active].sort((a, b) => Math.abs(w[a]!) - Math.abs(w[b]!) || b - a).slice(0, d);
      const grownRef = [...inactive].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!) || a - b).slice(0, d);
      const x = r.get(l.name)!;
      expect(x.dropped, l.name).toEqual(sortedIdx(droppedRef));
      expect(x.grown, l.name).toEqual(sortedIdx(grownRef));
      regrown += x.grown.length;
      // the run mask is the new one, with the same count
      const next = ctx.masks.get(l.name)!;
      expect(count(next)).toBe(count(mask));
      for (const i of x.grown) expect(isKept(next, i)).toBe(true);
      for (const i of x.dropped) expect(isKept(next, i)).toBe(false);
      // regrown and dropped weights are exactly 0, with zero moments; the rest is unchanged
      const after = values(ctx, l.name);
      const m = state.m[l.name]!.data;
      const v = state.v[l.name]!.data;
      for (const i of [...x.grown, ...x.dropped]) {
        expect(Object.is(after[i], 0), `${l.name}[${i}]`).toBe(true);
        expect([m[i], v[i]]).toEqual([0, 0]);
      }
      const changed = new Set([...x.grown, ...x.dropped]);
      for (let i = 0; i < after.length; i++) if (!changed.has(i)) expect(after[i]).toBe(w[i]);
      // the moments of the dropped entries were not zero before (so the reset did something)
      expect(x.dropped.length).toBeGreaterThan(0);
    }
    expect(regrown).toBeGreaterThan(0);
    optimizer.dispose();
    ctx.dispose();
  });

  it("set regrows among inactive entries only; after 25 updates (with Adam in between) each layer holds exactly its budget and inactive weights are exactly 0", () => {
    const cfg = setConfigSchema.parse({ sparsity: 0.85, budget: 'er' });
    const { ctx, layers } = contextFor(cfg);
    const budget = budgetOf(layers, 0.85, 'er');
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    const rng = new Random(9);
    for (let u = 0; u < 25; u++) {
      adamSteps(ctx, optimizer, 1);
      const masks = new Map(layers.map((l) => [l.name, ctx.masks.get(l.name)!]));
      const r = rewire(ctx, layers, { fraction: 0.3, rng, optimizer });
      for (const l of layers) {
        const was = masks.get(l.name)!;
        const x = r.get(l.name)!;
        expect(x.grown.length).toBe(x.dropped.length);
        expect(x.grown.length).toBe(Math.min(Math.round(0.3 * count(was)), l.out * l.in - count(was)));
        for (const i of x.grown) expect(isKept(was, i)).toBe(false);
        for (const i of x.dropped) expect(isKept(was, i)).toBe(true);
        expect(count(ctx.masks.get(l.name)!), l.name).toBe(budget.get(l.name));
      }
    }
    for (const l of layers) {
      const w = values(ctx, l.name);
      const m = ctx.masks.get(l.name)!;
      for (let i = 0; i < w.length; i++) if (!isKept(m, i)) expect(w[i], `${l.name}[${i}]`).toBe(0);
    }
    optimizer.dispose();
    ctx.dispose();
  });
});

/** Weights outside the masks are exactly 0 and every layer holds its budget. */
function expectBudgetKept(cp: CheckpointContent, budget: Map<string, number>): void {
  expect([...cp.masks.keys()].sort()).toEqual([...budget.keys()].sort());
  for (const [n, keep] of budget) {
    const m: Mask = cp.masks.get(n)!;
    expect(count(m), n).toBe(keep);
    const w = cp.params.get(n)!.data;
    let zeros = 0;
    for (let i = 0; i < w.length; i++) {
      if (!isKept(m, i)) {
        expect(w[i], `${n}[${i}]`).toBe(0);
        zeros++;
      }
    }
    expect(zeros).toBe(w.length - keep);
  }
}

function linearsOf(seed: number): LinearInfo[] {
  const recipe = resolveRecipe({ seed, model: MODEL, stages: [{ stage: 'evaluate' }] });
  const model = createModel({ ...MODEL, vocab: loadRunData(recipe.data).main.tokenizer.vocabSize }, { seed });
  const out = model.linears();
  model.dispose();
  return out;
}

interface RewireEvent {
  event: string;
  stage: number;
  step: number;
  fraction: number;
  rewired: Record<string, number>;
}

describe('from a recipe', () => {
  it('rigl from scratch at 80% ERK: rewires on the cosine schedule, keeps the budget and zeros, and resumes exactly', async () => {
    const stage = { stage: 'train', method: 'rigl', config: { sparsity: 0.8, budget: 'erk', every: 2, end: 0.75, fraction: 0.5 }, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 3 };
    const recipe = resolveRecipe({ seed: 2, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [stage, { stage: 'evaluate' }] });
    const linears = linearsOf(2);
    const budget = budgetOf(linears, 0.8, 'erk');
    const size = new Map(linears.map((l) => [l.name, l.out * l.in]));
    const whole = join(tmp, 'rigl-whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    expectBudgetKept(await readCheckpoint(whole), budget);
    // end = round(0.75 * 12) = 9: updates after 2, 4, 6 and 8 steps, d = round(f(t) * keep) with
    // f(t) = 0.5/2 (1 + cos(pi t / 9))
    const rewires = events(whole).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(rewires.map((e) => e.step)).toEqual([2, 4, 6, 8]);
    for (const e of rewires) {
      const f = (0.5 / 2) * (1 + Math.cos((Math.PI * e.step) / 9));
      expect(e.fraction).toBeCloseTo(f, 12);
      for (const [n, keep] of budget) expect(e.rewired[n], `${n} at ${e.step}`).toBe(Math.min(Math.round(f * keep), size.get(n)! - keep));
    }
    // stopped after the checkpoint at 3 (before the update at 4) and after the one at 6 (after it)
    const broken = join(tmp, 'rigl-broken');
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 0, step: 4, resumeAt: 3, state: 'gradBatches' },
        { stage: 0, step: 8, resumeAt: 6, state: 'regrow' },
      ],
      (_s, cp) => expectBudgetKept(cp, budget),
    );
    await expectSameRun(whole, broken);
  }, 300_000);

  it('set starts from a pruned run: each layer keeps its count, the fraction is constant, and it resumes exactly', async () => {
    const recipe = resolveRecipe({
      seed: 3,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.6 } },
        { stage: 'train', method: 'set', config: { every: 3, fraction: 0.2 }, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 4 },
      ],
    });
    const whole = join(tmp, 'set-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const pruned = new Map(linearsOf(3).map((l) => [l.name, Math.round(0.4 * l.out * l.in)]));
    expectBudgetKept(await readCheckpoint(whole), pruned);
    const rewires = events(whole).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(rewires.map((e) => e.step)).toEqual([3, 6, 9]);
    for (const e of rewires) {
      expect(e.fraction).toBe(0.2);
      for (const [n, keep] of pruned) expect(e.rewired[n]).toBe(Math.round(0.2 * keep));
    }
    const broken = join(tmp, 'set-broken');
    await runWithStops(recipe, broken, [{ stage: 2, step: 6, resumeAt: 4, state: 'regrow' }], (_s, cp) => expectBudgetKept(cp, pruned));
    await expectSameRun(whole, broken);
  }, 300_000);

  it('srigl from scratch without neuron ablation (gammaSal 0): every row keeps round(budget / rows) inputs through the updates, zeros stay 0, and it resumes exactly', async () => {
    // with ablation (the default gammaSal) see srigl-ablation.test.ts
    const stage = { stage: 'train', method: 'srigl', config: { sparsity: 0.75, budget: 'erk', every: 2, end: 0.75, fraction: 0.5, gammaSal: 0 }, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 3 };
    const recipe = resolveRecipe({ seed: 4, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [stage] });
    const linears = linearsOf(4);
    const keep = budgetOf(linears, 0.75, 'erk');
    // the fan-in computed here: round(keep / rows), in [1, inputs]
    const fanIn = new Map(linears.map((l) => [l.name, Math.min(l.in, Math.max(1, Math.round(keep.get(l.name)! / l.out)))]));
    const expectFanIn = (cp: CheckpointContent) => {
      for (const l of linears) expect([...new Set(countPerRow(cp.masks.get(l.name)!))], l.name).toEqual([fanIn.get(l.name)]);
      expectBudgetKept(cp, new Map(linears.map((l) => [l.name, l.out * fanIn.get(l.name)!])));
    };
    const whole = join(tmp, 'srigl-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    expectFanIn(await readCheckpoint(whole));
    const rewires = events(whole).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(rewires.map((e) => e.step)).toEqual([2, 4, 6]);
    expect(rewires.some((e) => Object.values(e.rewired).some((d) => d > 0))).toBe(true);
    const broken = join(tmp, 'srigl-broken');
    await runWithStops(recipe, broken, [{ stage: 0, step: 5, resumeAt: 3, state: 'gradBatches' }], (_s, cp) => expectFanIn(cp));
    await expectSameRun(whole, broken);
  }, 300_000);

  it('srigl refuses run masks without a constant fan-in', async () => {
    const recipe = resolveRecipe({ seed: 3, model: MODEL, stages: [{ stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 } }, { stage: 'train', method: 'srigl', steps: 2, batch: 4 }] });
    await expect(startRun(recipe, { dir: join(tmp, 'srigl-unstructured'), ...quiet })).rejects.toThrow(/stages\[1\]: srigl keeps a constant fan-in, but the run's mask of .* has rows with \d+ to \d+ inputs/);
  }, 120_000);

  it('refuses a stage whose layers are only partly pruned, naming them', async () => {
    const recipe = resolveRecipe({
      seed: 3,
      model: MODEL,
      stages: [
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 }, targets: ['mlp.up'] },
        { stage: 'train', method: 'rigl', steps: 2, batch: 4 },
      ],
    });
    await expect(startRun(recipe, { dir: join(tmp, 'partial'), ...quiet })).rejects.toThrow(/stages\[1\]: rigl needs all or none of its layers pruned; .*attn/);
  }, 120_000);
});
