// train method 'gmp' (gradual magnitude pruning): the kept counts at every update follow Zhu & Gupta's
// cubic formula (computed here on its own), pruned weights and their Adam moments stay exactly 0 between
// updates, global / ER / ERK budgets match globalMagnitudeMasks / layerBudgets on the same weights, a
// stopped run resumes to the same losses, and the shipped recipe runs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { count, isKept, layerBudgets, type Mask } from '@sparse/masks';
import { isNM } from '@sparse/nm';
import { globalMagnitudeMasks } from '@sparse/pruners';
import { tensor } from '@sparse/tensor';
import { parseRecipeText, resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { packageRoot } from '../../testing/dist.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-gmp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

/** Zhu & Gupta's s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n Δt))³, written out here on its own. */
const cubic = (t: number, si: number, sf: number, t0: number, t1: number) => (t <= t0 ? si : t >= t1 ? sf : sf + (si - sf) * (1 - (t - t0) / (t1 - t0)) ** 3);
/** Kept entries at sparsity s: round((1 − s) · size), the rounding the method documents (keepCount). */
const keptAt = (size: number, s: number) => Math.round((1 - s) * size);

interface GMPEvent {
  event: string;
  stage: number;
  step: number;
  sparsity: number;
  kept: Record<string, number>;
}
const gmpEvents = (dir: string) => events(dir).filter((e) => e.event === 'gmp') as unknown as GMPEvent[];

/** Every targeted weight is exactly 0 off its mask, and so are its Adam moments when the checkpoint has them. */
function expectMasked(cp: CheckpointContent, names: readonly string[], where: string): void {
  for (const n of names) {
    const m = cp.masks.get(n)!;
    expect(m, `${where}: ${n} has a mask`).toBeDefined();
    expectZeroOffMask(cp, n, m, where);
  }
}

describe('train method gmp', () => {
  // stage 1: 12 steps, start 0.25 -> t0 = 3, end 0.75 -> t1 = 9, every 2: updates at 3, 5, 7 and 9 steps done
  const schedule = { sparsity: 0.8, initialSparsity: 0.1, start: 0.25, end: 0.75, every: 2 };
  const recipe = resolveRecipe({
    seed: 3,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method: 'gmp', config: schedule, steps: 12, batch: 4, lr: 2e-2, checkpointEvery: 2 },
      { stage: 'evaluate' },
    ],
  });
  const sizes = new Map<string, number>();

  it('prunes each layer to the cubic schedule at every update, exactly in counts, reaching the final sparsity at end; pruned weights stay 0 through Adam; a stopped run resumes to the same losses', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const last = await readCheckpoint(whole);
    for (const n of LINEARS) sizes.set(n, last.params.get(n)!.data.length);
    const expected = (t: number) => Object.fromEntries(LINEARS.map((n) => [n, keptAt(sizes.get(n)!, cubic(t, 0.1, 0.8, 3, 9))]));
    const ups = gmpEvents(whole);
    expect(ups.map((e) => e.step)).toEqual([3, 5, 7, 9]);
    for (const e of ups) {
      expect(e.sparsity).toBeCloseTo(cubic(e.step, 0.1, 0.8, 3, 9), 12);
      expect(e.kept, `update at ${e.step}`).toEqual(expected(e.step));
    }
    expect(ups.at(-1)!.sparsity).toBe(0.8);
    expect(Object.values(ups.at(-1)!.kept)).toEqual(LINEARS.map((n) => sizes.get(n)! - Math.round(0.8 * sizes.get(n)!)));
    // after 3 more steps at 80%: the run's masks are the final ones and the weights are exactly 0 off them
    for (const n of LINEARS) expect(count(last.masks.get(n)!), n).toBe(expected(9)[n]);
    expectMasked(last, LINEARS, 'end');

    // stopped after the checkpoints at 4, 6 and 8 (each a step or more after an update at 3, 5, 7):
    // the run masks there have the counts of the last update, weights and moments are 0 off them
    const broken = join(tmp, 'broken');
    const stops = [4, 6, 8].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'gmp' }));
    await runWithStops(recipe, broken, stops, (s, cp) => {
      expect((cp.stageState!.gmp as { step: number }).step).toBe(s.resumeAt - 1);
      for (const n of LINEARS) expect(count(cp.masks.get(n)!), `${n} at ${s.resumeAt}`).toBe(expected(s.resumeAt - 1)[n]);
      expectMasked(cp, LINEARS, `checkpoint at ${s.resumeAt}`);
    });
    await expectSameRun(whole, broken);
    // the resumed run made each update once, at the same steps
    expect(gmpEvents(broken).map((e) => e.step)).toEqual([3, 5, 7, 9]);
  }, 300_000);

  it('global, ER and ERK budgets: per-layer masks equal globalMagnitudeMasks / layerBudgets with top-|W| computed on the same weights', async () => {
    // a single update at end = the last step (t0 = 0 at sparsity 0 prunes nothing): the weights it ranks are
    // those of dense training over the same batches, which a 'dense' train stage reproduces bit for bit
    const base = { seed: 5, model: MODEL, eval: { windows: 4, batch: 4 } };
    const stage = { stage: 'train', steps: 4, batch: 4, lr: 2e-2 };
    const denseDir = join(tmp, 'dense');
    await startRun(resolveRecipe({ ...base, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { ...stage, method: 'dense' }] }), { dir: denseDir, ...quiet });
    const dense = (await readCheckpoint(denseDir)).params;
    const weights = Object.fromEntries(LINEARS.map((n) => [n, tensor(dense.get(n)!.data, dense.get(n)!.shape)]));
    for (const budget of ['global', 'er', 'erk'] as const) {
      const dir = join(tmp, `budget-${budget}`);
      const config = { sparsity: 0.7, start: 0, end: 1, every: 4, budget };
      await startRun(resolveRecipe({ ...base, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { ...stage, method: 'gmp', config }] }), { dir, ...quiet });
      const cp = await readCheckpoint(dir);
      expect(gmpEvents(dir).map((e) => e.step), budget).toEqual([0, 4]);
      let want: Record<string, Mask>;
      if (budget === 'global') want = globalMagnitudeMasks(weights, { sparsity: 0.7 });
      else {
        const keeps = layerBudgets(LINEARS.map((n) => ({ name: n, shape: dense.get(n)!.shape })), 0.7, { method: budget });
        want = {};
        for (const [i, n] of LINEARS.entries()) {
          // brute force: sort |W| descending, keep the first k (ties to the lower index, as topKMask)
          const w = dense.get(n)!.data;
          const order = [...w.keys()].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b).slice(0, keeps[i]!.keep);
          const bits = new Uint32Array(Math.ceil(w.length / 32));
          for (const q of order) bits[q >>> 5]! |= 1 << (q & 31);
          want[n] = { shape: [...dense.get(n)!.shape], bits };
        }
        expect(LINEARS.map((n) => count(cp.masks.get(n)!)), budget).toEqual(keeps.map((k) => k.keep));
      }
      for (const n of LINEARS) {
        expect(count(cp.masks.get(n)!), `${budget} ${n}`).toBe(count(want[n]!));
        expect(Array.from(cp.masks.get(n)!.bits), `${budget} ${n}`).toEqual(Array.from(want[n]!.bits));
        // the kept weights are the dense run's, the others exactly 0
        const w = cp.params.get(n)!.data;
        const d = dense.get(n)!.data;
        for (let q = 0; q < w.length; q++) expect(w[q]).toBe(isKept(want[n]!, q) ? d[q] : 0);
      }
      const total = LINEARS.reduce((a, n) => a + count(cp.masks.get(n)!), 0);
      expect(total, budget).toBe(Math.round(0.3 * LINEARS.reduce((a, n) => a + dense.get(n)!.data.length, 0)));
      if (budget !== 'er') expect(new Set(LINEARS.map((n) => count(cp.masks.get(n)!) / dense.get(n)!.data.length)).size, budget).toBeGreaterThan(1);
    }
  }, 300_000);

  it('N:M: every group of m keeps round((1 − s_t) · m) through 3:4 down to exactly 2:4 at end; ctx.pattern is 2:4; resumes exactly', async () => {
    // 8 steps, end 0.75 -> t1 = 6, every 1: updates at 0..6, s_t on the cubic ramp to 1 − 2/4
    const nmRecipe = resolveRecipe({
      seed: 7,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'train', method: 'gmp', config: { pattern: { n: 2, m: 4 }, start: 0, end: 0.75, every: 1 }, steps: 8, batch: 4, lr: 2e-2, checkpointEvery: 2 },
      ],
    });
    const groupAt = (t: number) => Math.min(4, Math.max(2, Math.round((1 - cubic(t, 0, 0.5, 0, 6)) * 4)));
    expect([0, 1, 2, 3, 4, 5, 6].map(groupAt)).toEqual([4, 3, 3, 2, 2, 2, 2]); // dense, 3:4, then 2:4
    /** Every group of 4 consecutive inputs of every row keeps exactly `k` under the mask. */
    const expectGroups = (m: Mask, k: number, where: string) => {
      const [rows, cols] = m.shape as [number, number];
      for (let r = 0; r < rows; r++) {
        for (let g = 0; g < cols; g += 4) {
          let c = 0;
          for (let j = 0; j < 4; j++) if (isKept(m, r * cols + g + j)) c++;
          if (c !== k) throw new Error(`${where}: row ${r}, group ${g / 4} keeps ${c}, not ${k}`);
        }
      }
    };
    const whole = join(tmp, 'nm-whole');
    await startRun(nmRecipe, { dir: whole, ...quiet });
    const ups = gmpEvents(whole) as (GMPEvent & { group: number })[];
    expect(ups.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(ups.map((e) => e.group)).toEqual([4, 3, 3, 2, 2, 2, 2]);
    const cp = await readCheckpoint(whole);
    expect(cp.pattern).toEqual({ n: 2, m: 4 });
    for (const n of LINEARS) {
      expectGroups(cp.masks.get(n)!, 2, `end ${n}`);
      const w = cp.params.get(n)!;
      expect(isNM({ data: w.data, shape: w.shape, stride: [w.shape[1]!, 1], offset: 0, dtype: 'float32' }, { n: 2, m: 4 }).valid, n).toBe(true);
    }
    expectMasked(cp, LINEARS, 'end');
    // stopped after the checkpoints at 2 (3:4 since the update at 1) and 4 (2:4 since the update at 3)
    const broken = join(tmp, 'nm-broken');
    await runWithStops(nmRecipe, broken, [2, 4].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'gmp' })), (s, c) => {
      for (const n of LINEARS) expectGroups(c.masks.get(n)!, groupAt(s.resumeAt - 1), `checkpoint at ${s.resumeAt}: ${n}`);
      expectMasked(c, LINEARS, `checkpoint at ${s.resumeAt}`);
      expect(c.pattern).toBeUndefined(); // not 2:4 until the stage ends
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it('runs from the shipped recipe gmp-unstructured.yaml (tiny): 80% per layer at the end, perplexities measured', async () => {
    const path = join(packageRoot, 'recipes', 'gmp-unstructured.yaml');
    const raw = parseRecipeText(readFileSync(path, 'utf8'), path) as { model: unknown; eval: unknown; stages: Record<string, unknown>[] };
    raw.model = MODEL;
    raw.eval = { windows: 4, batch: 4 };
    for (const s of raw.stages) {
      if (s.stage === 'pretrain') Object.assign(s, { steps: 4, batch: 4 });
      if (s.stage === 'train') Object.assign(s, { steps: 20, batch: 4, config: { ...(s.config as object), every: 3 } });
    }
    const recipe = resolveRecipe(raw, { source: path, baseDir: join(packageRoot, 'recipes') });
    const dir = join(tmp, 'recipe');
    const summary = await startRun(recipe, { dir, ...quiet });
    expect(summary.evaluations.map((e) => e.label)).toEqual(['dense', 'gmp 80%']);
    for (const e of summary.evaluations) expect(Number.isFinite(e.perplexity)).toBe(true);
    // start 0.1, end 0.7 of 20 steps: t0 = 2, t1 = 14, every 3 -> 2, 5, 8, 11 and 14
    expect(gmpEvents(dir).map((e) => e.step)).toEqual([2, 5, 8, 11, 14]);
    const cp = await readCheckpoint(dir);
    for (const n of LINEARS) expect(count(cp.masks.get(n)!), n).toBe(keptAt(cp.params.get(n)!.data.length, 0.8));
    expectMasked(cp, LINEARS, 'end');
  }, 300_000);
});
