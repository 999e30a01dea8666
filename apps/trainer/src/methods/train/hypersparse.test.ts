// train method 'hypersparse': the HyperSparse loss is 0 in value and its tfjs gradient equals the paper's
// formula sign(w) · s · (1 − tanh²(s|w|)) · Σ|w| / Σ tanh(s|w|), s = atanh(1/√3) / τ, evaluated here in
// float64 (0 at w = 0); τ is the smallest |w| of the top set (sorted here); λ follows lambda · eta^⌊(t − W) /
// every⌋; in a run, the step losses are the plain cross-entropy (HS adds 0), the regularization changes
// the weights, the final prune keeps exactly the budget by |W|, the pruned weights stay exactly 0 through
// Adam in the masked fine-tune after it, and a stopped run resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, layerBudgets } from '@sparse/masks';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { chooseBackend } from '../../backend.js';
import { createModel } from '../../model/index.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops, silent } from '../../testing/resume.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { hsGroups, hsLambdaAt, hyperSparseLoss, magnitudePrune, topSetThreshold } from './hypersparse.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-hypersparse-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

/** The paper's HS gradient in float64: sign(w_k) · s · (1 − tanh²(s|w_k|)) · Σ|w| / Σ tanh(s|w|). */
function hsGradientRef(ws: readonly Float32Array[], tau: number): Float64Array[] {
  const s = Math.atanh(1 / Math.sqrt(3)) / tau;
  let l1 = 0;
  let th = 0;
  for (const w of ws) for (const x of w) {
    l1 += Math.abs(x);
    th += Math.tanh(s * Math.abs(x));
  }
  return ws.map((w) => Float64Array.from(w, (x) => Math.sign(x) * s * (1 - Math.tanh(s * Math.abs(x)) ** 2) * (l1 / th)));
}

describe('the HyperSparse loss', () => {
  it('τ is the keep-th largest |w| over the group (sorted here)', () => {
    const rng = new Random(4);
    const ws = [Float32Array.from({ length: 37 }, () => rng.normal()), Float32Array.from({ length: 20 }, () => rng.normal())];
    const sorted = ws.flatMap((w) => Array.from(w, Math.abs)).sort((a, b) => b - a);
    for (const keep of [1, 5, 30, 57]) expect(topSetThreshold(ws, keep)).toBe(sorted[keep - 1]);
    expect(topSetThreshold(ws, 0)).toBe(0);
    expect(() => topSetThreshold(ws, 58)).toThrow(/exceeds/);
  });

  it('is 0 in value and its gradient is the paper\'s formula (float64 brute force), 0 at w = 0, near 1 for small weights and near 0 for the top set', () => {
    const rng = new Random(11);
    const shapes = [[6, 5], [4, 9], [3, 3]];
    let compared = 0;
    for (let trial = 0; trial < 4; trial++) {
      const datas = shapes.map(([r, c]) => Float32Array.from({ length: r! * c! }, () => rng.normal() * (trial + 1) * 0.05));
      datas[0]![3] = 0; // an exact zero: sign 0, no pull
      datas[1]![7] = 0;
      const keep = [5, 12, 30, 50][trial]!;
      const tau = topSetThreshold(datas, keep);
      const xs = datas.map((d, i) => tf.tensor(d, shapes[i]!));
      const value = hyperSparseLoss(xs, tau);
      const l1 = datas.reduce((a, d) => a + d.reduce((b, x) => b + Math.abs(x), 0), 0);
      expect(Math.abs(value.dataSync()[0]!)).toBeLessThanOrEqual(1e-6 * l1);
      const grads = tf.grads((...ts: tf.Tensor[]) => hyperSparseLoss(ts, tau))(xs);
      const ref = hsGradientRef(datas, tau);
      let small = 0;
      let big = 0;
      grads.forEach((g, i) => {
        const got = g.dataSync() as Float32Array;
        ref[i]!.forEach((r, q) => expect(Math.abs(got[q]! - r), `trial ${trial}, tensor ${i}[${q}]`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(r)));
        // the direction is sign(w): a pull towards 0
        datas[i]!.forEach((x, q) => {
          if (x === 0) expect(got[q]).toBe(0);
          else expect(Math.sign(got[q]!)).toBe(Math.sign(x));
          if (x !== 0 && Math.abs(x) < 0.1 * tau) small = Math.max(small, Math.abs(got[q]!));
          if (Math.abs(x) > 4 * tau) big = Math.max(big, Math.abs(got[q]!));
        });
      });
      // weights well inside the top set are pulled far less than small ones
      if (small > 0 && big > 0) {
        expect(big).toBeLessThan(0.1 * small);
        compared++;
      }
      tf.dispose([value, ...xs, ...grads]);
    }
    expect(compared).toBeGreaterThan(0);
  });

  it('λ is 0 in the warm-up, then lambda · eta^⌊(t − W) / every⌋', () => {
    const cfg = { lambda: 1e-3, eta: 1.5, every: 4 };
    // step is 1-based: t = step − 1 steps done
    expect([1, 2, 3].map((step) => hsLambdaAt(cfg, 3, step))).toEqual([0, 0, 0]);
    for (let step = 4; step <= 30; step++) expect(hsLambdaAt(cfg, 3, step)).toBeCloseTo(1e-3 * 1.5 ** Math.floor((step - 1 - 3) / 4), 15);
    expect(hsLambdaAt(cfg, 0, 1)).toBe(1e-3);
  });

  it('groups: one over all layers for global, one per layer with layerBudgets\' counts for erk', () => {
    const layers = [
      { name: 'a', out: 8, in: 16 },
      { name: 'b', out: 32, in: 16 },
    ] as unknown as Parameters<typeof hsGroups>[0];
    expect(hsGroups(layers, 0.75, 'global')).toEqual([{ names: ['a', 'b'], keep: Math.round(0.25 * (128 + 512)) }]);
    expect(hsGroups(layers, 0.75, 'layer')).toEqual([{ names: ['a'], keep: 32 }, { names: ['b'], keep: 128 }]);
    const erk = layerBudgets([{ shape: [8, 16] }, { shape: [32, 16] }], 0.75, { method: 'erk' });
    expect(hsGroups(layers, 0.75, 'erk')).toEqual([{ names: ['a'], keep: erk[0]!.keep }, { names: ['b'], keep: erk[1]!.keep }]);
  });
});

/** Weights and Adam moments exactly 0 off every targeted layer's mask. */
function expectMasked(cp: CheckpointContent, where: string): void {
  for (const n of LINEARS) {
    const m = cp.masks.get(n)!;
    expect(m, `${where}: ${n}`).toBeDefined();
    expectZeroOffMask(cp, n, m, where);
  }
}

interface HSEvent {
  event: string;
  stage: number;
  step: number;
  lambda?: number;
  outside?: number;
  kept?: Record<string, number>;
}

describe('train method hypersparse', () => {
  const base = { seed: 9, model: MODEL, eval: { windows: 4, batch: 4 } };
  const pretrain = { stage: 'pretrain', steps: 4, batch: 4 };
  // 12 steps, warm-up 0.25 -> W = 3, λ = 0.05 · 2^⌊(t − 3) / 3⌋ from t = 3
  const hs = { stage: 'train', method: 'hypersparse', config: { sparsity: 0.75, budget: 'global', lambda: 0.05, eta: 2, every: 3, warmup: 0.25 }, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 2 };
  const finetune = { stage: 'train', method: 'masked', steps: 4, batch: 4, lr: 1e-2, checkpointEvery: 2 };
  const recipe = resolveRecipe({ ...base, stages: [pretrain, hs, finetune, { stage: 'evaluate' }] });

  it('regularizes on the λ schedule with the plain cross-entropy as step loss, prunes to exactly the budget by |W|, keeps zeros through the masked fine-tune, and resumes exactly', async () => {
    const whole = join(tmp, 'whole');
    const summary = await startRun(recipe, { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    const ev = events(whole) as unknown as HSEvent[];
    const lam = ev.filter((e) => e.event === 'hypersparse');
    expect(lam.map((e) => e.step)).toEqual([3, 6, 9]);
    lam.forEach((e, k) => expect(e.lambda).toBeCloseTo(0.05 * 2 ** k, 15));
    const prune = ev.filter((e) => e.event === 'hypersparse-prune');
    expect(prune).toHaveLength(1);
    expect(prune[0]!.step).toBe(12);
    const end = await readCheckpoint(whole);
    const total = LINEARS.reduce((a, n) => a + end.params.get(n)!.data.length, 0);
    expect(Object.values(prune[0]!.kept!).reduce((a, k) => a + k, 0)).toBe(Math.round(0.25 * total));
    expect(LINEARS.reduce((a, n) => a + count(end.masks.get(n)!), 0)).toBe(Math.round(0.25 * total));
    for (const n of LINEARS) expect(count(end.masks.get(n)!)).toBe(prune[0]!.kept![n]);
    expectMasked(end, 'end');

    // the same stage with the regularization off (lambda tiny, eta 1) gives the same losses while λ is 0 and
    // other weights after it: the HS term trains, and adds nothing to the reported loss
    const off = join(tmp, 'off');
    await startRun(resolveRecipe({ ...base, stages: [pretrain, { ...hs, config: { ...hs.config, lambda: 1e-30, eta: 1 } }] }), { dir: off, ...quiet });
    const steps = (dir: string) => (events(dir) as unknown as HSEvent[]).filter((e) => e.event === 'step' && e.stage === 1) as unknown as { step: number; loss: number }[];
    const a = steps(whole);
    const b = steps(off);
    // steps 1-4 (λ = 0 for the first 3, the 4th's loss is taken before its update) are identical
    for (let i = 0; i < 4; i++) expect(a[i]!.loss).toBe(b[i]!.loss);
    expect(a.slice(4).some((x, i) => x.loss !== b[i + 4]!.loss)).toBe(true);
    // and it shrinks the weights outside the top set: a smaller share of Σ|w| is pruned than without it
    const outsideAt = (dir: string) => (events(dir) as unknown as HSEvent[]).find((e) => e.event === 'hypersparse-prune')!.outside!;
    expect(outsideAt(whole)).toBeLessThan(outsideAt(off));

    // stopped inside the regularized stage (after the checkpoints at 4 and 10) and in the fine-tune (at 2)
    const broken = join(tmp, 'broken');
    const seen = new Map<string, CheckpointContent>();
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 1, step: 5, resumeAt: 4, state: 'hypersparse' },
        { stage: 1, step: 11, resumeAt: 10, state: 'hypersparse' },
        { stage: 2, step: 3, resumeAt: 2, state: 'batches' },
      ],
      (s, cp) => void seen.set(`${s.stage}:${s.resumeAt}`, cp),
    );
    // in the regularized stage the layers are dense
    for (const n of LINEARS) expect(seen.get('1:10')!.masks.has(n)).toBe(false);
    expect((seen.get('1:10')!.stageState!.hypersparse as { lambda: number }).lambda).toBeCloseTo(0.05 * 2 ** 2, 15);
    // in the fine-tune: the prune's masks, zeros and zero moments off them after two Adam steps
    const ft = seen.get('2:2')!;
    expectMasked(ft, 'fine-tune at 2');
    for (const n of LINEARS) expect(Array.from(ft.masks.get(n)!.bits)).toEqual(Array.from(end.masks.get(n)!.bits));
    await expectSameRun(whole, broken);
  }, 300_000);

  it('the prune keeps the largest |W| (brute force), per layer and global, and zeroes the rest', async () => {
    const backend = await chooseBackend();
    const recipe1 = resolveRecipe({ seed: 2, model: MODEL, stages: [{ stage: 'evaluate' }] });
    const data = loadRunData(recipe1.data);
    for (const budget of ['layer', 'global'] as const) {
      const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 2 });
      const ctx = new RunContext(recipe1, tmp, model, data, new RunLog(join(tmp, `prune-${budget}.jsonl`), 'quiet', { stdout: silent, stderr: silent }), backend);
      const layers = ctx.linears();
      const before = new Map(layers.map((l) => [l.name, Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array)]));
      const kept = magnitudePrune(ctx, layers, { sparsity: 0.6, budget });
      // brute force: sort |W| (per layer, or all layers together), keep the first round(0.4 · n)
      const want = new Map<string, Set<number>>(layers.map((l) => [l.name, new Set<number>()]));
      if (budget === 'layer') {
        for (const l of layers) {
          const w = before.get(l.name)!;
          for (const q of [...w.keys()].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b).slice(0, Math.round(0.4 * w.length))) want.get(l.name)!.add(q);
        }
      } else {
        const all = layers.flatMap((l) => Array.from(before.get(l.name)!, (x, q) => ({ a: Math.abs(x), n: l.name, q })));
        all.sort((x, y) => y.a - x.a);
        const k = Math.round(0.4 * all.length);
        expect(all[k - 1]!.a).toBeGreaterThan(all[k]!.a); // no tie at the cut
        for (const x of all.slice(0, k)) want.get(x.n)!.add(x.q);
      }
      for (const l of layers) {
        const m = ctx.masks.get(l.name)!;
        const w = ctx.model.params[l.name]!.dataSync() as Float32Array;
        const w0 = before.get(l.name)!;
        expect(kept[l.name]).toBe(want.get(l.name)!.size);
        for (let q = 0; q < w.length; q++) {
          expect(isKept(m, q), `${budget} ${l.name}[${q}]`).toBe(want.get(l.name)!.has(q));
          expect(w[q]).toBe(want.get(l.name)!.has(q) ? w0[q] : 0);
        }
      }
      ctx.dispose();
      model.dispose();
    }
  });
});
