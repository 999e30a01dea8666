// LT-SFT (sft with config.lottery) and composable SFT (config.compose), run from recipes. The ticket is
// checked against a brute-force sort of the full phase's |Δ| read from the checkpoint taken at the end of
// that phase; the rewind by the first masked step (each value is one Adam step from zero, so |Δ| ≤ its lr,
// where the full phase's values are far larger); resume in either phase against an uninterrupted run; and
// the composition against θ + Δ_language + Δ_task summed here in float64.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept, type Mask } from '@sparse/masks';
import { loadSparseDeltas } from '@sparse/lora-variants/node';
import type { SparseFineTunerState } from '@sparse/lora-variants/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { lrAt } from '../../train/steps.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-lt-sft-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const DENSITY = 0.05;
const FULL = 4;
const MASKED = 4;
const LR = 2e-2;

describe('sft lottery (LT-SFT)', () => {
  it('keeps the global top |Δ| of the full phase inside the mask, rewinds to Δ = 0, and resumes exactly in either phase', async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: MODEL,
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 } },
        { stage: 'adapt', method: 'sft', config: { density: DENSITY, lottery: { steps: FULL } }, steps: MASKED, batch: 4, lr: LR, checkpointEvery: 1, merge: false },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    let ticket: Map<string, number[]> | undefined;
    const stage = recipe.stages[2]!;
    // the lr of the first masked step: the ticket phase's own warmup + cosine schedule restarts
    const lr1 = lrAt(1, MASKED, LR, Math.min(100, Math.floor(MASKED / 10)), stage.stage === 'adapt' ? stage.minLrRatio : Number.NaN);
    let masks: Map<string, Mask> | undefined;
    await runWithStops(
      recipe,
      broken,
      [
        { stage: 2, step: FULL + 1, resumeAt: FULL, state: 'sft' },
        { stage: 2, step: FULL + 2, resumeAt: FULL + 1, state: 'sft' },
      ],
      (s, cp) => {
        const st = cp.stageState!.sft as SparseFineTunerState;
        if (s.resumeAt === FULL) {
          expect(cp.stageState!.lotteryPhase).toBe('full');
          masks = cp.masks;
          // brute force: every (layer, entry) of the full phase, sorted by |Δ| desc, then layer order, then index
          const names = Object.keys(st.layers);
          const all: { n: string; l: number; f: number; a: number }[] = [];
          let size = 0;
          names.forEach((n, l) => {
            const layer = st.layers[n]!;
            size += layer.shape[0] * layer.shape[1];
            // the full phase trains exactly the kept entries
            expect(Array.from(layer.indices), n).toEqual(Array.from({ length: layer.shape[0] * layer.shape[1] }, (_, f) => f).filter((f) => isKept(cp.masks.get(n)!, f)));
            layer.indices.forEach((f, p) => all.push({ n, l, f, a: Math.abs(layer.values[p]!) }));
          });
          const k = Math.round(DENSITY * size);
          const top = all.sort((x, y) => y.a - x.a || x.l - y.l || x.f - y.f).slice(0, k);
          ticket = new Map(names.map((n) => [n, top.filter((e) => e.n === n).map((e) => e.f).sort((a, b) => a - b)]));
          // the ticket's values after the full phase: far from zero (so the rewind check below can fail)
          expect(top.at(-1)!.a).toBeGreaterThan(1.5 * lr1);
        } else {
          expect(cp.stageState!.lotteryPhase).toBe('ticket');
          for (const [n, want] of ticket!) {
            const layer = st.layers[n];
            if (want.length === 0) {
              expect(layer, n).toBeUndefined();
              continue;
            }
            expect(Array.from(layer!.indices), n).toEqual(want);
            // rewound: one Adam step from Δ = 0 moves each value by at most the step's lr
            for (const v of layer!.values) expect(Math.abs(v)).toBeLessThanOrEqual(lr1 * (1 + 1e-5));
            expect(layer!.values.some((v) => Math.abs(v) > lr1 / 2), n).toBe(true);
          }
        }
      },
    );
    await expectSameRun(whole, broken);
    // the saved delta trains exactly the ticket, inside the mask
    const deltas = await loadSparseDeltas(join(whole, 'exports', 'sft', 'adapt_sft_2.safetensors'));
    for (const [n, want] of ticket!) {
      expect(Array.from(deltas[n]?.indices ?? []), n).toEqual(want);
      for (const f of want) expect(isKept(masks!.get(n)!, f)).toBe(true);
    }
    const rewinds = events(whole).filter((e) => e.event === 'lt-sft');
    expect(rewinds).toHaveLength(1);
    expect(rewinds[0]!.step).toBe(FULL);
  }, 300_000);

  it('compose: the language delta is added before the task stage trains, and the result is θ + Δ_language + Δ_task', async () => {
    const base = { seed: 7, model: MODEL, eval: { windows: 2, batch: 2 } };
    const pretrain = { stage: 'pretrain', steps: 3, batch: 4 };
    const onlyPretrain = join(tmp, 'theta');
    await startRun(resolveRecipe({ ...base, stages: [pretrain] }), { dir: onlyPretrain, ...quiet });
    const composed = join(tmp, 'composed');
    await startRun(
      resolveRecipe({
        ...base,
        stages: [
          pretrain,
          { stage: 'adapt', name: 'language', method: 'sft', config: { density: 0.1, lottery: { steps: 3 } }, steps: 3, batch: 4, lr: LR, merge: false },
          { stage: 'adapt', name: 'task', method: 'sft', config: { density: 0.1, lottery: { steps: 3 }, compose: ['language'] }, steps: 3, batch: 4, lr: LR, data: 'shifted' },
        ],
      }),
      { dir: composed, ...quiet },
    );
    const theta = (await readCheckpoint(onlyPretrain)).params;
    const final = (await readCheckpoint(composed)).params;
    const lang = await loadSparseDeltas(join(composed, 'exports', 'sft', 'language.safetensors'));
    const task = await loadSparseDeltas(join(composed, 'exports', 'sft', 'task.safetensors'));
    expect(Object.keys(lang).length).toBeGreaterThan(0);
    let touched = 0;
    for (const [n, t] of theta) {
      const want = Float64Array.from(t.data as Float32Array);
      for (const d of [lang[n], task[n]]) if (d) d.indices.forEach((f, q) => (want[f]! += d.values[q]!));
      const got = final.get(n)!.data as Float32Array;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${n}[${i}]`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]!)));
      if (lang[n] && task[n]) touched++;
    }
    expect(touched).toBeGreaterThan(0);
  }, 300_000);

  it('refuses a compose that names a merged or missing stage, and supportScores with lottery, naming the field', async () => {
    const stages = (compose: string[], merge: boolean) => [
      { stage: 'pretrain', steps: 1, batch: 2 },
      { stage: 'adapt', name: 'language', method: 'sft', config: { density: 0.1 }, steps: 1, batch: 2, merge },
      { stage: 'adapt', method: 'sft', config: { density: 0.1, compose }, steps: 1, batch: 2 },
    ];
    await expect(startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 1, batch: 1 }, stages: stages(['language'], true) }), { dir: join(tmp, 'merged'), ...quiet })).rejects.toThrow(/stages\[2\]\.config\.compose\[0\]: 'language' merged/);
    await expect(startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 1, batch: 1 }, stages: stages(['nope'], false) }), { dir: join(tmp, 'missing'), ...quiet })).rejects.toThrow(/stages\[2\]\.config\.compose\[0\]: no stage before this one is named 'nope'/);
    await expect(
      startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 1, batch: 1 }, stages: [{ stage: 'pretrain', steps: 1, batch: 2 }, { stage: 'adapt', method: 'sft', config: { lottery: { steps: 1 } }, supportScores: 'fisher', steps: 1, batch: 2 }] }), { dir: join(tmp, 'scores'), ...quiet }),
    ).rejects.toThrow(/stages\[1\]\.supportScores/);
    // A stage whose method saves no sparse delta (lora) is refused; the methods that do are named.
    const lora = [
      { stage: 'pretrain', steps: 1, batch: 2 },
      { stage: 'adapt', name: 'lo', method: 'lora', config: { r: 1 }, steps: 1, batch: 2, merge: false },
      { stage: 'adapt', method: 'sft', config: { density: 0.1, compose: ['lo'] }, steps: 1, batch: 2 },
    ];
    await expect(startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 1, batch: 1 }, stages: lora }), { dir: join(tmp, 'lora'), ...quiet })).rejects.toThrow(
      /stages\[2\]\.config\.compose\[0\]: 'lo' is a adapt lora stage; compose takes stages whose method saves sparse deltas \(diff-pruning, sft\)/,
    );
  }, 120_000);

  it('compose adds a diff-pruning stage\'s saved delta too (the method declares sparseDelta)', async () => {
    const base = { seed: 3, model: MODEL, eval: { windows: 1, batch: 1 } };
    const pretrain = { stage: 'pretrain', steps: 2, batch: 2 };
    const theta = join(tmp, 'dp-theta');
    await startRun(resolveRecipe({ ...base, stages: [pretrain] }), { dir: theta, ...quiet });
    const dir = join(tmp, 'dp-compose');
    await startRun(
      resolveRecipe({
        ...base,
        stages: [
          pretrain,
          { stage: 'adapt', name: 'diff', method: 'diff-pruning', steps: 2, batch: 2, lr: LR, merge: false },
          { stage: 'adapt', name: 'task', method: 'sft', config: { density: 0.1, compose: ['diff'] }, steps: 0, batch: 2, merge: true },
        ],
      }),
      { dir, ...quiet },
    );
    const before = (await readCheckpoint(theta)).params;
    const after = (await readCheckpoint(dir)).params;
    const diff = await loadSparseDeltas(join(dir, 'exports', 'sft', 'diff.safetensors'));
    let added = 0;
    for (const [n, t] of before) {
      const want = Float64Array.from(t.data as Float32Array);
      const d = diff[n];
      if (d) d.indices.forEach((f, q) => ((want[f]! += d.values[q]!), added++));
      const got = after.get(n)!.data as Float32Array;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${n}[${i}]`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]!)));
    }
    expect(added).toBeGreaterThan(0);
  }, 120_000);
});
