// SRigL's dynamic neuron ablation in the trainer (train method 'srigl', gammaSal > 0). One update on a
// layer whose weights and gradients are built so that two neurons have too few salient weights: exactly
// those are ablated (rows exactly 0, Adam moments exactly 0) and the others' fan-in grows to
// ⌊B / neurons left⌋, all as the rule computed here by sorting says. Whole recipe runs: after every update
// every layer holds neurons left · ⌊B / neurons left⌋ entries (B = rows · round(keep / rows) computed
// here), every active row the same fan-in, zeros and zero moments off the masks, rewire events that
// match the masks; the run ablates and resumes exactly; and the sparse path (whose packed layers change
// size with the ablation) keeps the same invariants, gives the dense path's losses and resumes exactly;
// a checkpoint that lost the budgets is refused once neurons are ablated.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, countPerRow, isKept, layerBudgets, maskFromBooleans, type Mask } from '@sparse/masks';
import { sriglConfigSchema } from '@sparse/masks/schemas';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { sampleBatch } from '../../data/dataset.js';
import { createModel } from '../../model/index.js';
import type { LinearInfo } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { CHECKPOINT_DIR, readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { resumeRun, startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { NamedAdam } from '../../train/adam.js';
import { initialMasks, rewire } from './dst.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-srigl-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The ablation rule by sorting: salient = the (active − ⌊f·active⌋) largest |w| of the active entries ∪
 * the ⌊f·active⌋ largest |g| of all entries; a row with fewer than max(1, ⌊γ·⌊B/rows⌋⌋) salient goes
 * (the threshold capped by the count at rank ⌊B/cols⌋); fan-in ⌊B / rows left⌋; the rows left keep the
 * largest |w| of their active entries among the (active − ⌊f·active⌋) best, at most the fan-in each,
 * and refill by |g| (ties: lower index).
 */
function ruleBySorting(mask: Mask, w: Float32Array, g: Float32Array, fraction: number, gammaSal: number, budget: number) {
  const [rows, cols] = mask.shape as [number, number];
  const all = [...Array(rows * cols).keys()];
  const active = all.filter((i) => isKept(mask, i));
  const nPrune = Math.floor(fraction * active.length);
  const nKeep = active.length - nPrune;
  const byW = (xs: number[]) => [...xs].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b);
  const byG = (xs: number[]) => [...xs].sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!) || a - b);
  const salient = new Set([...byW(active).slice(0, nKeep), ...byG(all).slice(0, nPrune)]);
  const counts = Array.from({ length: rows }, (_, r) => all.filter((i) => Math.floor(i / cols) === r && salient.has(i)).length);
  let threshold = Math.max(1, Math.floor(gammaSal * Math.floor(budget / rows)));
  const ranked = [...counts].sort((a, b) => b - a);
  if (Math.floor(budget / cols) < rows) threshold = Math.min(threshold, ranked[Math.floor(budget / cols)]!);
  const ablated = counts.flatMap((c, r) => (c < threshold ? [r] : []));
  const fanIn = Math.floor(budget / (rows - ablated.length));
  const best = new Set(byW(active.filter((i) => !ablated.includes(Math.floor(i / cols)))).slice(0, nKeep));
  const kept = new Set<number>();
  for (let r = 0; r < rows; r++) {
    if (ablated.includes(r)) continue;
    const row = all.filter((i) => Math.floor(i / cols) === r);
    const keep = byW(row.filter((i) => best.has(i))).slice(0, fanIn);
    for (const i of [...keep, ...byG(row.filter((i) => !keep.includes(i))).slice(0, fanIn - keep.length)]) kept.add(i);
  }
  return { counts, threshold, ablated, fanIn, kept };
}

describe('one update', () => {
  it('ablates exactly the neurons with too few salient weights; their rows and moments become exactly 0 and the others grow to floor(B / neurons left)', () => {
    const cfg = sriglConfigSchema.parse({ sparsity: 0.5, budget: 'uniform' });
    const recipe = resolveRecipe({ seed: 5, model: MODEL, stages: [{ stage: 'train', method: 'masked', steps: 1, batch: 4 }] });
    const data = loadRunData(recipe.data);
    const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 5 });
    const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, 'one.jsonl'), 'quiet', { stdout: silent, stderr: silent }), backend);
    const layers = ctx.linears();
    for (const [n, m] of initialMasks(layers, cfg, new Random(1), true)) ctx.setMask(n, m);
    const l = layers.find((x) => x.out === 16 && x.in === 16)!;
    const [rows, cols, k] = [16, 16, 8];
    // row r is active at columns r, r + 2, ..., r + 14 (mod 16): fan-in 8, budget B = 128
    const mask = maskFromBooleans(Array.from({ length: rows * cols }, (_, i) => (i % cols) % 2 === Math.floor(i / cols) % 2), [rows, cols]);
    expect(Array.from(countPerRow(mask))).toEqual(new Array(rows).fill(k));
    ctx.setMask(l.name, mask);
    // a few Adam steps through the masks, so the active weights have nonzero moments
    const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
    const hooks = ctx.hooks({ maskBase: true });
    const vars = Object.entries(ctx.model.params);
    for (let s = 0; s < 2; s++) {
      const b = sampleBatch(ctx.data.main.train, 4, MODEL.ctx, new Random(100 + s));
      tf.tidy(() => {
        const ids = tf.tensor2d(b.inputs, [4, MODEL.ctx], 'int32');
        const targets = tf.tensor2d(b.targets, [4, MODEL.ctx], 'int32');
        const { grads } = tf.variableGrads(() => ctx.model.loss(ids, targets, hooks), vars.map(([, v]) => v));
        optimizer.apply(vars.map(([key, variable]) => ({ key, variable, grad: grads[variable.name]! })), 1e-2);
      });
    }
    // Row 3: one large weight, the rest tiny; row 9: all small; row 12: two large weights. The drop of
    // floor(0.16 * 128) = 20 takes row 12's six tiny ones, row 3's seven and row 9's seven smallest, so
    // rows 3 and 9 keep 1 salient weight, row 12 keeps 2; the 20 largest |g| sit in other rows.
    const w = new Float32Array(rows * cols);
    const g = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      let j = 0;
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        if (!isKept(mask, i)) continue;
        w[i] = r === 3 ? (j === 0 ? 5 : 1e-6 * j) : r === 9 ? 1e-4 * (j + 1) : r === 12 ? (j < 2 ? 5 + j : 1e-7 * j) : 1 + 1e-3 * i;
        j++;
      }
    }
    let big = 0;
    for (let i = 0; i < rows * cols; i++) {
      const r = Math.floor(i / cols);
      if ([3, 9, 12].includes(r)) continue;
      g[i] = !isKept(mask, i) && big < 20 && i % 3 === 0 ? (big++, 2 + 0.01 * i) : 1e-3 * Math.sin(i);
    }
    expect(big).toBe(20);
    ctx.model.params[l.name]!.assign(tf.tensor(w, [rows, cols]));
    const before = optimizer.state();
    const budget = rows * k;
    const fraction = 0.16;
    const gammaSal = 0.3; // threshold max(1, floor(0.3 * 8)) = 2
    const ref = ruleBySorting(mask, w, g, fraction, gammaSal, budget);
    expect(ref.counts[3]).toBe(1);
    expect(ref.counts[9]).toBe(1);
    expect(ref.counts[12]).toBe(2);
    expect(ref.threshold).toBe(2);
    expect(ref.ablated).toEqual([3, 9]);
    expect(ref.fanIn).toBe(9); // floor(128 / 14)

    const r = rewire(ctx, [l], { fraction, rng: new Random(2), grads: new Map([[l.name, g]]), optimizer, fanIn: true, ablation: { gammaSal, budgets: new Map([[l.name, budget]]) } }).get(l.name)!;
    expect(Array.from(r.ablated!)).toEqual([3, 9]);
    expect(r.fanIn).toBe(9);
    const next = ctx.masks.get(l.name)!;
    expect(Array.from(countPerRow(next))).toEqual(Array.from({ length: rows }, (_, row) => (row === 3 || row === 9 ? 0 : 9)));
    expect(count(next)).toBe(14 * 9);
    for (let i = 0; i < rows * cols; i++) expect(isKept(next, i), `entry ${i}`).toBe(ref.kept.has(i));
    // ablated rows: weights and moments exactly 0 (the moments were not before); kept weights unchanged, grown ones at 0
    const after = Float32Array.from(ctx.model.params[l.name]!.dataSync() as Float32Array);
    const state = optimizer.state();
    const [m, v] = [state.m[l.name]!.data, state.v[l.name]!.data];
    for (const row of [3, 9]) {
      expect(before.m[l.name]!.data.slice(row * cols, (row + 1) * cols).some((x) => x !== 0)).toBe(true);
      for (let c = 0; c < cols; c++) {
        const i = row * cols + c;
        expect(Object.is(after[i], 0), `w[${i}]`).toBe(true);
        expect([m[i], v[i]], `moments[${i}]`).toEqual([0, 0]);
      }
    }
    for (let i = 0; i < rows * cols; i++) {
      if (!isKept(next, i)) expect(after[i]).toBe(0);
      else if (isKept(mask, i)) expect(after[i]).toBe(w[i]);
      else expect([after[i], m[i], v[i]]).toEqual([0, 0, 0]);
    }
    // without ablation the same update keeps fan-in 8 everywhere
    ctx.setMask(l.name, mask);
    ctx.model.params[l.name]!.assign(tf.tensor(w, [rows, cols]));
    const plain = rewire(ctx, [l], { fraction, rng: new Random(2), grads: new Map([[l.name, g]]), fanIn: true }).get(l.name)!;
    expect(plain.ablated).toBeUndefined();
    expect(Array.from(countPerRow(ctx.masks.get(l.name)!))).toEqual(new Array(rows).fill(8));
    optimizer.dispose();
    ctx.dispose();
  });
});

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
  rewired: Record<string, number>;
  ablated: Record<string, number>;
  fanIn: Record<string, number>;
}

describe('from a recipe', () => {
  const SEED = 6;
  const config = { sparsity: 0.75, budget: 'erk', every: 2, end: 0.75, fraction: 0.5, gammaSal: 0.6 };
  // updates after 2, 4 and 6 steps (end = round(0.75 * 10) = 8); a checkpoint after every step
  const stage = (path: 'dense' | 'sparse') => ({ stage: 'train', method: 'srigl', config, steps: 10, batch: 4, lr: 1e-2, checkpointEvery: 1, path });
  const recipeOf = (path: 'dense' | 'sparse') => resolveRecipe({ seed: SEED, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [stage(path)] });
  const linears = linearsOf(SEED);
  const keep = new Map(linears.map((l, i) => [l.name, layerBudgets(linears.map((x) => ({ shape: [x.out, x.in] })), 0.75, { method: 'erk' })[i]!.keep]));
  // B: every row starts with round(keep / rows) inputs, in [1, inputs]
  const budget = new Map(linears.map((l) => [l.name, l.out * Math.min(l.in, Math.max(1, Math.round(keep.get(l.name)! / l.out)))]));

  /** After an update: each layer holds n · floor(B / n) entries for its n active rows, all at that fan-in; zeros and zero moments off the mask. */
  function expectInvariants(cp: CheckpointContent, inside = true): number {
    // inside the stage the checkpoint carries the budgets (the end-of-run one has no stage state)
    if (inside) expect(cp.stageState?.fanInBudget).toEqual(Object.fromEntries(budget));
    let off = 0;
    for (const l of linears) {
      const m = cp.masks.get(l.name)!;
      const perRow = Array.from(countPerRow(m));
      const on = perRow.filter((c) => c > 0).length;
      const b = budget.get(l.name)!;
      expect(new Set(perRow.filter((c) => c > 0)), l.name).toEqual(new Set([Math.floor(b / on)]));
      expect(count(m), l.name).toBe(on * Math.floor(b / on));
      expect(on).toBeGreaterThanOrEqual(Math.floor(b / l.in) + 1);
      off += l.out - on;
      const w = cp.params.get(l.name)!.data;
      const [mm, vv] = [cp.optimizer?.m[l.name]?.data, cp.optimizer?.v[l.name]?.data];
      if (inside) expect(mm, `${l.name} moments`).toBeDefined();
      for (let i = 0; i < w.length; i++) {
        if (isKept(m, i)) continue;
        expect(w[i], `${l.name}[${i}]`).toBe(0);
        if (mm) expect([mm[i], vv![i]], `${l.name} moments [${i}]`).toEqual([0, 0]);
      }
    }
    return off;
  }

  it('keeps the invariants after every update, logs the ablations, and resumes exactly, on the dense and on the sparse path', async () => {
    const whole = join(tmp, 'srigl-dense');
    const summary = await startRun(recipeOf('dense'), { dir: whole, ...quiet });
    expect(Number.isFinite(summary.evaluations.at(-1)?.perplexity ?? 0)).toBe(true);
    const rewires = events(whole).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(rewires.map((e) => e.step)).toEqual([2, 4, 6]);
    // the events' counts agree with the rule: the masks event after each update has n · floor(B / n) entries
    const masks = events(whole).filter((e) => e.event === 'masks') as unknown as { step: number; layers: Record<string, number> }[];
    for (const e of rewires) {
      const after = masks.find((x) => x.step === e.step + 1)!;
      for (const l of linears) {
        const on = l.out - e.ablated[l.name]!;
        expect(e.fanIn[l.name], l.name).toBe(Math.floor(budget.get(l.name)! / on));
        if (after.layers[l.name] !== undefined) expect(Math.round((1 - after.layers[l.name]!) * l.out * l.in), `${l.name} at ${e.step}`).toBe(on * e.fanIn[l.name]!);
      }
    }
    // neurons were ablated, and at least one layer's count changed because of it
    expect(rewires.some((e) => Object.values(e.ablated).some((a) => a > 0))).toBe(true);
    expect(rewires.some((e) => linears.some((l) => (l.out - e.ablated[l.name]!) * e.fanIn[l.name]! !== budget.get(l.name)))).toBe(true);
    const end = await readCheckpoint(whole);
    const last = rewires.at(-1)!;
    expect(expectInvariants(end, false)).toBe(Object.values(last.ablated).reduce((a, b) => a + b, 0));
    const total = linears.reduce((a, l) => a + l.out, 0);
    const off = Object.values(last.ablated).reduce((a, b) => a + b, 0);
    const layersHit = Object.values(last.ablated).filter((a) => a > 0).length;
    const said = (events(whole) as unknown as { event: string; summary?: string }[]).find((e) => e.event === 'stage-end')!;
    expect(said.summary).toContain(`, ${off} of ${total} neurons ablated (γ_sal 0.6) in ${layersHit} of ${linears.length} layers,`);

    // stopped after the checkpoint following each update, resumed each time
    const broken = join(tmp, 'srigl-dense-broken');
    await runWithStops(
      recipeOf('dense'),
      broken,
      [2, 4, 6].map((t) => ({ stage: 0, step: t + 2, resumeAt: t + 1, state: 'fanInBudget' })),
      (s, cp) => {
        const e = rewires.find((x) => x.step === s.resumeAt - 1)!;
        expect(expectInvariants(cp)).toBe(Object.values(e.ablated).reduce((a, b) => a + b, 0));
        for (const l of linears) expect(Array.from(countPerRow(cp.masks.get(l.name)!)).filter((c) => c === 0).length, l.name).toBe(e.ablated[l.name]);
      },
    );
    await expectSameRun(whole, broken);

    // The sparse path: packed layers resized by the ablation; losses equal the dense path's to 1e-4. The
    // masks are not compared entry for entry: some rows' dense gradients are zero up to rounding (1e-15,
    // e.g. attention key rows), and a constant fan-in must regrow inside each row, so the two paths'
    // summation orders can pick different entries there (RigL's layer-wide regrowth never reaches them).
    const sparse = join(tmp, 'srigl-sparse');
    await startRun(recipeOf('sparse'), { dir: sparse, ...quiet });
    expect((events(sparse).filter((e) => e.event === 'path') as unknown as { path: string }[]).map((e) => e.path)).toEqual(['sparse']);
    const losses = (dir: string) => events(dir).filter((e) => e.event === 'step').map((e) => e.loss!);
    const [a, b] = [losses(whole), losses(sparse)];
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `step ${i + 1}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(a[i]!)));
    const sparseRewires = events(sparse).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(sparseRewires.some((e) => linears.some((l) => (l.out - e.ablated[l.name]!) * e.fanIn[l.name]! !== budget.get(l.name)))).toBe(true);
    expectInvariants(await readCheckpoint(sparse), false);
    const sparseBroken = join(tmp, 'srigl-sparse-broken');
    await runWithStops(recipeOf('sparse'), sparseBroken, [2, 4, 6].map((t) => ({ stage: 0, step: t + 2, resumeAt: t + 1, state: 'fanInBudget' })), (_s, cp) => void expectInvariants(cp));
    await expectSameRun(sparse, sparseBroken);
  }, 600_000);

  it('refuses to resume a checkpoint without the budgets once neurons are ablated', async () => {
    const dir = join(tmp, 'srigl-no-budget');
    // stop at step 4's event: the checkpoint after step 3 follows the update after step 2, which ablates
    const io = {
      stdout: {
        write: (line: string) => {
          const e = JSON.parse(line) as { event: string; step?: number };
          if (e.event === 'step' && e.step === 4) throw new Error('stopped');
          return true;
        },
      },
      stderr: silent,
    };
    await expect(startRun(recipeOf('dense'), { dir, mode: 'json', io })).rejects.toThrow('stopped');
    const cp = await readCheckpoint(dir);
    expect(cp.next.step).toBe(3);
    expect(linears.some((l) => countPerRow(cp.masks.get(l.name)!).some((c) => c === 0))).toBe(true);
    const file = join(dir, CHECKPOINT_DIR, 'latest.json');
    const latest = JSON.parse(readFileSync(file, 'utf8')) as { stageState: Record<string, unknown> };
    expect(latest.stageState.fanInBudget).toBeDefined();
    delete latest.stageState.fanInBudget;
    writeFileSync(file, JSON.stringify(latest));
    await expect(resumeRun(dir, quiet)).rejects.toThrow(/stages\[0\]: the checkpoint has no neuron-ablation budgets \(stage state 'fanInBudget'\) to resume srigl from, and .* ablated neurons/);
  }, 300_000);

  it('gammaSal 0 never ablates: every layer keeps its budget', async () => {
    const recipe = resolveRecipe({ seed: SEED, model: MODEL, stages: [{ ...stage('dense'), config: { ...config, gammaSal: 0 }, checkpointEvery: 10 }] });
    const dir = join(tmp, 'srigl-off');
    await startRun(recipe, { dir, ...quiet });
    const rewires = events(dir).filter((e) => e.event === 'rewire') as unknown as RewireEvent[];
    expect(rewires.length).toBe(3);
    for (const e of rewires) expect(e.ablated).toBeUndefined();
    const cp = await readCheckpoint(dir);
    for (const l of linears) {
      expect(new Set(countPerRow(cp.masks.get(l.name)!)), l.name).toEqual(new Set([budget.get(l.name)! / l.out]));
      expect(count(cp.masks.get(l.name)!)).toBe(budget.get(l.name));
    }
  }, 300_000);
});
