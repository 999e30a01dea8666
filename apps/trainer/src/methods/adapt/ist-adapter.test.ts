// IST on LoRA-family adapt stages (the stage field `ist`), from recipes on a three-block model: between
// consecutive checkpoints only the adapters of the drawn block move, the others keep their values and
// Adam moments bit for bit; Adam counts each tensor's own updates (t − since); the logged probe losses
// equal a forward computed here from the checkpointed factors (W + suppression · scaling · B A on the
// suppressed block); the scores follow istScoreUpdate; a run stopped at every step resumes exactly; the
// CLI runs such a recipe; suppression 0 / 1 gives the base / adapted model for weight, bias and output-term
// adapters; the optimizer's variable map (what the gradient is taken for) holds only the drawn blocks'
// tensors; every registered adapter variant runs with ist; and bad configs are refused naming the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { istScoreUpdate } from '@sparse/lora-variants';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { sampleBatch } from '../../data/dataset.js';
import { createModel } from '../../model/index.js';
import { resolveRecipe } from '../../recipe/load.js';
import type { StageOf } from '../../recipe/schema.js';
import type { CheckpointContent } from '../../run/checkpoint.js';
import { loadRunData } from '../../run/data.js';
import { startRun } from '../../run/runner.js';
import { cli, metricEvents } from '../../testing/cli.js';
import { testContext } from '../../testing/context.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { NamedAdam } from '../../train/adam.js';
import { methodsOf } from '../registry.js';
import { attachStageAdapter } from './adapter.js';
import { adapterIST, suppressedHooks } from './ist.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-ist-adapter-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 3, heads: 2, ctx: 16 };
const LORA = { r: 2, alpha: 4 }; // scaling alpha / r = 2
const IST = { update: 0.34, suppress: 0.34, every: 2, probes: 2, suppression: 0.25 };
type ISTEvent = { event: string; step: number; probes: number[][]; losses: number[]; scores: number[] };
const blockOf = (name: string) => Number(/^h\.(\d+)\./.exec(name)![1]);

describe('IST on a lora stage', () => {
  it('per step only the drawn block moves, probes match a direct forward, scores follow them, resume is exact', async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: MODEL,
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'adapt', method: 'lora', config: LORA, ist: IST, steps: 6, batch: 4, lr: 2e-2, checkpointEvery: 1 },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    // a checkpoint after every step 1..5 (each stop resumes from the one before)
    const cps = new Map<number, CheckpointContent>();
    await runWithStops(
      recipe,
      broken,
      [1, 2, 3, 4, 5].map((k) => ({ stage: 1, step: k + 1, resumeAt: k, state: 'ist' })),
      (s, cp) => cps.set(s.resumeAt, cp),
    );
    await expectSameRun(whole, broken);
    const updated = (k: number) => (cps.get(k)!.stageState!.ist as { updated: number[] }).updated;
    // the optimizer's keys adapter/0.. in the order of the adapter's layers and their tensors
    const keys = Object.entries(cps.get(1)!.adapter!.layers).flatMap(([n, ps]) => Object.keys(ps).map((p) => ({ layer: n, param: p })));
    expect(new Set(keys.map((k) => blockOf(k.layer)))).toEqual(new Set([0, 1, 2]));
    for (let k = 1; k <= 5; k++) {
      expect(updated(k), `step ${k}`).toHaveLength(1);
      const cp = cps.get(k)!;
      const opt = cp.optimizer!;
      expect(opt.t).toBe(k);
      keys.forEach(({ layer, param }, i) => {
        const key = `adapter/${i}`;
        expect(cp.adapter!.layers[layer]![param]!.length).toBe(opt.m[key]?.data.length ?? cp.adapter!.layers[layer]![param]!.length);
        // t − since counts this tensor's updates: the steps before k that left its block out are not counted (step k's is counted at step k + 1)
        let out = 0;
        for (let j = 1; j < k; j++) if (!updated(j).includes(blockOf(layer))) out++;
        expect(opt.since?.[key] ?? 0, `${key} at ${k}`).toBe(out);
      });
    }
    for (let k = 1; k < 5; k++) {
      const [a, b] = [cps.get(k)!, cps.get(k + 1)!];
      const drawn = updated(k + 1);
      const moved = new Set<number>();
      keys.forEach(({ layer, param }, i) => {
        const key = `adapter/${i}`;
        const [va, vb] = [a.adapter!.layers[layer]![param]!, b.adapter!.layers[layer]![param]!];
        if (drawn.includes(blockOf(layer))) {
          if (Array.from(vb).some((x, q) => !Object.is(x, va[q]))) moved.add(blockOf(layer));
        } else {
          const at = `${layer}.${param} in step ${k + 1}`;
          expect(Array.from(vb), at).toEqual(Array.from(va));
          expect(b.optimizer!.m[key] === undefined, at).toBe(a.optimizer!.m[key] === undefined);
          if (a.optimizer!.m[key]) {
            expect(Array.from(b.optimizer!.m[key]!.data), at).toEqual(Array.from(a.optimizer!.m[key]!.data));
            expect(Array.from(b.optimizer!.v[key]!.data), at).toEqual(Array.from(a.optimizer!.v[key]!.data));
          }
        }
      });
      expect([...moved], `step ${k + 1}`).toEqual(drawn);
    }
    // importance updates before steps 3 and 5: two distinct one-block probes each
    const updates = events(whole).filter((e) => e.event === 'ist') as unknown as ISTEvent[];
    expect(updates.map((u) => u.step)).toEqual([2, 4]);
    let scores = [0, 0, 0];
    for (const u of updates) {
      expect(u.probes).toHaveLength(2);
      for (const p of u.probes) expect(p).toHaveLength(1);
      expect(u.probes[0]!.join()).not.toBe(u.probes[1]!.join());
      scores = Array.from(istScoreUpdate(scores, u.probes, u.losses, 10));
      u.scores.forEach((x, i) => expect(x).toBeCloseTo(scores[i]!, 12));
    }
    expect(scores.some((x) => x !== 0)).toBe(true);
    expect(events(broken).filter((e) => e.event === 'ist')).toEqual(events(whole).filter((e) => e.event === 'ist').map((e) => ({ ...e, time: expect.anything() as unknown })));
    // the probe losses, computed here: the probe stream's n-th batch through W + s · 2 · B A (s = 0.25 on the
    // suppressed block, 1 elsewhere) with the factors and base weights of the checkpoint before the probe
    const data = loadRunData(recipe.data).main.train;
    const probeRng = new Random(recipe.seed).fork('stage-1').fork('ist-probe');
    for (const u of updates) {
      const b = sampleBatch(data, 4, Math.min(MODEL.ctx, data.length - 1), probeRng);
      const cp = cps.get(u.step)!;
      const model = createModel(cp.spec, { seed: 0 });
      for (const [n, p] of Object.entries(model.params)) p.assign(tf.tensor(cp.params.get(n)!.data, p.shape));
      u.probes.forEach((set, k) => {
        const loss = tf.tidy(() => {
          const ws = new Map(
            Object.entries(cp.adapter!.layers).map(([n, ps]) => {
              const ba = tf.matMul(tf.tensor2d(ps.lora_B!, [model.params[n]!.shape[0]!, 2]), tf.tensor2d(ps.lora_A!, [2, model.params[n]!.shape[1]!]));
              return [n, tf.add(model.params[n]!, tf.mul(ba, 2 * (set.includes(blockOf(n)) ? 0.25 : 1)))];
            }),
          );
          return model.loss(tf.tensor2d(b.inputs, [4, b.len], 'int32'), tf.tensor2d(b.targets, [4, b.len], 'int32'), { weight: (n, p) => ws.get(n) ?? p }).dataSync()[0]!;
        });
        expect(Math.abs(loss - u.losses[k]!), `probe ${k} at ${u.step}`).toBeLessThan(2e-6);
      });
      // which block is suppressed shows in the loss far above that tolerance
      expect(Math.abs(u.losses[0]! - u.losses[1]!)).toBeGreaterThan(1e-4);
      model.dispose();
    }
  }, 600_000);

  it('a recipe with ist on a lora stage runs through the CLI and logs ist events', async () => {
    const file = join(tmp, 'lora-ist.json');
    writeFileSync(
      file,
      JSON.stringify({
        seed: 1,
        model: MODEL,
        eval: { windows: 2, batch: 2 },
        stages: [
          { stage: 'pretrain', steps: 2, batch: 4 },
          { stage: 'adapt', method: 'lora', config: LORA, ist: { every: 2, probes: 2 }, steps: 5, batch: 4, lr: 1e-2 },
          { stage: 'evaluate' },
        ],
      }),
    );
    const dir = join(tmp, 'cli');
    const r = await cli(['--recipe', file, '--out', dir, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const ist = metricEvents(dir).filter((e) => e.event === 'ist');
    expect(ist.map((e) => e.step)).toEqual([2, 4]);
    for (const e of ist) expect(e.stage).toBe(1);
    expect(metricEvents(dir).filter((e) => e.event === 'step' && e.stage === 1)).toHaveLength(5);
  }, 300_000);
});

describe('suppressedHooks', () => {
  let backend: Awaited<ReturnType<typeof chooseBackend>>;
  beforeAll(async () => {
    backend = await chooseBackend();
  });
  // suppression 0 on every layer is the base model (no adapter at all); 1 is the adapted forward
  it.each([
    ['lora', { r: 2 }],
    ['spectral-adapter', { r: 2 }],
    ['ssf', {}],
    ['sparse-adapter', { r: 4, sparsity: 0.5, form: 'bottleneck' }],
  ] as const)('%s: scale 0 gives the base model, scale 1 the adapted one', (method, config) => {
    const recipe = resolveRecipe({ seed: 2, model: MODEL, stages: [{ stage: 'adapt', method, config, steps: 1, batch: 2, merge: false }] });
    const ctx = testContext(recipe, MODEL, tmp, backend, 2);
    try {
      const base = (ids: tf.Tensor2D, targets: tf.Tensor2D) => ctx.model.loss(ids, targets).dataSync()[0]!;
      const stage = recipe.stages[0] as StageOf<'adapt'>;
      attachStageAdapter(ctx, stage, 0, 'ft');
      const adapter = ctx.adapter!.model;
      // every tensor moved off its init (a zero-initialized factor would make ΔW vanish)
      const rng = new Random(9);
      for (const v of adapter.trainableVariables()) v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => 0.3 * (rng.next() - 0.5)), v.shape)));
      const ids = tf.tensor2d(Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 11), [2, 8], 'int32');
      const targets = tf.tensor2d(Int32Array.from({ length: 16 }, (_, i) => (i * 5 + 1) % 11), [2, 8], 'int32');
      const plain = base(ids, targets);
      const adapted = ctx.model.loss(ids, targets, ctx.hooks()).dataSync()[0]!;
      expect(Math.abs(adapted - plain)).toBeGreaterThan(1e-4);
      const all = new Set(Object.keys(adapter.weights));
      const at = (s: number) => tf.tidy(() => ctx.model.loss(ids, targets, suppressedHooks(ctx.hooks(), adapter, ctx.linears(), all, s)).dataSync()[0]!);
      expect(Math.abs(at(0) - plain)).toBeLessThan(1e-5);
      expect(Math.abs(at(1) - adapted)).toBeLessThan(1e-5);
      // in between, and not suppressing any layer leaves the adapted loss
      expect(Math.abs(at(0.5) - adapted)).toBeGreaterThan(1e-6);
      expect(tf.tidy(() => ctx.model.loss(ids, targets, suppressedHooks(ctx.hooks(), adapter, ctx.linears(), new Set(), 0)).dataSync()[0]!)).toBe(adapted);
      tf.dispose([ids, targets]);
    } finally {
      ctx.adapter?.model.deleteAdapter('ft');
      ctx.dispose();
      ctx.model.dispose();
    }
  });
});

describe('adapterIST', () => {
  it('hands the optimizer only the drawn blocks\' adapter variables, so the gradient is taken for them alone', async () => {
    const backend = await chooseBackend();
    const recipe = resolveRecipe({ seed: 4, model: MODEL, stages: [{ stage: 'adapt', method: 'lora', config: LORA, ist: { update: 0.67, every: 1, probes: 2 }, steps: 3, batch: 2 }] });
    const ctx = testContext(recipe, MODEL, tmp, backend, 4);
    try {
      const stage = recipe.stages[0] as StageOf<'adapt'>;
      attachStageAdapter(ctx, stage, 0, 'ft');
      const adapter = ctx.adapter!.model;
      const all = new Map(adapter.trainableVariables().map((v, k) => [`adapter/${k}`, v]));
      const variables = new Map(all);
      const ist = adapterIST({ ctx, stage, index: 0, label: 'ft', checkpoint: async () => {} }, stage.ist!, all, variables);
      expect([ist.blocks, ist.perStep]).toEqual([3, 2]);
      const optimizer = new NamedAdam();
      for (let step = 1; step <= 3; step++) {
        ist.beforeStep(step, optimizer);
        const drawn = ist.state().updated;
        expect(drawn).toHaveLength(2);
        // exactly the variables of the drawn blocks' layers, under the keys of the full map
        const expected = Object.keys(adapter.weights).filter((n) => drawn.includes(blockOf(n))).flatMap((n) => Object.values(adapter.layerVariables(n)));
        expect(new Set(variables.values())).toEqual(new Set(expected));
        for (const [k, v] of variables) expect(all.get(k)).toBe(v);
        // the step's update, as the training loop applies it (t advances once per step)
        const grads = [...variables].map(([key, variable]) => ({ key, variable, grad: tf.zerosLike(variable) }));
        optimizer.apply(grads, 1e-3);
        tf.dispose(grads.map((g) => g.grad));
      }
      optimizer.dispose();
    } finally {
      ctx.adapter?.model.deleteAdapter('ft');
      ctx.dispose();
      ctx.model.dispose();
    }
  });
});

describe('every adapter method takes ist', () => {
  // the variants' defaults, but for SMT's blocks, which must divide this model's [48, 16] weights
  const configs: Record<string, Record<string, unknown>> = { smt: { blockSize: 8 }, 'sparse-adapter': {} };
  const adapters = methodsOf('adapt').filter((m) => m.from === '@sparse/lora-variants' && m.sparseDelta !== true && !/mezo/.test(m.name));
  it('covers the adapter variants', () => expect(adapters.map((m) => m.name)).toEqual(expect.arrayContaining(['lora', 'sqft', 'rosa', 'losia', 'mosa', 'ssf'])));
  it.each(adapters.map((m) => m.name))('%s: a stage with ist trains and probes', async (method) => {
    const recipe = resolveRecipe({
      seed: 1,
      model: { ...MODEL, layers: 2 },
      eval: { windows: 2, batch: 2 },
      stages: [{ stage: 'adapt', method, config: configs[method] ?? {}, ist: { every: 2, update: 0.5, suppress: 0.5 }, steps: 5, batch: 4, lr: 1e-2 }],
    });
    const dir = join(tmp, `every-${method}`);
    await startRun(recipe, { dir, ...quiet });
    const ist = events(dir).filter((e) => e.event === 'ist') as unknown as ISTEvent[];
    expect(ist.map((e) => e.step)).toEqual([2, 4]);
    for (const e of ist) expect(e.losses.every(Number.isFinite)).toBe(true);
  }, 120_000);
});

describe('ist in recipes', () => {
  const stage = (extra: Record<string, unknown>) => () => resolveRecipe({ model: MODEL, stages: [{ stage: 'adapt', steps: 2, ...extra }] });
  it('takes the sft config.ist fields, with their defaults', () => {
    const r = resolveRecipe({ model: MODEL, stages: [{ stage: 'adapt', method: 'sqft', ist: { every: 4 } }] });
    expect((r.stages[0] as StageOf<'adapt'>).ist).toEqual({ update: 0.25, suppress: 0.5, every: 4, probes: 3, rate: 10, suppression: 0.25 });
  });
  it('refuses bad fields, naming them', () => {
    expect(stage({ method: 'lora', ist: { update: 0 } })).toThrow(/stages\[0\]\.ist\.update: update must be in \(0, 1\]/);
    expect(stage({ method: 'lora', ist: { suppression: 1 } })).toThrow(/stages\[0\]\.ist\.suppression: suppression must be in \[0, 1\)/);
    expect(stage({ method: 'lora', ist: { every: 1.5 } })).toThrow(/stages\[0\]\.ist\.every: every must be an integer/);
    expect(stage({ method: 'lora', ist: { probes: 0 } })).toThrow(/stages\[0\]\.ist\.probes: probes must be at least 1/);
    expect(stage({ method: 'lora', ist: { layers: 2 } })).toThrow(/stages\[0\]\.ist.*layers/);
  });
  it('refuses the stage field on methods without per-layer adapters, and on sft (config.ist)', () => {
    expect(stage({ method: 'sft', ist: {} })).toThrow(/stages\[0\]\.ist: 'sft' takes IST as config\.ist/);
    for (const method of ['mezo', 'sparse-mezo', 'diff-pruning']) expect(stage({ method, ist: {} })).toThrow(new RegExp(`stages\\[0\\]\\.ist: '${method}' trains no per-layer adapters`));
  });
});
