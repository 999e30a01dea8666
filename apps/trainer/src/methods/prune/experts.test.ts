// The 'experts' prune stage from recipes, on a one-block GPT with 4 experts. One-shot: the routing counts
// of the calibration windows equal a brute-force tally (the router's input captured, logits and top-k
// recomputed here in float64 by sorting), and the rebuilt model, kept below the router's top-k, routes as
// renormalizedRouting defines (its gates the softmax over the chosen kept logits). Progressive: the
// drops follow the schedule, each drops the least-used active experts of its window, a dropped expert
// gets no tokens afterwards, and a run stopped mid-stage resumes to the same losses and model.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renormalizedRouting } from '@sparse/pruners';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { createModel } from '../../model/index.js';
import type { LinearInfo, ModelSpec } from '../../model/types.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { startRun } from '../../run/runner.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { events, expectSameRun, quiet, runWithStops, silent } from '../../testing/resume.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16, moe: { experts: 4, topK: 3 } };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-experts-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type ExpertEvent = { event: string; kept: number[][]; counts: number[][]; tokens: number[]; topK: number };
type DropEvent = { event: string; step: number; block: number; dropped: number[]; active: number[]; scores: number[] };

/** Router inputs [n, d] of each batch (the x the router multiplies), captured through linearInput. */
function routerInputs(model: ReturnType<typeof createModel>, batches: { ids: Int32Array; b: number; len: number }[]): Float32Array[] {
  const out: Float32Array[] = [];
  for (const { ids, b, len } of batches) {
    tf.tidy(() => void model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), { linearInput: (info: LinearInfo, x) => void (info.role === 'moe.router' && out.push(Float32Array.from(x.dataSync() as Float32Array))) }));
  }
  return out;
}

/** logits = x Wᵀ in float64. */
function logitsOf(x: Float32Array, w: Float32Array, experts: number, d: number): Float64Array {
  const n = x.length / d;
  const l = new Float64Array(n * experts);
  for (let r = 0; r < n; r++) for (let e = 0; e < experts; e++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j]! * w[e * d + j]!;
    l[r * experts + e] = s;
  }
  return l;
}

describe("prune method 'experts'", () => {
  it('one-shot on the task data: counts equal a brute-force tally; kept below top-k, the rebuilt routing is the re-normalized definition', async () => {
    const stages = [{ stage: 'pretrain', steps: 3, batch: 4 }];
    const base = { seed: 3, model: MODEL, eval: { windows: 2, batch: 2 } };
    const pre = join(tmp, 'pre');
    await startRun(resolveRecipe({ ...base, stages }), { dir: pre, ...quiet });
    const recipe = resolveRecipe({ ...base, stages: [...stages, { stage: 'prune', method: 'experts', config: { keep: 2, metric: 'frequency' }, data: 'shifted' }] });
    const dir = join(tmp, 'oneshot');
    await startRun(recipe, { dir, ...quiet });
    const ev = events(dir).find((e) => e.event === 'experts') as unknown as ExpertEvent;

    // the pretrained model again, and the stage's calibration windows of the shifted task
    const theta = await readCheckpoint(pre);
    const data = loadRunData(recipe.data);
    const model = createModel(theta.spec, { values: new Map([...theta.params].map(([k, v]) => [k, v.data])) });
    const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, 'oneshot-check.jsonl'), 'quiet', { stdout: silent, stderr: silent }), backend);
    const batches = calibrationBatches(ctx, 1, 'shifted');
    const w = theta.params.get('h.0.mlp.router.weight')!.data;
    const counts = new Array<number>(4).fill(0);
    let tokens = 0;
    const xs = routerInputs(model, batches);
    for (const x of xs) {
      const l = logitsOf(x, w, 4, 16);
      for (let r = 0; r < x.length / 16; r++) {
        const order = [0, 1, 2, 3].sort((a, b) => l[r * 4 + b]! - l[r * 4 + a]! || a - b);
        for (const e of order.slice(0, 3)) counts[e]!++;
        tokens++;
      }
    }
    expect(ev.counts[0]).toEqual(counts);
    expect(ev.tokens[0]).toBe(tokens);
    // kept: the two most chosen (ties to the lower index)
    const want = [0, 1, 2, 3].sort((a, b) => counts[b]! - counts[a]! || a - b).slice(0, 2).sort((a, b) => a - b);
    expect(ev.kept[0]).toEqual(want);
    expect(ev.topK).toBe(2);

    // the rebuilt model: 2 experts, top-2, same router input; its gates are the definition's
    const final = await readCheckpoint(dir);
    expect((final.spec as ModelSpec & { moe: unknown }).moe).toEqual({ experts: 2, topK: 2 });
    const pruned = createModel(final.spec, { values: new Map([...final.params].map(([k, v]) => [k, v.data])) });
    const one = batches.slice(0, 1);
    const seen: { chosen: Int32Array; gates: Float32Array }[] = [];
    tf.tidy(() => void pruned.logits2d(tf.tensor2d(one[0]!.ids, [one[0]!.b, one[0]!.len], 'int32'), { routing: (_b, c, g) => void seen.push({ chosen: Int32Array.from(c.dataSync() as Int32Array), gates: Float32Array.from(g.dataSync() as Float32Array) }) }));
    const x = routerInputs(pruned, one)[0]!;
    expect(Array.from(x)).toEqual(Array.from(xs[0]!)); // attention and norms untouched: the same router input
    const def = renormalizedRouting(logitsOf(x, w, 4, 16), x.length / 16, 4, want, 3);
    expect(def.k).toBe(2);
    expect(Array.from(seen[0]!.chosen, (pos) => want[pos])).toEqual(Array.from(def.chosen));
    seen[0]!.gates.forEach((g, i) => expect(Math.abs(g - def.gates[i]!)).toBeLessThan(1e-5));
    ctx.dispose();
    pruned.dispose();
  }, 300_000);

  it('progressive: drops the least-used active experts on schedule, a dropped expert gets no tokens, and resumes exactly', async () => {
    const recipe = resolveRecipe({
      seed: 8,
      model: { ...MODEL, moe: { experts: 4, topK: 2 } },
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'experts', config: { keep: 1, metric: 'frequency', progressive: { steps: 6, every: 2, drop: 1, batch: 4, lr: 1e-2, checkpointEvery: 1 } }, data: 'shifted' },
      ],
    });
    const whole = join(tmp, 'progressive');
    await startRun(recipe, { dir: whole, ...quiet });
    const drops = events(whole).filter((e) => e.event === 'expert-drop') as unknown as DropEvent[];
    // 4 -> 3 after step 2, -> 2 after step 4; the drop after the last step is the final selection
    expect(drops.map((d) => [d.step, d.active.length])).toEqual([[2, 3], [4, 2]]);
    let active = [0, 1, 2, 3];
    for (const d of drops) {
      // brute force: the active expert with the lowest window score, ties drop the higher index
      const low = Math.min(...active.map((e) => d.scores[e]!));
      const want = Math.max(...active.filter((e) => d.scores[e] === low));
      expect(d.dropped).toEqual([want]);
      // every expert dropped earlier got no token in this window
      for (let e = 0; e < 4; e++) if (!active.includes(e)) expect(d.scores[e]).toBe(0);
      active = active.filter((e) => e !== want);
      expect(d.active).toEqual(active);
    }
    const ev = events(whole).find((e) => e.event === 'experts') as unknown as ExpertEvent;
    expect(ev.kept[0]!.length).toBe(1);
    expect(active).toContain(ev.kept[0]![0]);
    for (let e = 0; e < 4; e++) if (!active.includes(e)) expect(ev.counts[0]![e]).toBe(0);
    expect(((await readCheckpoint(whole)).spec as ModelSpec & { moe: unknown }).moe).toEqual({ experts: 1, topK: 1 });

    const broken = join(tmp, 'progressive-broken');
    await runWithStops(recipe, broken, [{ stage: 1, step: 4, resumeAt: 3, state: 'experts' }], (_s, cp) => {
      expect((cp.stageState!.experts as { active: number[][] }).active[0]).toHaveLength(3);
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it('refuses keep above the experts, naming the field', async () => {
    const recipe = resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 1, batch: 1 }, stages: [{ stage: 'prune', method: 'experts', config: { keep: 5 } }] });
    await expect(startRun(recipe, { dir: join(tmp, 'bad'), ...quiet })).rejects.toThrow(/stages\[0\]\.config\.keep: must be in 1\.\.4/);
  });
});
