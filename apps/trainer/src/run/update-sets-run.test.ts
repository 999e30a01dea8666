// Update sets in a run: two merged sft stages; the 'update-set' events equal the sets recomputed here from
// the pretrained weights and the two exported deltas (merged in float32 as the stage merges), the report
// renders them, and a run stopped inside the second stage measures its set from the checkpointed
// stage-start weights and says that its overlap with the first stage was not measured.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSparseDeltas } from '@sparse/lora-variants/node';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../recipe/load.js';
import { markupProblem } from '../report/check-markup.js';
import { events, quiet, runWithStops } from '../testing/resume.js';
import { readCheckpoint } from './checkpoint.js';
import { startRun } from './runner.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-update-sets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type UpdateEvent = { event: string; stage: number; changed: number; entries: number; density: number; overlaps: { with: string; intersection: number; union: number; iou: number; overlap: number; reverse: number; chance: number; chanceReverse: number }[] };

describe('update sets of a run', () => {
  it('two merged sft stages: density and overlap equal the sets recomputed from the deltas', async () => {
    const base = { seed: 6, model: { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 }, eval: { windows: 2, batch: 2 } };
    const pretrain = { stage: 'pretrain', steps: 3, batch: 4 };
    const theta = join(tmp, 'theta');
    await startRun(resolveRecipe({ ...base, stages: [pretrain] }), { dir: theta, ...quiet });
    const recipe = resolveRecipe({
      ...base,
      stages: [
        pretrain,
        { stage: 'adapt', name: 'a', method: 'sft', config: { density: 0.2 }, steps: 3, batch: 4, lr: 2e-2 },
        { stage: 'adapt', name: 'b', method: 'sft', config: { density: 0.2 }, steps: 3, batch: 4, lr: 2e-2, data: 'shifted', checkpointEvery: 1 },
        { stage: 'report' },
      ],
    });
    const dir = join(tmp, 'run');
    await startRun(recipe, { dir, ...quiet });
    const w0 = (await readCheckpoint(theta)).params;
    const da = await loadSparseDeltas(join(dir, 'exports', 'sft', 'a.safetensors'));
    const db = await loadSparseDeltas(join(dir, 'exports', 'sft', 'b.safetensors'));
    // brute force over the linear weights (the deltas' weights): I_a, I_b as sets of "name:index"
    const ia = new Set<string>();
    const ib = new Set<string>();
    let entries = 0;
    for (const [n, d] of Object.entries(da)) {
      const w = Float32Array.from(w0.get(n)!.data as Float32Array);
      entries += w.length;
      const wa = Float32Array.from(w);
      d.indices.forEach((f, q) => (wa[f] = Math.fround(w[f]! + d.values[q]!)));
      const wb = Float32Array.from(wa);
      db[n]!.indices.forEach((f, q) => (wb[f] = Math.fround(wa[f]! + db[n]!.values[q]!)));
      for (let i = 0; i < w.length; i++) {
        if (wa[i] !== w[i]) ia.add(`${n}:${i}`);
        if (wb[i] !== wa[i]) ib.add(`${n}:${i}`);
      }
    }
    const inter = [...ib].filter((k) => ia.has(k)).length;
    const union = new Set([...ia, ...ib]).size;
    const ev = events(dir).filter((e) => e.event === 'update-set') as unknown as UpdateEvent[];
    expect(ev.map((e) => e.stage)).toEqual([1, 2]);
    expect([ev[0]!.changed, ev[0]!.entries]).toEqual([ia.size, entries]);
    expect([ev[1]!.changed, ev[1]!.entries]).toEqual([ib.size, entries]);
    expect(ev[0]!.overlaps).toEqual([]);
    const o = ev[1]!.overlaps[0]!;
    expect(o.with).toBe('a');
    expect([o.intersection, o.union]).toEqual([inter, union]);
    expect(o.iou).toBeCloseTo(inter / union, 12);
    expect(o.overlap).toBeCloseTo(inter / ib.size, 12);
    expect(o.reverse).toBeCloseTo(inter / ia.size, 12);
    expect(o.chance).toBeCloseTo(ia.size / entries, 12);
    // a stage changes at most its delta's entries, and some of them
    expect(ev[1]!.changed).toBeGreaterThan(0);
    expect(ev[1]!.changed).toBeLessThanOrEqual(Object.values(db).reduce((s, d) => s + d.indices.length, 0));
    expect(ev[1]!.density).toBeCloseTo(ib.size / entries, 12);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('Update sparsity');
    expect(markupProblem(html)).toBeNull();

    // stopped inside stage b: its own set comes from the checkpointed stage-start weights
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 2, step: 2, resumeAt: 1, state: 'sft' }], (_s, cp) => expect(cp.snapshots.has(-2)).toBe(true));
    const again = events(broken).filter((e) => e.event === 'update-set') as unknown as UpdateEvent[];
    expect(again.map((e) => [e.stage, e.changed])).toEqual([[1, ia.size], [2, ib.size]]);
    expect(again[1]!.overlaps).toEqual([]);
    expect((await readCheckpoint(broken)).report.notes.some((n) => n.includes("b: its overlap with a was not measured"))).toBe(true);
  }, 300_000);
});
