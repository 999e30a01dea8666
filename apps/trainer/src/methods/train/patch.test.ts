// train method 'patch': run through the trainer, every final mask is, tile by tile, either all kept
// (dense tile) or exactly 2:4 inside the tile, as the stage's logged decisions (the signs of the learned
// logits) say; both kinds occur; the logits move; a stopped run resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept, type Mask } from '@sparse/masks';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { patchTemperature } from './patch.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-patch-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];
const TILE = 8;

/** 'dense' when every entry of the tile is kept, '2:4' when each row group of 4 keeps exactly 2, else 'other'. */
function tileKind(mask: Mask, ti: number, tj: number): 'dense' | '2:4' | 'other' {
  const cols = mask.shape[1]!;
  let all = true;
  let nm = true;
  for (let i = ti * TILE; i < (ti + 1) * TILE; i++) {
    for (let g = tj * TILE; g < (tj + 1) * TILE; g += 4) {
      let kept = 0;
      for (let j = g; j < g + 4; j++) if (isKept(mask, i * cols + j)) kept++;
      if (kept !== 4) all = false;
      if (kept !== 2) nm = false;
    }
  }
  return all ? 'dense' : nm ? '2:4' : 'other';
}

const config = { n: 2, m: 4, tile: [TILE, TILE], target: 0.25, budgetWeight: 10, tempStart: 1, tempEnd: 0.1, init: 0 };
const recipe = () =>
  resolveRecipe({
    seed: 2,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method: 'patch', config, steps: 8, batch: 4, lr: 5e-2, checkpointEvery: 1 },
      { stage: 'evaluate' },
    ],
  });

describe('train method patch', () => {
  it('the temperature is geometric from tempStart to tempEnd', () => {
    expect(patchTemperature({ tempStart: 1, tempEnd: 0.01 }, 1, 5)).toBe(1);
    expect(patchTemperature({ tempStart: 1, tempEnd: 0.01 }, 3, 5)).toBeCloseTo(0.1, 12);
    expect(patchTemperature({ tempStart: 1, tempEnd: 0.01 }, 5, 5)).toBeCloseTo(0.01, 12);
  });

  it('ends with every tile dense or 2:4 by the sign of its logit, weights zero off the mask; resumes exactly', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe(), { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipe(), broken, [3, 7].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'patchLogits' })), (s, cp) => void seen.set(s.resumeAt, cp));
    await expectSameRun(whole, broken);

    const end = await readCheckpoint(whole);
    const kinds = { dense: 0, '2:4': 0 };
    // the decisions the stage logged (logit > 0: 's', an N:M tile; else 'd', dense), row-major per weight
    const ev = events(whole).find((e) => e.event === 'patch') as unknown as { tiles: Record<string, string>; sparsity: number };
    for (const n of LINEARS) {
      const mask = end.masks.get(n)!;
      const [rows, cols] = mask.shape as [number, number];
      expect(ev.tiles[n]!.length, n).toBe((rows / TILE) * (cols / TILE));
      for (let ti = 0; ti < rows / TILE; ti++) {
        for (let tj = 0; tj < cols / TILE; tj++) {
          const k = tileKind(mask, ti, tj);
          expect(k, `${n} tile ${ti},${tj}`).toBe(ev.tiles[n]![ti * (cols / TILE) + tj] === 's' ? '2:4' : 'dense');
          kinds[k as 'dense' | '2:4']++;
        }
      }
      const w = end.params.get(n)!.data;
      for (let q = 0; q < w.length; q++) if (!isKept(mask, q)) expect(w[q], `${n}[${q}]`).toBe(0);
    }
    // the budget (target 0.2 < 0.5) turned some gates dense; tiles starting sparse stayed so elsewhere
    expect(kinds.dense).toBeGreaterThan(0);
    expect(kinds['2:4']).toBeGreaterThan(0);
    // the logits moved under the budget and the task loss
    const logits = seen.get(7)!.stageState!.patchLogits as Record<string, Float32Array>;
    for (const n of LINEARS) expect(Array.from(logits[n]!).some((x) => Math.abs(x - 0.01) > 1e-4), n).toBe(true);
    // the logged sparsity is that of the masks: half of every 2:4 tile's entries
    const entries = LINEARS.reduce((a, n) => a + end.params.get(n)!.data.length, 0);
    expect(ev.sparsity).toBeCloseTo((kinds['2:4'] * TILE * TILE * 0.5) / entries, 12);
    expect(end.pattern).toBeUndefined();
  }, 300_000);

  it('refuses a target above 1 - n/m and a tile width off m, naming the field', () => {
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'patch', config: { target: 0.6 } }] })).toThrow(/target/);
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'patch', config: { tile: [8, 6] } }] })).toThrow(/tile/);
  });
});
