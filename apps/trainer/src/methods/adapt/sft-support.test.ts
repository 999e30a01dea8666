// The sft stage's supportScores: after a 50% prune, each layer's trained support is the top
// round(density · size) entries, among those the base keeps, of a score recomputed here independently:
// the empirical Fisher E[g²] from tf.grads over the stage's support batches, and LIFT's |W_r| from the
// exact SVD (the stage uses a randomized one, so the check allows the rank-r scores' rounding); with no
// criterion the support is random, still inside the mask.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept, type Mask } from '@sparse/masks';
import { loadSparseDeltas } from '@sparse/lora-variants/node';
import { svd, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../../backend.js';
import { createModel } from '../../model/index.js';
import { resolveRecipe } from '../../recipe/load.js';
import type { StageOf } from '../../recipe/schema.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { RunContext } from '../../run/context.js';
import { loadRunData } from '../../run/data.js';
import { RunLog } from '../../run/log.js';
import { startRun } from '../../run/runner.js';
import { quiet, silent } from '../../testing/resume.js';
import { supportScoreBatches } from './adapter.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-sft-support-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DENSITY = 0.1;

/** Runs prune (magnitude 50%) then sft with `supportScores` (merge: false, so the final weights are the ones the support was chosen at). */
async function run(name: string, scores: Record<string, unknown>) {
  const recipe = resolveRecipe({
    seed: 4,
    model: MODEL,
    eval: { windows: 2, batch: 2 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 } },
      { stage: 'adapt', method: 'sft', config: { density: DENSITY }, steps: 2, batch: 4, lr: 1e-2, merge: false, supportBatches: 3, ...scores },
    ],
  });
  const dir = join(tmp, name);
  await startRun(recipe, { dir, ...quiet });
  const cp = await readCheckpoint(dir);
  const deltas = await loadSparseDeltas(join(dir, 'exports', 'sft', 'adapt_sft_2.safetensors'));
  return { recipe, cp, deltas };
}

/** Every support entry is kept by the mask, there are round(density · size) of them, and (with scores) none left out scores higher, up to `tol`. */
function expectTopWithinMask(indices: Int32Array | number[], mask: Mask, score: Float64Array | Float32Array | undefined, tol = 0) {
  const size = score?.length ?? mask.shape[0]! * mask.shape[1]!;
  const chosen = new Set(Array.from(indices));
  expect(chosen.size).toBe(Math.round(DENSITY * mask.shape[0]! * mask.shape[1]!));
  for (const i of chosen) expect(isKept(mask, i)).toBe(true);
  if (!score) return;
  let minIn = Infinity;
  let maxOut = -Infinity;
  for (let i = 0; i < size; i++) {
    if (!isKept(mask, i)) continue;
    if (chosen.has(i)) minIn = Math.min(minIn, score[i]!);
    else maxOut = Math.max(maxOut, score[i]!);
  }
  expect(minIn).toBeGreaterThanOrEqual(maxOut - tol);
}

describe('sft supportScores', () => {
  it('fisher: the top E[g²] entries within the mask, E[g²] from tf.grads here', async () => {
    const { recipe, cp, deltas } = await run('fisher', { supportScores: 'fisher' });
    const data = loadRunData(recipe.data);
    const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 4 });
    for (const [k, v] of cp.params) model.params[k]!.assign(tf.tensor(v.data as Float32Array, v.shape));
    const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, 'fisher.jsonl'), 'quiet', { stdout: silent, stderr: silent }), backend);
    const layers = ctx.linears();
    const batches = supportScoreBatches(ctx, recipe.stages[2] as StageOf<'adapt'>, 2);
    const sums = layers.map((l) => new Float64Array(l.out * l.in));
    for (const b of batches) {
      tf.tidy(() => {
        const ids = tf.tensor2d(b.inputs, [b.batch, b.len], 'int32');
        const targets = tf.tensor2d(b.targets, [b.batch, b.len], 'int32');
        const ws = layers.map((l) => model.params[l.name]!);
        const grads = tf.grads((...xs: tf.Tensor[]) => model.loss(ids, targets, { weight: (n, p) => { const i = layers.findIndex((l) => l.name === n); return i >= 0 ? xs[i]! : p; } }))(ws);
        grads.forEach((g, i) => (g.dataSync() as Float32Array).forEach((x, j) => (sums[i]![j]! += (x * x) / batches.length)));
      });
    }
    layers.forEach((l, i) => expectTopWithinMask(deltas[l.name]!.indices, cp.masks.get(l.name)!, sums[i]!, 1e-7 * Math.max(...sums[i]!)));
    ctx.dispose();
  }, 120_000);

  it('principal (LIFT): the top |W_r| entries within the mask, W_r from the exact SVD', async () => {
    const { cp, deltas } = await run('principal', { supportScores: 'principal', supportRank: 2 });
    for (const [name, delta] of Object.entries(deltas)) {
      const w = cp.params.get(name)!;
      const [out, inp] = w.shape as [number, number];
      const { u, s, v } = svd(tensor(Float64Array.from(w.data as Float32Array), [out, inp]));
      const k = Math.min(out, inp);
      const wr = new Float64Array(out * inp);
      for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
        let x = 0;
        for (let r = 0; r < 2; r++) x += (u.data[i * k + r] as number) * (s.data[r] as number) * (v.data[j * k + r] as number);
        wr[i * inp + j] = Math.abs(x);
      }
      expectTopWithinMask(delta.indices, cp.masks.get(name)!, wr, 1e-3 * Math.max(...wr));
    }
  }, 120_000);

  it('no criterion: a random support inside the mask', async () => {
    const { cp, deltas } = await run('random', {});
    for (const [name, delta] of Object.entries(deltas)) expectTopWithinMask(delta.indices, cp.masks.get(name)!, undefined);
  }, 120_000);
});
