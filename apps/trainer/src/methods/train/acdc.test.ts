// train method 'acdc' (AC/DC): the phases switch at the steps written out here by hand; each compression
// keeps exactly its budget (per layer: round((1 − s) · size); global: round((1 − s) · total)) and picks the
// largest |W| of the weights it sees (sorted here); in compressed phases the weights off the mask and their
// Adam moments are exactly 0, in decompressed ones the targeted layers have no masks and train densely; the
// run's masks afterwards are the last compression's; a run stopped anywhere resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept } from '@sparse/masks';
import { acdcConfigSchema } from '@sparse/masks/schemas';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { expectZeroOffMask } from '../../testing/masks.js';
import { acdcPhaseAt, acdcSchedule, acdcSwitches } from './acdc.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-acdc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

interface ACDCEvent {
  event: string;
  step: number;
  phase: string;
  kept?: Record<string, number>;
}
const acdcEvents = (dir: string) => events(dir).filter((e) => e.event === 'acdc') as unknown as ACDCEvent[];

describe('AC/DC phases', () => {
  it('40 steps at warm-up 0.1, compressed 0.1, decompressed 0.15, fine-tune 0.2: dense 0-3, C 4-7, D 8-13, C 14-17, D 18-23, C 24-27, D 28-31, C 32-39', () => {
    const s = acdcSchedule(acdcConfigSchema.parse({ warmup: 0.1, compressed: 0.1, decompressed: 0.15, finetune: 0.2 }), 40);
    expect(s).toEqual({ steps: 40, warmup: 4, compressed: 4, decompressed: 6, finetune: 8 });
    const want = [...'WWWWCCCCDDDDDDCCCCDDDDDDCCCCDDDDCCCCCCCC'];
    expect(Array.from({ length: 40 }, (_, t) => acdcPhaseAt(s, t)[0]!.toUpperCase())).toEqual(want);
    expect(acdcSwitches(s)).toEqual([
      { step: 4, phase: 'compressed' },
      { step: 8, phase: 'decompressed' },
      { step: 14, phase: 'compressed' },
      { step: 18, phase: 'decompressed' },
      { step: 24, phase: 'compressed' },
      { step: 28, phase: 'decompressed' },
      { step: 32, phase: 'compressed' },
    ]);
  });

  it('a compressed phase running into the fine-tune continues it; no warm-up starts compressed; a short stage is all fine-tune', () => {
    // 20 steps: W 2, C 3, D 2, F 5: C 2-4, D 5-6, C 7-9, D 10-11, C 12-14 then the fine-tune 15-19 (no new mask at 15)
    const s = acdcSchedule({ warmup: 0.1, compressed: 0.15, decompressed: 0.1, finetune: 0.25 }, 20);
    expect(acdcSwitches(s).map((x) => `${x.phase[0]}${x.step}`)).toEqual(['c2', 'd5', 'c7', 'd10', 'c12']);
    expect(acdcSwitches(acdcSchedule({ warmup: 0, compressed: 0.25, decompressed: 0.25, finetune: 0.25 }, 8)).map((x) => `${x.phase[0]}${x.step}`)).toEqual(['c0', 'd2', 'c4']);
    const short = acdcSchedule({ warmup: 0.1, compressed: 0.05, decompressed: 0.05, finetune: 0.1 }, 4);
    expect(short).toEqual({ steps: 4, warmup: 0, compressed: 1, decompressed: 1, finetune: 1 });
    expect(acdcSwitches(short).map((x) => `${x.phase[0]}${x.step}`)).toEqual(['c0', 'd1', 'c2']);
  });
});

/** Weights and Adam moments exactly 0 off every targeted layer's mask, `keep` entries kept in each. */
function expectCompressed(cp: CheckpointContent, keep: (n: string) => number | undefined, where: string): void {
  for (const n of LINEARS) {
    const m = cp.masks.get(n);
    expect(m, `${where}: ${n} has a mask`).toBeDefined();
    const k = keep(n);
    if (k !== undefined) expect(count(m!), `${where}: ${n}`).toBe(k);
    expectZeroOffMask(cp, n, m!, where);
  }
}

/** The top-k |W| entries of a layer (ties to the lower index), by sorting. */
function topK(w: Float32Array, k: number): Set<number> {
  return new Set([...w.keys()].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b).slice(0, k));
}

describe('train method acdc', () => {
  // 20 steps: W 2, C 3, D 2, F 5 -> compressed at 2, dense at 5, compressed at 7, dense at 10, compressed at 12 to the end
  const config = { sparsity: 0.7, budget: 'layer', warmup: 0.1, compressed: 0.15, decompressed: 0.1, finetune: 0.25 };
  const recipe = resolveRecipe({
    seed: 4,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method: 'acdc', config, steps: 20, batch: 4, lr: 1e-2, checkpointEvery: 1 },
      { stage: 'evaluate' },
    ],
  });

  it('switches at the configured steps, keeps each layer at its count with zeros through Adam, ranks by |W|, ends on the last compression, and resumes exactly', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const end = await readCheckpoint(whole);
    const size = (n: string) => end.params.get(n)!.data.length;
    const keep = (n: string) => Math.round(0.3 * size(n));
    const ev = acdcEvents(whole);
    expect(ev.map((e) => `${e.phase[0]}${e.step}`)).toEqual(['c2', 'd5', 'c7', 'd10', 'c12']);
    for (const e of ev.filter((x) => x.phase === 'compressed')) expect(e.kept, `compression at ${e.step}`).toEqual(Object.fromEntries(LINEARS.map((n) => [n, keep(n)])));
    expectCompressed(end, keep, 'end');

    // stops: after the checkpoint at 7 (the weights the compression at 7 ranks), at 8 (its mask, one step on),
    // at 11 (decompressed since 10) and at 14 (compressed since 12, the mask the run ends with)
    const broken = join(tmp, 'broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(
      recipe,
      broken,
      [7, 8, 11, 14].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'acdc' })),
      (s, cp) => void seen.set(s.resumeAt, cp),
    );
    // at 7 the layers were dense (decompressed since 5): no masks, and some weights pruned at 2 have regrown
    const at7 = seen.get(7)!;
    for (const n of LINEARS) expect(at7.masks.has(n), n).toBe(false);
    const at8 = seen.get(8)!;
    expectCompressed(at8, keep, 'checkpoint at 8');
    for (const n of LINEARS) {
      // the compression at 7 kept the largest |W| of the weights it saw
      const want = topK(at7.params.get(n)!.data, keep(n));
      const m = at8.masks.get(n)!;
      for (let q = 0; q < size(n); q++) expect(isKept(m, q), `${n}[${q}]`).toBe(want.has(q));
    }
    const at11 = seen.get(11)!;
    for (const n of LINEARS) {
      expect(at11.masks.has(n), n).toBe(false);
      // dense training since 10: entries pruned at 7 train again
      const m8 = at8.masks.get(n)!;
      expect(Array.from(at11.params.get(n)!.data).some((x, q) => !isKept(m8, q) && x !== 0), n).toBe(true);
    }
    const at14 = seen.get(14)!;
    expectCompressed(at14, keep, 'checkpoint at 14');
    // nothing recompressed after 12: the run's masks at the end are the ones of the compression at 12
    for (const n of LINEARS) expect(Array.from(end.masks.get(n)!.bits), n).toEqual(Array.from(at14.masks.get(n)!.bits));
    await expectSameRun(whole, broken);
    expect(acdcEvents(broken).map((e) => `${e.phase[0]}${e.step}`)).toEqual(['c2', 'd5', 'c7', 'd10', 'c12']);
  }, 300_000);

  it('global budget: one |W| ranking across the layers keeps round((1 − s) · total), the layers at different densities', async () => {
    const stages = [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method: 'acdc', config: { sparsity: 0.75, budget: 'global', warmup: 0, compressed: 0.25, decompressed: 0.25, finetune: 0.25 }, steps: 8, batch: 4, lr: 1e-2, checkpointEvery: 1 },
    ];
    const dir = join(tmp, 'global');
    // stopped after the checkpoint at 4 (the weights the compression at 4 ranks) and at 5 (its mask)
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(resolveRecipe({ seed: 8, model: MODEL, stages }), dir, [4, 5].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'acdc' })), (s, cp) => void seen.set(s.resumeAt, cp));
    const cp = await readCheckpoint(dir);
    const total = LINEARS.reduce((a, n) => a + cp.params.get(n)!.data.length, 0);
    const ev = acdcEvents(dir);
    expect(ev.map((e) => `${e.phase[0]}${e.step}`)).toEqual(['c0', 'd2', 'c4']);
    for (const e of ev.filter((x) => x.phase === 'compressed')) expect(Object.values(e.kept!).reduce((a, k) => a + k, 0)).toBe(Math.round(0.25 * total));
    expectCompressed(cp, () => undefined, 'end');
    expect(LINEARS.reduce((a, n) => a + count(cp.masks.get(n)!), 0)).toBe(Math.round(0.25 * total));
    expect(new Set(LINEARS.map((n) => (count(cp.masks.get(n)!) / cp.params.get(n)!.data.length).toFixed(4))).size).toBeGreaterThan(1);
    // brute force: the largest |W| of all layers' weights at 4 together (ties to the earlier layer, then index)
    const at4 = seen.get(4)!;
    const all = LINEARS.flatMap((n, li) => Array.from(at4.params.get(n)!.data, (x, q) => ({ a: Math.abs(x), li, q })));
    all.sort((x, y) => y.a - x.a || x.li - y.li || x.q - y.q);
    const top = all.slice(0, Math.round(0.25 * total));
    // no tie at the cut (so the set is the same whatever order ties are broken in)
    expect(all[top.length - 1]!.a).toBeGreaterThan(all[top.length]!.a);
    const at5 = seen.get(5)!;
    for (const [li, n] of LINEARS.entries()) {
      const want = new Set(top.filter((x) => x.li === li).map((x) => x.q));
      const m = at5.masks.get(n)!;
      for (let q = 0; q < at4.params.get(n)!.data.length; q++) expect(isKept(m, q), `${n}[${q}]`).toBe(want.has(q));
      // the mask held to the end (the last compression was at 4)
      expect(Array.from(cp.masks.get(n)!.bits)).toEqual(Array.from(m.bits));
    }
  }, 120_000);
});
