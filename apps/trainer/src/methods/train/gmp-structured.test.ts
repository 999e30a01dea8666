// gmp with `structure`: at every update each block keeps max(1, round((1 − s_t) · count)) MLP neurons or
// attention heads (s_t from the cubic formula written out here), the kept ones being the alive structures
// of largest weight norm (recomputed here from the checkpointed weights at the end), every pruned
// structure's rows and columns exactly 0 in each member layer and nothing else pruned, 'global' ranking
// across blocks, and a stopped run resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept } from '@sparse/masks';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-gmp-structured-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cubic = (t: number, si: number, sf: number, t0: number, t1: number) => (t <= t0 ? si : t >= t1 ? sf : sf + (si - sf) * (1 - (t - t0) / (t1 - t0)) ** 3);

interface GMPEvent {
  event: string;
  step: number;
  sparsity: number;
  kept: Record<string, number>;
}

/** Whether output row r (axis 'row') or input column c of a layer is entirely zero and entirely masked. */
function lineIsPruned(cp: CheckpointContent, layer: string, axis: 'row' | 'column', index: number): boolean {
  const w = cp.params.get(layer)!;
  const [out, inp] = w.shape as [number, number];
  const m = cp.masks.get(layer);
  const ks = axis === 'row' ? Array.from({ length: inp }, (_, c) => index * inp + c) : Array.from({ length: out }, (_, r) => r * inp + index);
  const zero = ks.every((k) => (w.data as Float32Array)[k] === 0 && m !== undefined && !isKept(m, k));
  const live = ks.every((k) => m === undefined || isKept(m, k));
  if (!zero && !live) throw new Error(`${layer} ${axis} ${index} is partly pruned`);
  return zero;
}

describe('gmp structure', () => {
  const MODEL = { architecture: 'gpt' as const, d: 16, layers: 2, heads: 4, ctx: 16 };
  const schedule = { sparsity: 0.75, start: 0.25, end: 0.75, every: 2 }; // 12 steps: t0 = 3, t1 = 9

  it('neurons: each block keeps round((1 − s_t) · hidden) neurons at every update, the top-norm ones, whole rows and columns', async () => {
    const recipe = resolveRecipe({ seed: 4, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [{ stage: 'train', method: 'gmp', config: { ...schedule, structure: 'neurons' }, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 4 }] });
    const dir = join(tmp, 'neurons');
    await startRun(recipe, { dir, ...quiet });
    const hidden = 4 * MODEL.d;
    const updates = events(dir).filter((e) => e.event === 'gmp') as unknown as GMPEvent[];
    expect(updates.map((u) => u.step)).toEqual([3, 5, 7, 9]);
    for (const u of updates) {
      const s = cubic(u.step, 0, 0.75, 3, 9);
      expect(u.sparsity).toBeCloseTo(s, 12);
      for (const b of [0, 1]) expect(u.kept[`block ${b}`], `step ${u.step} block ${b}`).toBe(Math.max(1, Math.round((1 - s) * hidden)));
    }
    const cp = await readCheckpoint(dir);
    for (const b of [0, 1]) {
      const up = `h.${b}.mlp.c_fc.weight`;
      const down = `h.${b}.mlp.c_proj.weight`;
      const pruned = Array.from({ length: hidden }, (_, j) => lineIsPruned(cp, up, 'row', j));
      expect(pruned.filter((p) => !p).length).toBe(hidden / 4);
      for (let j = 0; j < hidden; j++) expect(lineIsPruned(cp, down, 'column', j), `${down} column ${j}`).toBe(pruned[j]);
      // attention is untouched
      expect(cp.masks.has(`h.${b}.attn.c_attn.weight`)).toBe(false);
    }
  }, 120_000);

  it('heads (global budget): q, k, v rows and output columns of a head go together; at least one head per block; resume is exact', async () => {
    const stage = { stage: 'train', method: 'gmp', config: { ...schedule, sparsity: 0.5, structure: 'heads', budget: 'global' }, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 4 };
    const recipe = resolveRecipe({ seed: 5, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [stage] });
    const whole = join(tmp, 'heads');
    await startRun(recipe, { dir: whole, ...quiet });
    const cp = await readCheckpoint(whole);
    const d = MODEL.d;
    const hd = d / MODEL.heads;
    let alive = 0;
    for (const b of [0, 1]) {
      const qkv = `h.${b}.attn.c_attn.weight`;
      const o = `h.${b}.attn.c_proj.weight`;
      let inBlock = 0;
      for (let h = 0; h < MODEL.heads; h++) {
        const gone = lineIsPruned(cp, o, 'column', h * hd);
        for (let r = 0; r < hd; r++) {
          for (const base of [0, d, 2 * d]) expect(lineIsPruned(cp, qkv, 'row', base + h * hd + r), `${qkv} row ${base + h * hd + r}`).toBe(gone);
          expect(lineIsPruned(cp, o, 'column', h * hd + r)).toBe(gone);
        }
        if (!gone) inBlock++;
      }
      expect(inBlock).toBeGreaterThanOrEqual(1);
      alive += inBlock;
    }
    expect(alive).toBe(Math.round(0.5 * 2 * MODEL.heads));
    const broken = join(tmp, 'heads-broken');
    await runWithStops(recipe, broken, [{ stage: 0, step: 6, resumeAt: 4, state: 'gmp' }]);
    await expectSameRun(whole, broken);
  }, 120_000);

  it('refuses structure with a pattern, and ER budgets', () => {
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'gmp', config: { structure: 'neurons', pattern: { n: 2, m: 4 } } }] })).toThrow(/structure and pattern exclude each other/);
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'train', method: 'gmp', config: { structure: 'heads', budget: 'erk' } }] })).toThrow(/structure needs budget 'layer' \(per block\) or 'global'/);
  });
});
