// The clover prune stage in a run: on a GPT (fused QKV with biases) each head's score form
// [W_Q | b_Q]ᵀ [W_K | b_K] and value-output product [W_V | b_V]ᵀ W_Oᵀ become their best rank-r
// approximations (a brute-force SVD of the product the pretrained model had), the dropped channels are
// masked zeros, and a later adapt stage keeps them zero; on a Llama the Q/K pair is skipped (RoPE) with a note.
// The clover adapter after it resumes exactly inside its stage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept } from '@sparse/masks';
import { svd, tensor } from '@sparse/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-clover-prune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const D = 16;
const HEADS = 2;
const HD = D / HEADS;
const MODEL = { architecture: 'gpt' as const, d: D, layers: 1, heads: HEADS, ctx: 16 };
const pretrain = { stage: 'pretrain', steps: 3, batch: 4 };

type Params = Map<string, { data: Float32Array; shape: number[] }>;

/** Head h's augmented products from a GPT checkpoint, float64: QK [(D+1), (D+1)] and VO [(D+1), D]. */
function products(p: Params, h: number): { qk: Float64Array; vo: Float64Array } {
  const w = p.get('h.0.attn.c_attn.weight')!.data;
  const b = p.get('h.0.attn.c_attn.bias')!.data;
  const o = p.get('h.0.attn.c_proj.weight')!.data;
  const row = (part: number, t: number, i: number) => (i < D ? w[(part * D + h * HD + t) * D + i]! : b[part * D + h * HD + t]!);
  const qk = new Float64Array((D + 1) * (D + 1));
  const vo = new Float64Array((D + 1) * D);
  for (let t = 0; t < HD; t++) for (let i = 0; i <= D; i++) {
    for (let j = 0; j <= D; j++) qk[i * (D + 1) + j]! += row(0, t, i) * row(1, t, j);
    for (let j = 0; j < D; j++) vo[i * D + j]! += row(2, t, i) * o[j * D + h * HD + t]!;
  }
  return { qk, vo };
}

function truncate(m: Float64Array, rows: number, cols: number, r: number): Float64Array {
  const f = svd(tensor(Float64Array.from(m), [rows, cols]));
  const k = Math.min(rows, cols);
  const [u, s, v] = [f.u.data as Float64Array, f.s.data as Float64Array, f.v.data as Float64Array];
  const o = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) for (let t = 0; t < r; t++) o[i * cols + j]! += u[i * k + t]! * s[t]! * v[j * k + t]!;
  return o;
}

describe('clover prune stage', () => {
  it('truncates each head\'s products to rank 3 (brute force), masks the dropped channels, and a later adapter keeps them zero', async () => {
    const base = join(tmp, 'base');
    await startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [pretrain] }), { dir: base, ...quiet });
    const pruned = join(tmp, 'pruned');
    const summary = await startRun(
      resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [pretrain, { stage: 'prune', method: 'clover', config: { rank: 3 } }, { stage: 'adapt', method: 'lora', config: { r: 2 }, steps: 2, batch: 4, lr: 1e-2 }] }),
      { dir: pruned, ...quiet },
    );
    expect(JSON.stringify(summary.stages)).toMatch(/mean kept singular values per head QK 3\.00, VO 3\.00/);
    const before = (await readCheckpoint(base)).params;
    const after = await readCheckpoint(pruned);
    // the prune stage's result, before the adapter changed anything: rebuild it from a run that stops after the prune
    const onlyPrune = join(tmp, 'only-prune');
    await startRun(resolveRecipe({ seed: 1, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [pretrain, { stage: 'prune', method: 'clover', config: { rank: 3 } }] }), { dir: onlyPrune, ...quiet });
    const mid = (await readCheckpoint(onlyPrune)).params;
    for (let h = 0; h < HEADS; h++) {
      const p0 = products(before, h);
      const p1 = products(mid, h);
      const tq = truncate(p0.qk, D + 1, D + 1, 3);
      const tv = truncate(p0.vo, D + 1, D, 3);
      const scale = Math.max(...Array.from(tq, Math.abs), ...Array.from(tv, Math.abs));
      p1.qk.forEach((x, k) => expect(Math.abs(x - tq[k]!), `QK head ${h} [${k}]`).toBeLessThan(1e-4 * scale));
      p1.vo.forEach((x, k) => expect(Math.abs(x - tv[k]!), `VO head ${h} [${k}]`).toBeLessThan(1e-4 * scale));
    }
    // masks: the dropped rows of c_attn (5 of 8 per head in each of Q, K, V) and columns of c_proj
    const qkvMask = after.masks.get('h.0.attn.c_attn.weight')!;
    const oMask = after.masks.get('h.0.attn.c_proj.weight')!;
    expect(qkvMask).toBeDefined();
    const w = after.params.get('h.0.attn.c_attn.weight')!.data;
    const o = after.params.get('h.0.attn.c_proj.weight')!.data;
    for (let part = 0; part < 3; part++) for (let h = 0; h < HEADS; h++) for (let t = 3; t < HD; t++) for (let j = 0; j < D; j++) {
      const q = (part * D + h * HD + t) * D + j;
      expect(isKept(qkvMask, q)).toBe(false);
      expect(w[q]).toBe(0);
      expect(isKept(oMask, j * D + h * HD + t)).toBe(false);
      expect(o[j * D + h * HD + t]).toBe(0);
    }
  }, 300_000);

  it('on a Llama (RoPE, separate projections) absorbs only V with O and says why Q/K were left', async () => {
    const dir = join(tmp, 'llama');
    const summary = await startRun(
      resolveRecipe({ seed: 2, model: { architecture: 'llama', d: 16, layers: 1, heads: 2, kvHeads: 2, mlpHidden: 16, ctx: 16 }, eval: { windows: 2, batch: 2 }, stages: [pretrain, { stage: 'prune', method: 'clover', config: { energy: 0.5 } }, { stage: 'report' }] }),
      { dir, ...quiet },
    );
    expect(JSON.stringify(summary.stages)).toMatch(/QK -, VO \d/);
    const cp = await readCheckpoint(dir);
    expect([...cp.masks.keys()].sort()).toEqual(['model.layers.0.self_attn.o_proj.weight', 'model.layers.0.self_attn.v_proj.weight']);
    expect(cp.report.notes.join('\n')).toMatch(/QK not absorbed: Q and K are rotated by position \(RoPE\)/);
  }, 300_000);

  it('then the clover adapter (the products\' singular values): a run stopped inside the stage resumes to the same losses', async () => {
    const r = resolveRecipe({
      seed: 4,
      model: MODEL,
      eval: { windows: 2, batch: 2 },
      stages: [pretrain, { stage: 'prune', method: 'clover', config: { energy: 0.9 } }, { stage: 'adapt', method: 'clover', targets: ['attn.c_attn', 'attn.c_proj'], steps: 6, batch: 4, lr: 1e-2, checkpointEvery: 2 }],
    });
    const whole = join(tmp, 'adapt-whole');
    await startRun(r, { dir: whole, ...quiet });
    const broken = join(tmp, 'adapt-broken');
    await runWithStops(r, broken, [{ stage: 2, step: 5, resumeAt: 4, state: 'batches' }]);
    await expectSameRun(whole, broken);
  }, 300_000);

  it('refuses a config with both or neither target, naming the field', () => {
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'prune', method: 'clover', config: { rank: 2, energy: 0.9 } }] })).toThrow(/rank/);
    expect(() => resolveRecipe({ model: MODEL, stages: [{ stage: 'prune', method: 'clover', config: {} }] })).toThrow(/exactly one of rank and energy/);
  });
});
