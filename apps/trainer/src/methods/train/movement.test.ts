// train methods 'movement' and 'smp' (first-order pruning): the scores equal −Σ_t W_t ⊙ ∂L/∂W'_t computed
// here step by step with tf.grad at W ⊙ M (pruned entries included: the straight-through estimator); hard
// movement's masks are the top-v scores of the checkpoint before, at the cubic schedule's counts, ending at
// exactly the target; soft movement's are σ(S) > τ_t; pruned weights and their Adam moments are exactly 0 at
// every checkpoint and a pruned value is set aside; SMP leaves every weight it keeps (and every other
// parameter) bit-identical to the start and ends at exactly the target per kind of layer; stopped runs
// resume to the same losses step for step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, maskFromIndices, type Mask } from '@sparse/masks';
import { smpLayerKeeps } from '@sparse/pruners';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { sampleBatch } from '../../data/dataset.js';
import { createModel } from '../../model/index.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { NamedAdam } from '../../train/adam.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { bytesFloat64, FirstOrderScores, scoreTapHooks, type ScoresState } from './first-order.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const MODEL2 = { ...MODEL, layers: 2 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-movement-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Zhu & Gupta's cubic s_t, written out here on its own. */
const cubic = (t: number, si: number, sf: number, t0: number, t1: number) => (t <= t0 ? si : t >= t1 ? sf : sf + (si - sf) * (1 - (t - t0) / (t1 - t0)) ** 3);
const keptAt = (size: number, s: number) => Math.round((1 - s) * size);
const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** The brute-force top-k: sort descending, ties to the lower index. */
function topK(scores: ArrayLike<number>, k: number): Set<number> {
  return new Set([...Array(scores.length).keys()].sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, k));
}

/** Weights (and Adam moments, when the checkpoint has them) exactly 0 off each layer's mask. */
function expectMasked(cp: CheckpointContent, names: readonly string[], where: string): void {
  for (const n of names) {
    const m = cp.masks.get(n);
    expect(m, `${where}: ${n} has a mask`).toBeDefined();
    expectZeroOffMask(cp, n, m!, where);
  }
}

/** A layer's S from a checkpoint's stage state as the method ranks it: float32 of the movement sum, plus the penalty. */
function scoresOf(cp: CheckpointContent, name: string): Float64Array {
  const st = cp.stageState!.scores as ScoresState;
  const mv = bytesFloat64(st.movement[name]!.sum);
  const pen = st.penalty ? bytesFloat64(st.penalty[name]!) : undefined;
  return Float64Array.from(mv, (x, i) => Math.fround(x) + (pen ? pen[i]! : 0));
}

describe('movement scores', () => {
  it('equal −Σ_t W_t ⊙ ∂L/∂W′_t (tf.grad at W ⊙ M here, in float64) over Adam steps, pruned entries scoring with their set-aside values; pruned weights and moments stay 0', () => {
    const recipe = resolveRecipe({ seed: 4, model: MODEL, stages: [{ stage: 'train', method: 'masked', steps: 1, batch: 4 }] });
    const data = loadRunData(recipe.data);
    const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 4 });
    const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, 'scores.jsonl'), 'quiet', { stdout: silent, stderr: silent }), backend);
    const layers = ctx.linears();
    // one layer pruned at random with its values set aside, as a hard mask step leaves it
    const pruned = layers[2]!;
    const keep = new Random(3).sample(Math.round(0.4 * pruned.out * pruned.in), pruned.out * pruned.in);
    const mask: Mask = maskFromIndices([pruned.out, pruned.in], keep);
    const p = ctx.model.params[pruned.name]!;
    const full = Float32Array.from(p.dataSync() as Float32Array);
    const aside = Float32Array.from(full, (x, i) => (isKept(mask, i) ? 0 : x));
    p.assign(tf.tensor(Float32Array.from(full, (x, i) => (isKept(mask, i) ? x : 0)), p.shape));
    ctx.setMask(pruned.name, mask);

    const scores = new FirstOrderScores(layers, false);
    const hooks = scoreTapHooks(ctx, layers, (name, w, g) => {
      const latent = name === pruned.name ? Float32Array.from(w, (x, i) => x + aside[i]!) : w;
      scores.addMovement(name, latent, g, 1);
    });
    const brute = new Map(layers.map((l) => [l.name, new Float64Array(l.out * l.in)]));
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    const vars = Object.entries(ctx.model.params);
    for (let s = 0; s < 4; s++) {
      const b = sampleBatch(ctx.data.main.train, 4, MODEL.ctx, new Random(50 + s));
      const ids = tf.tensor2d(b.inputs, [4, MODEL.ctx], 'int32');
      const targets = tf.tensor2d(b.targets, [4, MODEL.ctx], 'int32');
      // the reference: W_t and ∂L/∂W′ one layer at a time, before the step moves anything
      const base = ctx.hooks({ maskBase: true });
      for (const l of layers) {
        const w = Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array);
        const g = tf.tidy(() => {
          const m = ctx.maskTensor(l.name);
          const eff = m ? tf.mul(ctx.model.params[l.name]!, m) : ctx.model.params[l.name]!;
          return tf.grad((x: tf.Tensor) => ctx.model.loss(ids, targets, { weight: (n, q) => (n === l.name ? x : base.weight!(n, q)) }))(eff);
        });
        const gd = g.dataSync() as Float32Array;
        const acc = brute.get(l.name)!;
        for (let i = 0; i < acc.length; i++) acc[i]! -= (w[i]! + (l.name === pruned.name ? aside[i]! : 0)) * gd[i]!;
        g.dispose();
      }
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => ctx.model.loss(ids, targets, hooks), vars.map(([, v]) => v));
        optimizer.apply(vars.map(([key, variable]) => ({ key, variable, grad: grads[variable.name]! })), 1e-2);
      });
      tf.dispose([ids, targets]);
    }
    let prunedScoring = 0;
    for (const l of layers) {
      const got = scores.movement(l.name);
      const want = brute.get(l.name)!;
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale).toBeGreaterThan(0);
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - want[i]!), `${l.name}[${i}]`).toBeLessThanOrEqual(1e-5 * scale);
      if (l.name === pruned.name) for (let i = 0; i < got.length; i++) if (!isKept(mask, i) && got[i] !== 0) prunedScoring++;
    }
    // the straight-through estimator: pruned entries score too
    expect(prunedScoring).toBeGreaterThan(0.5 * (pruned.out * pruned.in - keep.length));
    // and their weights and moments stayed exactly 0 through the Adam steps
    const w = ctx.model.params[pruned.name]!.dataSync() as Float32Array;
    const st = optimizer.state();
    for (let i = 0; i < w.length; i++) if (!isKept(mask, i)) expect([w[i], st.m[pruned.name]!.data[i], st.v[pruned.name]!.data[i]]).toEqual([0, 0, 0]);
    optimizer.dispose();
    ctx.dispose();
    model.dispose();
  });
});

describe('train method movement', () => {
  it('hard: each mask step keeps the top-v scores of the step before at the cubic counts, ends at exactly 75% per layer, pruned values are set aside at 0, and a stopped run resumes exactly', async () => {
    // 8 steps, end 0.5 -> t1 = 4, every 1: a mask step after every step
    const stage = { stage: 'train', method: 'movement', config: { sparsity: 0.75, end: 0.5, every: 1 }, steps: 8, batch: 4, lr: 1e-2, checkpointEvery: 1 };
    const recipe = resolveRecipe({ seed: 2, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, stage, { stage: 'evaluate' }] });
    const whole = join(tmp, 'hard-whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    expect(summary.stages[1]!.summary).toMatch(/^movement hard, reached 75\.0%/);
    const end = await readCheckpoint(whole);
    for (const n of LINEARS) expect(count(end.masks.get(n)!), n).toBe(keptAt(end.params.get(n)!.data.length, 0.75));
    expectMasked(end, LINEARS, 'end');
    const ups = events(whole).filter((e) => e.event === 'movement') as unknown as { step: number; sparsity: number }[];
    expect(ups.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (const e of ups) expect(e.sparsity).toBeCloseTo(cubic(e.step, 0, 0.75, 0, 4), 12);

    const broken = join(tmp, 'hard-broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipe, broken, [3, 4, 6, 7].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'scores' })), (s, cp) => {
      expectMasked(cp, LINEARS, `checkpoint at ${s.resumeAt}`);
      seen.set(s.resumeAt, cp);
      const before = seen.get(s.resumeAt - 1);
      if (before === undefined) return;
      // the mask step after resumeAt − 1 steps: the top-v of the scores then, v at the cubic schedule
      for (const n of LINEARS) {
        const size = cp.params.get(n)!.data.length;
        const want = topK(scoresOf(before, n), keptAt(size, cubic(s.resumeAt - 1, 0, 0.75, 0, 4)));
        const m = cp.masks.get(n)!;
        expect(count(m), `${n} at ${s.resumeAt}`).toBe(want.size);
        for (const i of want) expect(isKept(m, i), `${n}[${i}] at ${s.resumeAt}`).toBe(true);
        // newly pruned weights: their values before the step are set aside; kept ones have none
        const aside = (cp.stageState!.aside as Record<string, Float32Array>)[n]!;
        const was = before.masks.get(n);
        const w0 = before.params.get(n)!.data;
        for (let i = 0; i < size; i++) {
          if (isKept(m, i)) expect(aside[i]).toBe(0);
          else if (was === undefined || isKept(was, i)) expect(aside[i], `${n}[${i}]`).toBe(w0[i]);
        }
      }
    });
    expect(seen.size).toBe(4);
    await expectSameRun(whole, broken);
  }, 300_000);

  it("hard with budget 'global': one ranking of the scores keeps exactly 30% of all targeted entries", async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'train', method: 'movement', config: { sparsity: 0.7, budget: 'global', every: 2 }, steps: 6, batch: 4, lr: 1e-2 }],
    });
    const dir = join(tmp, 'global');
    await startRun(recipe, { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    const total = LINEARS.reduce((a, n) => a + cp.params.get(n)!.data.length, 0);
    expect(LINEARS.reduce((a, n) => a + count(cp.masks.get(n)!), 0)).toBe(keptAt(total, 0.7));
    expect(new Set(LINEARS.map((n) => count(cp.masks.get(n)!) / cp.params.get(n)!.data.length)).size).toBeGreaterThan(1);
    expectMasked(cp, LINEARS, 'end');
  }, 300_000);

  it('soft: masks are σ(S) > τ_t of the scores the step before (movement plus penalty), the sparsity reached is reported, zeros stay 0, and it resumes exactly', async () => {
    const config = { variant: 'soft', threshold: 0.2, lambda: 2e-5, scoreScale: 1e5, end: 0.5, every: 1 };
    const recipe = resolveRecipe({ seed: 6, model: MODEL, eval: { windows: 4, batch: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'train', method: 'movement', config, steps: 8, batch: 4, lr: 1e-2, checkpointEvery: 1 }] });
    const whole = join(tmp, 'soft-whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    const end = await readCheckpoint(whole);
    expectMasked(end, LINEARS, 'end');
    const total = LINEARS.reduce((a, n) => a + end.params.get(n)!.data.length, 0);
    const kept = LINEARS.reduce((a, n) => a + count(end.masks.get(n)!), 0);
    const reached = 1 - kept / total;
    expect(reached).toBeGreaterThan(0.05);
    expect(reached).toBeLessThan(0.95);
    expect(summary.stages[1]!.summary).toContain(`reached ${(reached * 100).toFixed(1)}%`);
    const tau = (t: number) => cubic(t, 0, 0.2, 0, 4);
    const broken = join(tmp, 'soft-broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipe, broken, [4, 5].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'scores' })), (s, cp) => {
      expectMasked(cp, LINEARS, `checkpoint at ${s.resumeAt}`);
      seen.set(s.resumeAt, cp);
      const before = seen.get(s.resumeAt - 1);
      if (before === undefined) return;
      for (const n of LINEARS) {
        const S = scoresOf(before, n);
        const floor = Math.floor(0.005 * S.length) + 1;
        let want = new Set([...S.keys()].filter((i) => sig(S[i]!) > tau(s.resumeAt - 1)));
        if (want.size < floor) want = topK(S, floor);
        const m = cp.masks.get(n)!;
        expect(count(m), `${n} at ${s.resumeAt}`).toBe(want.size);
        for (const i of want) expect(isKept(m, i)).toBe(true);
      }
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it('refuses layers that already have masks', async () => {
    const recipe = resolveRecipe({ seed: 3, model: MODEL, stages: [{ stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 }, targets: ['mlp.up'] }, { stage: 'train', method: 'movement', steps: 2, batch: 4 }] });
    await expect(startRun(recipe, { dir: join(tmp, 'pruned'), ...quiet })).rejects.toThrow(/stages\[1\]: movement prunes dense layers, but h\.0\.mlp\.c_fc\.weight has a mask already/);
  }, 120_000);
});

describe('train method smp', () => {
  const linears2 = (cp: CheckpointContent) => [...cp.params.keys()].filter((k) => /^h\.\d\.(attn|mlp)\.c_\w+\.weight$/.test(k));

  it('global (SMP-S): every kept weight and every other parameter is bit-identical to the start, each kind of layer keeps exactly 20% split by mean σ(S), and it resumes exactly', async () => {
    const base = { seed: 7, model: MODEL2, eval: { windows: 4, batch: 4 } };
    const pre = { stage: 'pretrain', steps: 3, batch: 4 };
    const start = join(tmp, 'smp-start');
    await startRun(resolveRecipe({ ...base, stages: [pre] }), { dir: start, ...quiet });
    const w0 = (await readCheckpoint(start)).params;
    const recipe = resolveRecipe({ ...base, stages: [pre, { stage: 'train', method: 'smp', config: { sparsity: 0.8, end: 0.5, every: 2, lambda: 1 }, steps: 8, batch: 4, lr: 3000, checkpointEvery: 2 }, { stage: 'evaluate' }] });
    const whole = join(tmp, 'smp-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const end = await readCheckpoint(whole);
    const names = linears2(end);
    expect(names).toHaveLength(8);
    expectMasked(end, names, 'end');
    for (const [k, v] of end.params) {
      const m = end.masks.get(k);
      const a = w0.get(k)!.data;
      for (let i = 0; i < a.length; i++) if (!m || isKept(m, i)) expect(v.data[i], `${k}[${i}]`).toBe(a[i]);
    }
    // per kind (the same weight name in both blocks): exactly keepCount(their entries, 0.8) together
    let uneven = 0;
    for (const kind of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
      const ns = names.filter((n) => n.includes(kind));
      const size = ns.reduce((a, n) => a + end.params.get(n)!.data.length, 0);
      expect(ns.reduce((a, n) => a + count(end.masks.get(n)!), 0), kind).toBe(keptAt(size, 0.8));
      uneven = Math.max(uneven, Math.abs(count(end.masks.get(ns[0]!)!) - count(end.masks.get(ns[1]!)!)));
    }
    // the split follows the scores, not just the sizes (equal here): some kind is split unevenly
    expect(uneven).toBeGreaterThanOrEqual(2);
    // inside the stage: the mask step after 2 steps splits each kind by mean σ(S) of the scores then
    const broken = join(tmp, 'smp-broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipe, broken, [2, 4].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'scores' })), (s, cp) => {
      // after 2 steps nothing is pruned yet (the mask step at 0 is at sparsity 0); after 4 the step at 2 has pruned
      if (s.resumeAt === 2) expect(names.filter((n) => cp.masks.has(n))).toEqual([]);
      else expectMasked(cp, names, `checkpoint at ${s.resumeAt}`);
      seen.set(s.resumeAt, cp);
      const before = seen.get(2);
      if (s.resumeAt !== 4 || before === undefined) return;
      for (const kind of ['attn.c_attn', 'mlp.c_fc']) {
        const ns = names.filter((n) => n.includes(kind));
        const S = ns.map((n) => scoresOf(before, n));
        const size = ns.reduce((a, n) => a + before.params.get(n)!.data.length, 0);
        const keeps = smpLayerKeeps(S.map((x) => ({ size: x.length, weight: x.reduce((a, v) => a + sig(v), 0) / x.length })), keptAt(size, cubic(2, 0, 0.8, 0, 4)));
        ns.forEach((n, j) => {
          const want = topK(S[j]!, keeps[j]!);
          const m = cp.masks.get(n)!;
          expect(count(m), n).toBe(want.size);
          for (const i of want) expect(isKept(m, i)).toBe(true);
        });
      }
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it('local (SMP-L): each layer keeps exactly round(0.3 · size), the kept weights as they were', async () => {
    const base = { seed: 8, model: MODEL, eval: { windows: 4, batch: 4 } };
    const pre = { stage: 'pretrain', steps: 3, batch: 4 };
    const start = join(tmp, 'smpl-start');
    await startRun(resolveRecipe({ ...base, stages: [pre] }), { dir: start, ...quiet });
    const w0 = (await readCheckpoint(start)).params;
    const dir = join(tmp, 'smpl');
    await startRun(resolveRecipe({ ...base, stages: [pre, { stage: 'train', method: 'smp', config: { sparsity: 0.7, masking: 'local', every: 3 }, steps: 6, batch: 4, lr: 100 }] }), { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    for (const n of LINEARS) {
      const m = cp.masks.get(n)!;
      const w = cp.params.get(n)!.data;
      expect(count(m), n).toBe(keptAt(w.length, 0.7));
      for (let i = 0; i < w.length; i++) expect(w[i]).toBe(isKept(m, i) ? w0.get(n)!.data[i] : 0);
    }
  }, 300_000);
});
