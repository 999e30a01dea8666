// train methods 'imp' and 'swamp' (lottery tickets with rewinding): the rewind point holds the weights
// after rewindStep steps exactly; each round keeps round((1 − rate)^r · size) per layer; the final model is
// exactly what training the ticket (the rewind point under the final masks, fresh Adam, the phase's own
// sampler, the rewound lr schedule) gives when done separately here with runSteps; SWAMP's phases end at
// the exact float32 mean of particles trained separately here, and its prune is the top-|W| of that mean;
// pruned weights and their Adam moments are 0 at every checkpoint; stopped runs (inside the prefix, inside a
// phase, between a phase's last step and its prune) resume to the same losses step for step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, type Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import type { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../../model/index.js';
import type { ModelSpec } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { loadRunData } from '../../run/data.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { NamedAdam } from '../../train/adam.js';
import { lrAt, runSteps } from '../../train/steps.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { lotterySampler } from './lottery.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];
const PRE = { stage: 'pretrain', steps: 3, batch: 4 };
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-lottery-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const keptAt = (size: number, density: number) => Math.round(density * size);

/** Weights (and Adam moments, when the checkpoint has them) exactly 0 off each layer's mask. */
function expectMasked(cp: CheckpointContent, where: string): void {
  for (const n of LINEARS) {
    const m = cp.masks.get(n);
    expect(m, `${where}: ${n} has a mask`).toBeDefined();
    expectZeroOffMask(cp, n, m!, where);
  }
}

/** The parameters after a run of just the pretrain stage (the model a stage after it starts from). */
async function pretrained(seed: number, name: string): Promise<CheckpointContent> {
  const dir = join(tmp, name);
  await startRun(resolveRecipe({ seed, model: MODEL, stages: [PRE] }), { dir, ...quiet });
  return readCheckpoint(dir);
}

/**
 * One particle trained here on its own: a fresh model holding `values` (masked where `masks` has a mask),
 * fresh Adam, the given sampler, steps start + 1 .. end of a `schedule`-step warmup + cosine schedule,
 * forward through W ⊙ M; its parameter values afterwards.
 */
async function trainSeparately(spec: ModelSpec, values: ReadonlyMap<string, Float32Array>, masks: ReadonlyMap<string, Mask>, rng: Random, o: { start: number; end: number; schedule: number; seed: number }): Promise<Map<string, Float32Array>> {
  const ticket = new Map([...values].map(([k, v]) => [k, masks.has(k) ? Float32Array.from(v, (x, i) => (isKept(masks.get(k)!, i) ? x : 0)) : v]));
  const model = createModel(spec, { values: ticket });
  const maskT = new Map([...masks].map(([k, m]) => [k, maskToTf(m)]));
  const data = loadRunData(resolveRecipe({ seed: o.seed, model: MODEL, stages: [PRE] }).data).main.train;
  const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
  await runSteps({
    data,
    steps: o.end,
    startStep: o.start,
    scheduleSteps: o.schedule,
    batch: 4,
    len: MODEL.ctx,
    lr: 1e-2,
    minLrRatio: 0.1,
    clipNorm: 1,
    rng,
    variables: new Map(Object.entries(model.params)),
    optimizer,
    loss: (ids, targets) => model.loss(ids, targets, { weight: (n, p) => (maskT.has(n) ? tf.mul(p, maskT.get(n)!) : p) }),
  });
  const out = new Map(Object.entries(model.params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
  optimizer.dispose();
  tf.dispose([...maskT.values()]);
  model.dispose();
  return out;
}

/** The float32 mean of parameter maps, summed in float64 in the given order (what SWAMP documents). */
function mean(ps: readonly Map<string, Float32Array>[]): Map<string, Float32Array> {
  return new Map(
    [...ps[0]!.keys()].map((k) => {
      const s = new Float64Array(ps[0]!.get(k)!.length);
      for (const p of ps) p.get(k)!.forEach((x, i) => (s[i]! += x));
      return [k, Float32Array.from(s, (x) => x / ps.length)];
    }),
  );
}

/** The brute-force magnitude mask: the k largest |w| (ties to the lower index). */
function magnitudeKeep(w: Float32Array, k: number): Set<number> {
  return new Set([...w.keys()].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b).slice(0, k));
}

interface LotteryEvent {
  event: string;
  action: string;
  step: number;
  round?: number;
  density?: number;
  kept?: Record<string, number>;
}

describe('train method imp', () => {
  // k = 2, then 3 phases of L = 3: steps 11; each phase's lr is that of steps 3..5 of a 5-step schedule
  const stage = { stage: 'train', method: 'imp', config: { rounds: 2, rate: 0.5, rewindStep: 2 }, steps: 11, batch: 4, lr: 1e-2, checkpointEvery: 2 };
  const recipe = resolveRecipe({ seed: 9, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [PRE, stage, { stage: 'evaluate' }] });

  it('rewinds to the weights after rewindStep exactly, keeps (1 − rate)^r per layer each round, ends as the ticket trained separately gives, and resumes exactly', async () => {
    const whole = join(tmp, 'imp-whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    const end = await readCheckpoint(whole);
    const size = new Map(LINEARS.map((n) => [n, end.params.get(n)!.data.length]));
    const ev = events(whole).filter((e) => e.event === 'imp') as unknown as LotteryEvent[];
    expect(ev.map((e) => `${e.action}@${e.step}`)).toEqual(['rewind-point@2', 'rewind@2', 'prune@5', 'rewind@5', 'prune@8', 'rewind@8']);
    for (const e of ev.filter((x) => x.action === 'prune')) {
      expect(e.density).toBe(0.5 ** e.round!);
      expect(e.kept).toEqual(Object.fromEntries(LINEARS.map((n) => [n, keptAt(size.get(n)!, 0.5 ** e.round!)])));
    }
    for (const n of LINEARS) expect(count(end.masks.get(n)!), n).toBe(keptAt(size.get(n)!, 0.25));
    expectMasked(end, 'end');
    // the step events follow the rewound schedule: phase p's j-th step has the lr of step 2 + j of 5
    const steps = events(whole).filter((e) => e.event === 'step' && e.stage === 1) as unknown as { step: number; lr: number }[];
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (const e of steps) {
      const pos = e.step <= 2 ? e.step : 2 + ((e.step - 3) % 3) + 1;
      expect(e.lr, `step ${e.step}`).toBe(lrAt(pos, 5, 1e-2, 0, 0.1));
    }

    // stopped at the rewind point, inside phase 0, inside phase 1, and after phase 1's last step (before its prune)
    const broken = join(tmp, 'imp-broken');
    let rewindPoint: Map<string, Float32Array> | undefined;
    await runWithStops(recipe, broken, [2, 4, 6, 8].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'rewind' })), (s, cp) => {
      const saved = cp.stageState!.rewind as Record<string, Float32Array>;
      if (s.resumeAt === 2) {
        // the rewind point is every parameter's value after 2 steps
        expect(Object.keys(saved).sort()).toEqual([...cp.params.keys()].sort());
        for (const [k, v] of cp.params) expect(saved[k], k).toEqual(v.data);
        rewindPoint = new Map(Object.entries(saved).map(([k, v]) => [k, Float32Array.from(v)]));
        expect(LINEARS.filter((n) => cp.masks.has(n))).toEqual([]);
      } else {
        for (const [k, v] of rewindPoint!) expect(saved[k], k).toEqual(v);
      }
      if (s.resumeAt >= 6) {
        expectMasked(cp, `checkpoint at ${s.resumeAt}`);
        for (const n of LINEARS) expect(count(cp.masks.get(n)!)).toBe(keptAt(size.get(n)!, 0.5));
      }
    });
    await expectSameRun(whole, broken);

    // the final phase done here: the rewind point under the final masks, steps 3..5 of the 5-step schedule
    const alone = await trainSeparately(end.spec, rewindPoint!, end.masks, lotterySampler(9, 1, 2, 0), { start: 2, end: 5, schedule: 5, seed: 9 });
    for (const [k, v] of end.params) expect(v.data, k).toEqual(alone.get(k));
  }, 300_000);

  it('writes out the layout: rewindStep in steps and the steps it runs; too few steps are refused', () => {
    const r = resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'imp', config: { rounds: 2, rewind: 0.1 }, steps: 40 }] });
    // k = 4, L = ⌊36 / 3⌋ = 12
    expect(r.stages[0]).toMatchObject({ steps: 40, config: { rounds: 2, rate: 0.2, rewindStep: 4, budget: 'layer' } });
    expect(r.stages[0]).not.toHaveProperty('config.rewind');
    const odd = resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'imp', config: { rounds: 2, rewindStep: 1 }, steps: 12 }] });
    expect(odd.stages[0]).toMatchObject({ steps: 10, config: { rewindStep: 1 } });
    expect(resolveRecipe(JSON.parse(JSON.stringify(odd))).stages).toEqual(odd.stages);
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'imp', config: { rounds: 3, rewindStep: 2 }, steps: 5 }] })).toThrow(/stages\[0\]\.steps: 5 steps leave no phase/);
  });

  it("'global' budget: one |W| ranking keeps round(0.64 · total) after two rounds of 20%", async () => {
    const dir = join(tmp, 'imp-global');
    await startRun(resolveRecipe({ seed: 4, model: MODEL, stages: [PRE, { stage: 'train', method: 'imp', config: { rounds: 2, rate: 0.2, rewindStep: 0, budget: 'global' }, steps: 6, batch: 4 }] }), { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    const total = LINEARS.reduce((a, n) => a + cp.params.get(n)!.data.length, 0);
    expect(LINEARS.reduce((a, n) => a + count(cp.masks.get(n)!), 0)).toBe(keptAt(total, 0.8 * 0.8));
    expectMasked(cp, 'end');
  }, 120_000);
});

describe('train method swamp', () => {
  // k = 0 (the pretrained weights), 1 round, 2 particles: 4 segments of 2 steps
  const stage = { stage: 'train', method: 'swamp', config: { rounds: 1, rate: 0.5, rewindStep: 0, particles: 2 }, steps: 8, batch: 4, lr: 1e-2, checkpointEvery: 1 };
  const recipe = resolveRecipe({ seed: 10, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [PRE, stage] });

  it('prunes from the exact mean of particles trained separately, ends at the exact mean of the final particles, and resumes exactly', async () => {
    const whole = join(tmp, 'swamp-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const end = await readCheckpoint(whole);
    const theta = new Map([...(await pretrained(10, 'swamp-start')).params].map(([k, v]) => [k, v.data]));
    const ev = events(whole).filter((e) => e.event === 'swamp') as unknown as LotteryEvent[];
    expect(ev.map((e) => `${e.action}@${e.step}`)).toEqual(['rewind-point@0', 'rewind@0', 'rewind@2', 'average@4', 'prune@4', 'rewind@4', 'rewind@6', 'average@8']);

    // phase 0 here: two particles from the dense pretrained weights, each on its own sampler
    const none = new Map<string, Mask>();
    const phase0 = mean([
      await trainSeparately(end.spec, theta, none, lotterySampler(10, 1, 0, 0), { start: 0, end: 2, schedule: 2, seed: 10 }),
      await trainSeparately(end.spec, theta, none, lotterySampler(10, 1, 0, 1), { start: 0, end: 2, schedule: 2, seed: 10 }),
    ]);
    for (const n of LINEARS) {
      const w = phase0.get(n)!;
      const want = magnitudeKeep(w, keptAt(w.length, 0.5));
      const m = end.masks.get(n)!;
      expect(count(m), n).toBe(want.size);
      for (const i of want) expect(isKept(m, i), `${n}[${i}]`).toBe(true);
    }
    // phase 1 here: the same weights under those masks; the model is exactly the mean of the two
    const p0 = await trainSeparately(end.spec, theta, end.masks, lotterySampler(10, 1, 1, 0), { start: 0, end: 2, schedule: 2, seed: 10 });
    const p1 = await trainSeparately(end.spec, theta, end.masks, lotterySampler(10, 1, 1, 1), { start: 0, end: 2, schedule: 2, seed: 10 });
    const avg = mean([p0, p1]);
    for (const [k, v] of end.params) expect(v.data, k).toEqual(avg.get(k));
    // the particles differ (different batch orders), so the mean is not any one of them
    expect(p0.get(LINEARS[0]!)).not.toEqual(p1.get(LINEARS[0]!));
    expectMasked(end, 'end');

    // stopped inside phase 0's second particle, after its last step (before the mean and the prune), and inside phase 1
    const broken = join(tmp, 'swamp-broken');
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 1, step: 4, resumeAt: 3, state: 'sum' },
        { stage: 1, step: 5, resumeAt: 4, state: 'sum' },
        { stage: 1, step: 8, resumeAt: 7, state: 'sum' },
      ],
      (s, cp) => {
        if (s.resumeAt === 7) expectMasked(cp, `checkpoint at ${s.resumeAt}`);
        else expect(LINEARS.filter((n) => cp.masks.has(n))).toEqual([]);
      },
    );
    await expectSameRun(whole, broken);
  }, 300_000);

  it('with one particle is imp, step for step (same stage name: the events carry it)', async () => {
    const config = { rounds: 1, rate: 0.5, rewindStep: 1 };
    const base = { seed: 11, model: MODEL, stages: [PRE] };
    const a = join(tmp, 'one-particle');
    const b = join(tmp, 'imp-same');
    await startRun(resolveRecipe({ ...base, stages: [PRE, { stage: 'train', name: 'ticket', method: 'swamp', config: { ...config, particles: 1 }, steps: 5, batch: 4 }] }), { dir: a, ...quiet });
    await startRun(resolveRecipe({ ...base, stages: [PRE, { stage: 'train', name: 'ticket', method: 'imp', config, steps: 5, batch: 4 }] }), { dir: b, ...quiet });
    await expectSameRun(a, b);
  }, 120_000);
});
