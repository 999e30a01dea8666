// The attention stage: a method of @sparse/attention's registry is installed in the run and active in
// every later forward pass (block masks predicted from each layer's q and k, or K / V pruned per token),
// evaluate measures what it computes, checkpoints carry it (a run stopped inside the stage's fine-tuning
// resumes to the same losses), and the export writes attention.json for generate.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { denseMaskedAttention, maskedAttention, type AttentionLayout } from '../../model/attention-op.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';
import { BitmapKVCache } from '@sparse/attention';
import { emptyCounts, summarizeCounts } from './counts.js';
import { intersectTiles, magnitudeRowMask } from './hooks.js';
import { ATTENTION_FORMAT, restoreAttention } from './record.js';
import { causalLayout } from '../../model/attention-op.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-attention-stage-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const GPT = { architecture: 'gpt' as const, d: 16, layers: 2, heads: 2, ctx: 32 };
const LLAMA = { architecture: 'llama' as const, d: 16, layers: 2, heads: 4, kvHeads: 2, ctx: 32, mlpHidden: 32 };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ev = { event: string; [k: string]: any };
const evs = (dir: string): Ev[] => events(dir) as unknown as Ev[];

async function run(name: string, model: Record<string, unknown>, stages: Record<string, unknown>[], seed = 3): Promise<{ dir: string; perplexities: number[] }> {
  const recipe = resolveRecipe({ seed, model, eval: { windows: 4, batch: 4 }, stages: [{ stage: 'pretrain', steps: 4, batch: 4 }, { stage: 'calibrate', windows: 4, batch: 4 }, ...stages] });
  const dir = join(tmp, name);
  const summary = await startRun(recipe, { dir, ...quiet });
  return { dir, perplexities: summary.evaluations.map((e) => e.perplexity) };
}

describe('attention stage', () => {
  for (const model of [GPT, LLAMA]) {
    it(`sparge keeping all the mass (cdfThreshold 1) gives the dense perplexity (${model.architecture})`, async () => {
      const dense = await run(`dense-${model.architecture}`, model, [{ stage: 'evaluate' }]);
      const sparge = await run(`sparge1-${model.architecture}`, model, [{ stage: 'attention', method: 'sparge', config: { blockSize: 8, cdfThreshold: 1 } }, { stage: 'evaluate' }]);
      expect(Math.abs(sparge.perplexities[0]! - dense.perplexities[0]!)).toBeLessThanOrEqual(1e-5 * dense.perplexities[0]!);
      const d = evs(sparge.dir).find((e) => e.event === 'attention-density');
      expect(d?.kind).toBe('tiles');
      expect(d?.density).toBeCloseTo(1, 10);
    }, 120_000);

    it(`topk-blocks computes fewer tiles than causal and reports them per layer (${model.architecture})`, async () => {
      const r = await run(`topk-${model.architecture}`, model, [{ stage: 'attention', method: 'topk-blocks', config: { blockSize: 4, k: 1 } }, { stage: 'evaluate' }, { stage: 'report' }]);
      expect(Number.isFinite(r.perplexities[0])).toBe(true);
      const d = evs(r.dir).find((e) => e.event === 'attention-density') as unknown as { density: number; layers: { layer: number; density: number }[] };
      expect(d.density).toBeLessThan(1);
      expect(d.density).toBeGreaterThan(0);
      expect(d.layers.map((l) => l.layer)).toEqual([0, 1]);
      expect(readFileSync(join(r.dir, 'report.html'), 'utf8')).toContain('Sparse attention');
    }, 120_000);
  }

  it("the prediction is intersected with the model's own pattern: sparge keeping all the mass gives the pattern's perplexity", async () => {
    const model = { ...GPT, attention: { pattern: 'sliding-window', window: 6, sinks: 1, blockSize: 4 } };
    const own = await run('pattern-own', model, [{ stage: 'evaluate' }]);
    const sparge = await run('pattern-sparge', model, [{ stage: 'attention', method: 'sparge', config: { blockSize: 8, cdfThreshold: 1 } }, { stage: 'evaluate' }]);
    expect(Math.abs(sparge.perplexities[0]! - own.perplexities[0]!)).toBeLessThanOrEqual(1e-5 * own.perplexities[0]!);
  }, 120_000);

  it('mustafar at sparsity 0 is dense; at 0.5 it prunes half of K and V (head_dim even) and the perplexity stays finite', async () => {
    for (const model of [GPT, LLAMA]) {
      const dense = await run(`m-dense-${model.architecture}`, model, [{ stage: 'evaluate' }]);
      const zero = await run(`m0-${model.architecture}`, model, [{ stage: 'attention', method: 'mustafar', config: { sparsity: 0 } }, { stage: 'evaluate' }]);
      expect(Math.abs(zero.perplexities[0]! - dense.perplexities[0]!)).toBeLessThanOrEqual(1e-6 * dense.perplexities[0]!);
      const half = await run(`m5-${model.architecture}`, model, [{ stage: 'attention', method: 'mustafar', config: { sparsity: 0.5 } }, { stage: 'evaluate' }, { stage: 'export', formats: ['dense'] }]);
      expect(Number.isFinite(half.perplexities[0])).toBe(true);
      expect(half.perplexities[0]).not.toBe(dense.perplexities[0]);
      const d = evs(half.dir).find((e) => e.event === 'attention-density') as unknown as { kind: string; kSparsity: number; vSparsity: number; bytes: number; denseBytes: number };
      expect(d.kind).toBe('kv');
      expect(d.kSparsity).toBeCloseTo(0.5, 10);
      expect(d.vSparsity).toBeCloseTo(0.5, 10);
      expect(d.bytes).toBeGreaterThan(0);
      expect(d.bytes).toBeLessThan(d.denseBytes);
      const file = JSON.parse(readFileSync(join(half.dir, 'exports', 'attention.json'), 'utf8')) as Record<string, unknown>;
      expect(file).toMatchObject({ format: ATTENTION_FORMAT, method: 'mustafar', config: { kSparsity: 0.5, vSparsity: 0.5 }, state: {} });
    }
  }, 240_000);

  it("seer trains one gate per layer, its distillation loss falls, and the gates checkpoint and export", async () => {
    const r = await run('seer', GPT, [{ stage: 'attention', method: 'seer', config: { blockSize: 8, steps: 40, gateDim: 8, learningRate: 0.05 } }, { stage: 'evaluate' }, { stage: 'export', formats: ['dense'] }]);
    const g = evs(r.dir).find((e) => e.event === 'attention-gate') as unknown as { lossBefore: number[]; lossAfter: number[] };
    expect(g.lossBefore).toHaveLength(2);
    for (let l = 0; l < 2; l++) expect(g.lossAfter[l]).toBeLessThan(g.lossBefore[l]!);
    expect(Number.isFinite(r.perplexities[0])).toBe(true);
    const cp = await readCheckpoint(r.dir);
    expect(cp.attention?.method).toBe('seer');
    expect(cp.attention?.state.gates).toHaveLength(2);
    const file = JSON.parse(readFileSync(join(r.dir, 'exports', 'attention.json'), 'utf8')) as unknown;
    const rec = restoreAttention(file, 'attention.json');
    expect(rec.state.gates![0]!.wq).toHaveLength(2 * 8 * 8);
    expect(evs(r.dir).some((e) => e.event === 'attention-density')).toBe(true);
  }, 120_000);

  it('a run stopped inside the fine-tuning resumes with the same attention and the same losses', async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: GPT,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 6, batch: 4 },
        { stage: 'attention', method: 'topk-blocks', config: { blockSize: 8, k: 1 }, steps: 8, batch: 4, checkpointEvery: 3 },
        { stage: 'evaluate' },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 1, step: 5, resumeAt: 3, state: 'batches' }], (_s, cp) => {
      expect(cp.attention?.method).toBe('topk-blocks');
      expect(cp.attention?.stage).toBe(1);
    });
    await expectSameRun(whole, broken);
    const p = (dir: string) => evs(dir).find((e) => e.event === 'eval')!.perplexity;
    expect(p(broken)).toBe(p(whole));
  }, 300_000);

  it("a run stopped inside seer's fine-tuning resumes with the checkpointed gates and the same losses", async () => {
    const recipe = resolveRecipe({
      seed: 6,
      model: LLAMA,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 4, batch: 4 },
        { stage: 'calibrate', windows: 4, batch: 4 },
        { stage: 'attention', method: 'seer', config: { blockSize: 8, steps: 10, topK: 1 }, steps: 6, batch: 4, checkpointEvery: 3 },
        { stage: 'evaluate' },
      ],
    });
    const whole = join(tmp, 'seer-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'seer-broken');
    await runWithStops(recipe, broken, [{ stage: 2, step: 5, resumeAt: 3, state: 'batches' }], (_s, cp) => {
      expect(cp.attention?.state.gates).toHaveLength(2);
    });
    await expectSameRun(whole, broken);
    const p = (dir: string) => evs(dir).find((e) => e.event === 'eval')!.perplexity;
    expect(p(broken)).toBe(p(whole));
  }, 300_000);

  it('a later attention stage replaces the earlier one', async () => {
    const r = await run('replace', GPT, [{ stage: 'attention', method: 'topk-blocks', config: { blockSize: 8, k: 0 } }, { stage: 'attention', method: 'mustafar', config: { sparsity: 0.25 } }, { stage: 'evaluate' }]);
    const cp = await readCheckpoint(r.dir);
    expect(cp.attention?.method).toBe('mustafar');
    expect(cp.attention?.stage).toBe(3);
  }, 120_000);
});

describe('attention hooks', () => {
  it('per-head layouts run through the op like the dense reference', () => {
    const heads = 2;
    const t = 8;
    const hd = 4;
    const causal = causalLayout(t, 4);
    // head 0: causal; head 1: only the diagonal tiles
    const keep = new Uint8Array(heads * causal.nb * causal.nb).fill(1);
    keep[1 * 4 + 2] = 0; // head 1, tile (1, 0)
    const layout = intersectTiles(keep, heads, causal);
    const q = tf.randomNormal([heads, t, hd], 0, 1, 'float32', 1) as tf.Tensor3D;
    const k = tf.randomNormal([heads, t, hd], 0, 1, 'float32', 2) as tf.Tensor3D;
    const v = tf.randomNormal([heads, t, hd], 0, 1, 'float32', 3) as tf.Tensor3D;
    const got = maskedAttention(q, k, v, heads, [layout]).arraySync();
    const headLayout = (h: number): AttentionLayout => ({ ...layout, heads: 1, tiles: layout.tiles.slice(h * 4, (h + 1) * 4) });
    for (let h = 0; h < heads; h++) {
      const one = (x: tf.Tensor3D) => tf.slice(x, [h, 0, 0], [1, t, hd]) as tf.Tensor3D;
      const want = denseMaskedAttention(one(q), one(k), one(v), 1, [headLayout(h)]).arraySync()[0]!;
      for (let i = 0; i < t; i++) for (let c = 0; c < hd; c++) expect(got[h]![i]![c]).toBeCloseTo(want[i]![c]!, 5);
    }
  });

  it("the cache bytes reported are BitmapKVCache's for the same positions", () => {
    const kvHeads = 2;
    const d = 12;
    const positions = 5;
    const cache = new BitmapKVCache({ kvHeads, headDim: d, kSparsity: 0.5, vSparsity: 0.25 });
    for (let p = 0; p < positions; p++) cache.append(Float32Array.from({ length: kvHeads * d }, (_, i) => Math.sin(p * 31 + i)), Float32Array.from({ length: kvHeads * d }, (_, i) => Math.cos(p * 17 + i)));
    const counts = emptyCounts();
    // two layers, each seen over 3 windows of `positions` tokens
    for (const layer of [0, 1]) counts.kv.set(layer, { kKept: 3 * positions * kvHeads * cache.kKeep, vKept: 3 * positions * kvHeads * cache.vKeep, entries: 3 * positions * kvHeads * d, rows: 3 * positions * kvHeads, headDim: d });
    const s = summarizeCounts(counts, positions, kvHeads)!;
    expect(s.kind).toBe('kv');
    if (s.kind !== 'kv') return;
    expect(s.bytes).toBe(2 * cache.bytes());
    expect(s.denseBytes).toBe(2 * cache.denseBytes());
    expect(s.kSparsity).toBeCloseTo(0.5, 10);
    expect(s.vSparsity).toBeCloseTo(0.25, 10);
  });

  it('magnitudeRowMask keeps the largest |x| of each row', () => {
    const m = magnitudeRowMask(Float32Array.from([1, -5, 2, 0.5, 3, 0, -1, 4]), 2, 4, 2);
    expect(Array.from(m)).toEqual([0, 1, 1, 0, 1, 0, 0, 1]);
  });

  it('restoreAttention refuses a wrong format or an unknown method', () => {
    expect(() => restoreAttention({ format: 'x/1', method: 'sparge' }, 'f')).toThrow(/format/);
    expect(() => restoreAttention({ method: 'nope' }, 'f')).toThrow();
    expect(restoreAttention({ format: ATTENTION_FORMAT, method: 'sparge', config: { cdfThreshold: 0.5 } }, 'f').method).toBe('sparge');
  });
});
