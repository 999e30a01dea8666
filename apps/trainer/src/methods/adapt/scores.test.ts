// Support scores of sparse adapters in the adapt stage: the support the trainer attaches equals the
// top-k / top-blocks / top rows-and-columns of scores computed here independently (per-layer tf.grad on
// the same calibration windows, then plain loops and sorts), the data-free fallback still picks |W|,
// recipes refuse criteria a method cannot use, and a rosa recipe with gradient scores keeps 2:4.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getVariant, listVariants, sparseAdapterVariant } from '@sparse/lora-variants';
import { Random, tensor } from '@sparse/tensor';
import { bruteTopK as topK } from '@sparse/tensor/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { resolveRecipe } from '../../recipe/load.js';
import { listMethods } from '../../recipe/methods.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { startRun } from '../../run/runner.js';
import { expectExportedNM } from '../../testing/export.js';
import { NamedAdam } from '../../train/adam.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { prune2of4, testContext, weightGradientsOf } from '../../testing/context.js';
import { adapterTraining, attachStageAdapter, supportScoreBatches } from './adapter.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-adapt-scores-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A run context for a one-stage adapt recipe on a fresh tiny GPT, its linear weights 2:4-pruned by |W| when `prune`. */
function contextFor(stage: Record<string, unknown>, prune = true): { ctx: RunContext; stage: StageOf<'adapt'> } {
  const recipe = resolveRecipe({ seed: 3, model: MODEL, stages: [{ stage: 'adapt', steps: 1, batch: 4, supportBatches: 3, ...stage }] });
  const ctx = testContext(recipe, MODEL, tmp, backend, 3);
  if (prune) prune2of4(ctx);
  return { ctx, stage: recipe.stages[0] as StageOf<'adapt'> };
}

/** Per-batch loss gradients of one weight on the stage's support batches. */
const gradientsOf = (ctx: RunContext, stage: StageOf<'adapt'>, name: string): Float32Array[] => weightGradientsOf(ctx, supportScoreBatches(ctx, stage, 0), name);

/** Elementwise mean over batches of f(g, w), rounded to float32 as the trainer stores scores. */
function meanOver(gs: Float32Array[], w: Float32Array, f: (g: number, w: number) => number): Float32Array {
  return Float32Array.from(w, (wj, j) => gs.reduce((s, g) => s + f(g[j]!, wj), 0) / gs.length);
}


function attached(ctx: RunContext, stage: StageOf<'adapt'>): Record<string, Record<string, Int32Array>> {
  attachStageAdapter(ctx, stage, 0, 'adapt');
  return Object.fromEntries(Object.entries(ctx.adapter!.model.adapterStates()).map(([n, s]) => [n, (s as unknown as { indices: Record<string, Int32Array> }).indices]));
}

function dispose(ctx: RunContext): void {
  ctx.adapter?.model.deleteAdapter('adapt');
  ctx.dispose();
  ctx.model.dispose();
}

describe('support scores in the adapt stage', () => {
  it('rosa defaults to Fisher scores: the support is the top-k of mean g² over the base nonzeros', () => {
    const { ctx, stage } = contextFor({ method: 'rosa', config: { r: 2, density: 0.05 } });
    expect(stage.supportScores).toBe('fisher');
    const layers = ctx.linears();
    const ref = new Map(layers.map((l) => {
      const w = Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array);
      return [l.name, { w, fisher: meanOver(gradientsOf(ctx, stage, l.name), w, (g) => g * g) }];
    }));
    const got = attached(ctx, stage);
    for (const l of layers) {
      const { w, fisher } = ref.get(l.name)!;
      const k = Math.round(0.05 * l.out * l.in);
      const expected = topK(fisher, k, (q) => w[q] !== 0);
      expect(Array.from(got[l.name]!.support!), l.name).toEqual(expected);
      // a different support than the data-free |W| one: the scores made the choice
      expect(expected, l.name).not.toEqual(topK(Array.from(w, Math.abs), k, (q) => w[q] !== 0));
    }
    dispose(ctx);
  }, 60_000);

  it('smt defaults to |E[g]| summed per block: the top blocks of the block grid', () => {
    const { ctx, stage } = contextFor({ method: 'smt', config: { blockSize: 8, blocks: 2 } }, false);
    expect(stage.supportScores).toBe('gradient');
    const layers = ctx.linears();
    const ref = new Map(layers.map((l) => [l.name, meanOver(gradientsOf(ctx, stage, l.name), new Float32Array(l.out * l.in), (g) => g)]));
    const got = attached(ctx, stage);
    for (const l of layers) {
      const g = ref.get(l.name)!;
      const cols = l.in / 8;
      const sums = new Float64Array((l.out / 8) * cols);
      for (let i = 0; i < l.out; i++) for (let j = 0; j < l.in; j++) sums[Math.floor(i / 8) * cols + Math.floor(j / 8)]! += Math.abs(g[i * l.in + j]!);
      expect(Array.from(got[l.name]!.blocks!), l.name).toEqual(topK(sums, 2));
    }
    dispose(ctx);
  }, 60_000);

  it('losia defaults to sensitivity E[|W ⊙ g|]: rows by summed score, then columns within them', () => {
    const { ctx, stage } = contextFor({ method: 'losia', config: { rows: 0.25, cols: 0.25 } });
    expect(stage.supportScores).toBe('sensitivity');
    const layers = ctx.linears();
    const ref = new Map(layers.map((l) => {
      const w = Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array);
      return [l.name, meanOver(gradientsOf(ctx, stage, l.name), w, (g, wj) => Math.abs(g * wj))];
    }));
    const got = attached(ctx, stage);
    for (const l of layers) {
      const s = ref.get(l.name)!;
      const rowSums = Array.from({ length: l.out }, (_, i) => s.subarray(i * l.in, (i + 1) * l.in).reduce((a, b) => a + b, 0));
      const rows = topK(rowSums, Math.round(0.25 * l.out));
      const colSums = Array.from({ length: l.in }, (_, j) => rows.reduce((a, i) => a + s[i * l.in + j]!, 0));
      expect(Array.from(got[l.name]!.rows!), l.name).toEqual(rows);
      expect(Array.from(got[l.name]!.cols!), l.name).toEqual(topK(colSums, Math.round(0.25 * l.in)));
    }
    dispose(ctx);
  }, 60_000);

  it("sparse-adapter gets the signed mean gradient (its rule ranks B's entries by |E[g] Aᵀ|), from the stage's data stream", () => {
    const { ctx, stage } = contextFor({ method: 'sparse-adapter', config: { r: 2 }, data: 'shifted' });
    expect(stage.supportScores).toBe('gradient');
    // the windows come from the shifted task's training tokens
    const shifted = ctx.data.shifted().train;
    const b0 = supportScoreBatches(ctx, stage, 0)[0]!;
    const row = Array.from(b0.inputs.subarray(0, b0.len)).join(',');
    expect(Array.from({ length: shifted.length - b0.len }, (_, s) => s).some((s) => Array.from(shifted.subarray(s, s + b0.len)).join(',') === row)).toBe(true);
    const layers = ctx.linears();
    const ref = new Map(layers.map((l) => {
      const base = tensor(Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array), [l.out, l.in]);
      const g = meanOver(gradientsOf(ctx, stage, l.name), new Float32Array(l.out * l.in), (x) => x);
      const rng = () => new Random(ctx.recipe.seed * 1000 + 0).fork(l.name);
      return [l.name, {
        signed: sparseAdapterVariant.initWithScores(base, stage.config, rng(), tensor(g, [l.out, l.in])).indices.posB!,
        abs: sparseAdapterVariant.initWithScores(base, stage.config, rng(), tensor(Float32Array.from(g, Math.abs), [l.out, l.in])).indices.posB!,
      }];
    }));
    const got = attached(ctx, stage);
    let signDecides = false;
    for (const l of layers) {
      const { signed, abs } = ref.get(l.name)!;
      expect(Array.from(got[l.name]!.posB!), l.name).toEqual(Array.from(signed));
      signDecides ||= Array.from(signed).join() !== Array.from(abs).join();
    }
    expect(signDecides).toBe(true);
    dispose(ctx);
  }, 60_000);

  it("supportScores: magnitude keeps the data-free rule (rosa: the top-k |W| over the base nonzeros)", () => {
    const { ctx, stage } = contextFor({ method: 'rosa', config: { r: 2, density: 0.05 }, supportScores: 'magnitude' });
    const got = attached(ctx, stage);
    for (const l of ctx.linears()) {
      const w = ctx.model.params[l.name]!.dataSync() as Float32Array;
      expect(Array.from(got[l.name]!.support!), l.name).toEqual(topK(Array.from(w, Math.abs), Math.round(0.05 * l.out * l.in), (q) => w[q] !== 0));
    }
    dispose(ctx);
  }, 60_000);

  it('the variants that declare support scores are exactly those whose initWithScores accepts them', () => {
    const rng = new Random(1);
    const base = tensor(Float32Array.from({ length: 64 * 64 }, () => rng.normal()), [64, 64]);
    const scores = tensor(Float32Array.from({ length: 64 * 64 }, () => rng.uniform(0, 1)), [64, 64]);
    const variants = new Set(listVariants());
    for (const m of listMethods('adapt').filter((x) => variants.has(x.name))) {
      const init = (getVariant(m.name) as { initWithScores?: (...a: unknown[]) => unknown }).initWithScores;
      const accepts = init !== undefined && (() => {
        try {
          init(base, {}, new Random(2), scores);
          return true;
        } catch {
          return false;
        }
      })();
      expect(accepts, `${m.name}: declare supportScores on the variant or remove it`).toBe(getVariant(m.name).supportScores !== undefined);
    }
  });

  it('recipes refuse a criterion the method cannot use, naming the field', () => {
    const stages = (s: Record<string, unknown>) => ({ stages: [{ stage: 'adapt', ...s }] });
    expect(() => resolveRecipe(stages({ method: 'lora', supportScores: 'fisher' }))).toThrow(/stages\[0\]\.supportScores: 'lora' chooses no support from scores/);
    expect(() => resolveRecipe(stages({ method: 'sparse-adapter', supportScores: 'sensitivity' }))).toThrow(/stages\[0\]\.supportScores: 'sparse-adapter' takes supportScores 'gradient' or 'magnitude'/);
    expect(() => resolveRecipe(stages({ method: 'rosa', supportScores: 'fishr' }))).toThrow(/stages\[0\]\.supportScores/);
    expect(() => resolveRecipe(stages({ method: 'rosa', supportBatches: 0 }))).toThrow(/stages\[0\]\.supportBatches/);
    // methods without a support get no default; magnitude is accepted anywhere
    expect((resolveRecipe(stages({ method: 'lora' })).stages[0] as StageOf<'adapt'>).supportScores).toBeUndefined();
    expect((resolveRecipe(stages({ method: 'lora', supportScores: 'magnitude' })).stages[0] as StageOf<'adapt'>).supportScores).toBe('magnitude');
  });
});

describe('a rosa recipe with gradient scores', () => {
  it('runs on a 2:4-pruned model and exports 2:4 weights', async () => {
    const recipe = resolveRecipe({
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
        { stage: 'adapt', method: 'rosa', config: { r: 2, density: 0.05 }, supportScores: 'gradient', supportBatches: 2, steps: 3, batch: 4, lr: 1e-3 },
        { stage: 'evaluate' },
        { stage: 'export', formats: ['compressed'] },
      ],
    });
    const dir = join(tmp, 'rosa-run');
    const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    expect(readFileSync(join(dir, 'recipe.json'), 'utf8')).toContain('"supportScores": "gradient"');
    await expectExportedNM(join(dir, 'exports', 'model.compressed.safetensors'));
  }, 120_000);
});

describe('LoSiA re-localization in the adapt stage', () => {
  const noCheckpoint = async () => {};

  it('before step k·every + 1: merges each core through the mask and picks the subnet of sensitivity scores at the adapted weights', () => {
    const { ctx, stage } = contextFor({ method: 'losia', config: { rows: 0.25, cols: 0.25, every: 2 } });
    attachStageAdapter(ctx, stage, 0, 'adapt');
    const adapter = ctx.adapter!.model;
    // a trained core: random values
    const rng = new Random(5);
    for (const v of adapter.trainableVariables()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal(0, 0.1)), v.shape));
    // an optimizer that has seen the cores (and one other variable) for two steps
    const variables = new Map(adapter.trainableVariables().map((v, k) => [`adapter/${k}`, v]));
    const other = tf.variable(tf.ones([3]));
    const adam = new NamedAdam();
    for (let t = 0; t < 2; t++) {
      const updates = [...variables, ['other', other] as const].map(([key, variable]) => ({ key, variable, grad: tf.fill(variable.shape, 0.01 * (t + 1)) }));
      adam.apply(updates, 0); // lr 0: moments only, the values stay
      updates.forEach((u) => u.grad.dispose());
    }
    const layers = ctx.linears();
    // the reference, before the step: adapted weights W' = W + ΔW, their gradients by tf.grad on the step's windows
    const batches = supportScoreBatches(ctx, stage, 0, 'relocalize-3');
    const ref = new Map(layers.map((l) => {
      const base = Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array);
      const adapted = Float32Array.from(adapter.effectiveWeight(l.name).dataSync() as Float32Array);
      const hooks = ctx.hooks();
      const gs = batches.map((b) =>
        tf.tidy(() => {
          const ids = tf.tensor2d(b.inputs, [b.batch, b.len], 'int32');
          const targets = tf.tensor2d(b.targets, [b.batch, b.len], 'int32');
          const f = (w: tf.Tensor) => ctx.model.loss(ids, targets, { weight: (n, q) => (n === l.name ? w : hooks.weight!(n, q)) });
          return Float32Array.from(tf.grad(f)(tf.tensor(adapted, [l.out, l.in])).dataSync() as Float32Array);
        }),
      );
      return [l.name, { base, adapted, score: meanOver(gs, adapted, (g, w) => Math.abs(g * w)) }];
    }));
    const args = { ctx, stage, index: 0, label: 'adapt', checkpoint: noCheckpoint };
    const reloc = adapterTraining(args, getVariant('losia'), variables);
    const count = (t: ReturnType<typeof adapterTraining>) => (t.stageState!().adapter as { count: number }).count;
    const otherMoments = adam.state().m.other!.data;
    reloc.beforeStep!(2, adam); // not yet: only after every 2 steps
    expect(count(reloc)).toBe(0);
    expect(adam.resets()).toEqual({});
    reloc.beforeStep!(3, adam);
    expect(count(reloc)).toBe(1);
    // the new cores start with fresh Adam moments; other keys keep theirs
    const opt = adam.state();
    for (const k of variables.keys()) {
      expect(opt.m[k]!.data.every((x) => x === 0), k).toBe(true);
      expect(opt.v[k]!.data.every((x) => x === 0), k).toBe(true);
    }
    expect(opt.since).toEqual(Object.fromEntries([...variables.keys()].map((k) => [k, 2])));
    expect(opt.m.other!.data).toEqual(otherMoments);
    expect(opt.m.other!.data.some((x) => x !== 0)).toBe(true);
    const states = adapter.adapterStates();
    for (const l of layers) {
      const { base, adapted, score } = ref.get(l.name)!;
      const merged = ctx.model.params[l.name]!.dataSync();
      base.forEach((v, q) => expect(merged[q], `${l.name}[${q}]`).toBeCloseTo(v === 0 ? 0 : adapted[q]!, 5));
      const rowSums = Array.from({ length: l.out }, (_, i) => score.subarray(i * l.in, (i + 1) * l.in).reduce((a, b) => a + b, 0));
      const rows = topK(rowSums, Math.round(0.25 * l.out));
      const colSums = Array.from({ length: l.in }, (_, j) => rows.reduce((a, i) => a + score[i * l.in + j]!, 0));
      const { indices, params } = states[l.name] as unknown as { indices: Record<string, Int32Array>; params: Record<string, { data: Float32Array }> };
      expect(Array.from(indices.rows!), l.name).toEqual(rows);
      expect(Array.from(indices.cols!), l.name).toEqual(topK(colSums, Math.round(0.25 * l.in)));
      expect(params.losia_core!.data.every((x) => x === 0)).toBe(true);
    }
    // the subnets travel in the stage state: a fresh attach resumed from it continues on them
    const saved = reloc.stageState!();
    const again = contextFor({ method: 'losia', config: { rows: 0.25, cols: 0.25, every: 2 } });
    attachStageAdapter(again.ctx, again.stage, 0, 'adapt');
    const againModel = again.ctx.adapter!.model;
    const resumed = adapterTraining({ ...args, ctx: again.ctx, stage: again.stage, resume: { step: 3, stageState: JSON.parse(JSON.stringify(saved)) } }, getVariant('losia'), new Map(againModel.trainableVariables().map((v, k) => [`adapter/${k}`, v])));
    expect(count(resumed)).toBe(1);
    expect(JSON.stringify(resumed.stageState!())).toBe(JSON.stringify(saved));
    // the reset points travel with the optimizer's own state (written by the checkpoint)
    const restored = new NamedAdam();
    restored.load(adam.state());
    resumed.beforeStep!(4, restored);
    expect(restored.resets()).toEqual(opt.since);
    restored.dispose();
    adam.dispose();
    other.dispose();
    dispose(ctx);
    dispose(again.ctx);
  }, 60_000);

  it('recipes: every is a losia config field and needs data scores; a 2:4 run re-localizes and exports 2:4', async () => {
    expect(() => resolveRecipe({ stages: [{ stage: 'adapt', method: 'rosa', config: { every: 2 } }] })).toThrow(/stages\[0\]\.config: .*every/);
    expect(() => resolveRecipe({ stages: [{ stage: 'adapt', method: 'losia', config: { every: 2 }, supportScores: 'magnitude' }] })).toThrow(/stages\[0\]\.supportScores: 'losia': re-localization needs data scores/);
    const recipe = resolveRecipe({
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
        { stage: 'adapt', method: 'losia', config: { every: 2 }, supportBatches: 2, steps: 5, batch: 4, lr: 1e-3 },
        { stage: 'evaluate' },
        { stage: 'export', formats: ['compressed'] },
      ],
    });
    const dir = join(tmp, 'losia-run');
    await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const events = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number });
    expect(events.filter((e) => e.event === 'relocalize').map((e) => e.step)).toEqual([3, 5]);
    await expectExportedNM(join(dir, 'exports', 'model.compressed.safetensors'));
  }, 120_000);
});

describe('data-aware inits read the stage data', () => {
  /** B·A of CorDA's init per layer (sign-free: an SVD may flip a component's vectors). */
  function products(states: Record<string, { params: Record<string, { data: Float32Array; shape: number[] }> }>): Map<string, Float64Array> {
    return new Map(Object.entries(states).map(([n, st]) => {
      const b = st.params.corda_B!;
      const a = st.params.corda_A!;
      const [out, r] = b.shape as [number, number];
      const inp = a.shape[1]!;
      const ba = new Float64Array(out * inp);
      for (let i = 0; i < out; i++) for (let k = 0; k < r; k++) for (let j = 0; j < inp; j++) ba[i * inp + j]! += b.data[i * r + k]! * a.data[k * inp + j]!;
      return [n, ba];
    }));
  }
  const maxDiff = (x: Float64Array, y: Float64Array) => x.reduce((m, v, k) => Math.max(m, Math.abs(v - y[k]!)), 0);
  const maxAbs = (x: Float64Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  it("with data: shifted, CorDA's covariance is XᵀX/n of the layers' inputs on shifted windows (computed here), not on the pretraining data", () => {
    const { ctx, stage } = contextFor({ method: 'corda', config: { r: 2 }, data: 'shifted' }, false);
    attachStageAdapter(ctx, stage, 0, 'adapt');
    const got = products(ctx.adapter!.model.adapterStates() as never);
    // the calibration windows are windows of the shifted token stream
    const shifted = ctx.data.shifted().train;
    const batches = calibrationBatches(ctx, 0, 'shifted');
    const text = Array.from(shifted).join(',');
    for (const { ids, len } of batches) expect(`,${text},`).toContain(`,${Array.from(ids.subarray(0, len)).join(',')},`);
    // the reference covariance: every linear layer's inputs on those windows, accumulated in float64
    const sums = new Map(ctx.linears().map((l) => [l.name, { c: new Float64Array(l.in * l.in), n: 0 }]));
    for (const { ids, b, len } of batches) {
      tf.tidy(() => {
        ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), {
          linearInput: (info, x) => {
            const acc = sums.get(info.name)!;
            const [rows, k] = x.shape;
            const xs = x.dataSync() as Float32Array;
            for (let t = 0; t < rows; t++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) acc.c[i * k + j]! += xs[t * k + i]! * xs[t * k + j]!;
            acc.n += rows;
          },
        });
      });
    }
    const corda = getVariant('corda');
    const want = products(Object.fromEntries(ctx.linears().map((l) => {
      const { c, n } = sums.get(l.name)!;
      const w = tensor(Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array), [l.out, l.in]);
      return [l.name, corda.init(w, { r: 2, covariance: tensor(Float32Array.from(c, (v) => v / n), [l.in, l.in]) }, new Random(0))];
    })) as never);
    for (const [n, ba] of want) expect(maxDiff(got.get(n)!, ba) / maxAbs(ba), n).toBeLessThan(1e-3);
    // the pretraining stream gives another init: the test sees which data was read
    const other = contextFor({ method: 'corda', config: { r: 2 }, data: 'train' }, false);
    attachStageAdapter(other.ctx, other.stage, 0, 'adapt');
    const fromTrain = products(other.ctx.adapter!.model.adapterStates() as never);
    expect(Math.max(...[...want].map(([n, ba]) => maxDiff(fromTrain.get(n)!, ba) / maxAbs(ba)))).toBeGreaterThan(1e-2);
    dispose(ctx);
    dispose(other.ctx);
  }, 60_000);
});
