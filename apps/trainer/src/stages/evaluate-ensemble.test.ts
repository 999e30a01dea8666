// LoRA Dropout's test-time ensemble in the evaluate stage: one sample is the single-mask forward of
// that seed, N samples average the predicted probabilities (checked against a mean computed here from
// each sample's logits), draws are reproducible, recipes refuse the ensemble without an unmerged
// lora-dropout adapter, and a recipe using it runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachAdapters } from '@sparse/lora-variants/tfjs';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { evalWindowStarts } from '../data/dataset.js';
import { createModel } from '../model/index.js';
import { RecipeError } from '../recipe/errors.js';
import { resolveRecipe } from '../recipe/load.js';
import { RunContext } from '../run/context.js';
import { loadRunData } from '../run/data.js';
import { RunLog } from '../run/log.js';
import { startRun } from '../run/runner.js';
import { evaluateEnsemblePerplexity, evaluatePerplexity } from '../train/evaluate.js';
import { loraDropoutSampleHooks } from './evaluate.js';

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const silent = { write: () => true };
let tmp: string;
let backend: Awaited<ReturnType<typeof chooseBackend>>;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-ensemble-'));
  backend = await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny GPT with a lora-dropout adapter (p = 0.3) on every linear layer, its factors moved off init so ΔW ≠ 0. */
function contextWithAdapter(variant = 'lora-dropout'): RunContext {
  const recipe = resolveRecipe({ seed: 3, model: MODEL, stages: [{ stage: 'evaluate' }] });
  const data = loadRunData(recipe.data);
  const model = createModel({ ...MODEL, vocab: data.main.tokenizer.vocabSize }, { seed: 3 });
  const ctx = new RunContext(recipe, tmp, model, data, new RunLog(join(tmp, `m${Math.random()}.jsonl`), 'quiet', { stdout: silent, stderr: silent }), backend);
  const targets = ctx.linears().map((l) => l.name);
  const weights = Object.fromEntries(targets.map((n) => [n, ctx.model.params[n]!]));
  const config = variant === 'lora-dropout' ? { r: 2, alpha: 4, p: 0.3 } : { r: 2, alpha: 4 };
  const adapter = attachAdapters(weights, { targets, variant, config, seed: 5 });
  const rng = new Random(9);
  for (const v of adapter.trainableVariables()) v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal(0, 0.3)), v.shape)));
  ctx.adapter = { stage: 0, label: 'adapt', variant, config, targets, seed: 5, model: adapter };
  return ctx;
}

const OPTS = { maxWindows: 6, batch: 4 };

describe('LoRA Dropout test-time ensemble', () => {
  it('one sample is the single-mask forward of that seed; draws are reproducible and differ by seed', () => {
    const ctx = contextWithAdapter();
    const tokens = ctx.data.main.heldOut;
    const one = evaluateEnsemblePerplexity(ctx.model, tokens, { ...OPTS, samples: 1, hooksFor: (n) => loraDropoutSampleHooks(ctx, 11, n) });
    const single = evaluatePerplexity(ctx.model, tokens, { ...OPTS, hooks: loraDropoutSampleHooks(ctx, 11, 0) });
    expect(Math.abs(one.loss - single.loss)).toBeLessThan(1e-4 * single.loss);
    expect(one.tokens).toBe(single.tokens);
    const again = evaluateEnsemblePerplexity(ctx.model, tokens, { ...OPTS, samples: 1, hooksFor: (n) => loraDropoutSampleHooks(ctx, 11, n) });
    expect(again.loss).toBe(one.loss);
    // the masks matter: another seed, and the expected (no-dropout) weights, give other losses
    const other = evaluatePerplexity(ctx.model, tokens, { ...OPTS, hooks: loraDropoutSampleHooks(ctx, 12, 0) });
    const expected = evaluatePerplexity(ctx.model, tokens, { ...OPTS, hooks: ctx.hooks() });
    expect(Math.abs(other.loss - single.loss)).toBeGreaterThan(1e-4);
    expect(Math.abs(expected.loss - single.loss)).toBeGreaterThan(1e-4);
  });

  it('N samples: the perplexity of the mean of the N predicted distributions (brute force)', () => {
    const ctx = contextWithAdapter();
    const tokens = ctx.data.main.heldOut;
    const samples = 3;
    const r = evaluateEnsemblePerplexity(ctx.model, tokens, { ...OPTS, samples, hooksFor: (n) => loraDropoutSampleHooks(ctx, 4, n) });
    // brute force: every window in one batch, softmax and mean by plain loops in float64
    const len = r.windowLength;
    const starts = evalWindowStarts(tokens, len, OPTS.maxWindows);
    const ids = new Int32Array(starts.length * len);
    const targets: number[] = [];
    starts.forEach((s, w) => {
      ids.set(tokens.subarray(s, s + len), w * len);
      for (let t = 0; t < len; t++) targets.push(tokens[s + t + 1]!);
    });
    const mean = new Float64Array(targets.length);
    const perSample: number[] = [];
    for (let n = 0; n < samples; n++) {
      const logits = tf.tidy(() => ctx.model.logits2d(tf.tensor2d(ids, [starts.length, len], 'int32'), loraDropoutSampleHooks(ctx, 4, n)));
      const [rows, vocab] = logits.shape;
      const z = logits.dataSync() as Float32Array;
      logits.dispose();
      let nll = 0;
      for (let i = 0; i < rows; i++) {
        let max = -Infinity;
        for (let v = 0; v < vocab; v++) max = Math.max(max, z[i * vocab + v]!);
        let sum = 0;
        for (let v = 0; v < vocab; v++) sum += Math.exp(z[i * vocab + v]! - max);
        const p = Math.exp(z[i * vocab + targets[i]!]! - max) / sum;
        mean[i]! += p / samples;
        nll -= Math.log(p);
      }
      perSample.push(nll / rows);
    }
    const loss = -mean.reduce((a, p) => a + Math.log(p), 0) / mean.length;
    expect(r.tokens).toBe(targets.length);
    expect(Math.abs(r.loss - loss)).toBeLessThan(1e-4 * loss);
    expect(r.perplexity).toBeCloseTo(Math.exp(loss), 3);
    // averaging probabilities is not averaging losses (Jensen: the ensemble's loss is at most their mean)
    const meanLoss = perSample.reduce((a, b) => a + b, 0) / samples;
    expect(r.loss).toBeLessThan(meanLoss);
    expect(Math.abs(r.loss - meanLoss)).toBeGreaterThan(1e-5);
  });

  it('needs a lora-dropout adapter at run time', () => {
    const ctx = contextWithAdapter('lora');
    expect(() => loraDropoutSampleHooks(ctx, 0, 0)).toThrow(/needs a lora-dropout adapter attached and unmerged \('lora' is attached\)/);
    ctx.adapter = undefined;
    expect(() => loraDropoutSampleHooks(ctx, 0, 0)).toThrow(/none is attached/);
  });
});

describe('evaluate ensemble in recipes', () => {
  const problems = (stages: Record<string, unknown>[]) => {
    try {
      resolveRecipe({ model: MODEL, stages });
    } catch (err) {
      if (err instanceof RecipeError) return err.problems.map((p) => `${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  };
  const ens = { stage: 'evaluate', ensemble: { samples: 4 } };

  it('is refused without an unmerged lora-dropout adapter, naming the stage', () => {
    expect(problems([ens])).toEqual([expect.stringMatching(/^stages\[0\]\.ensemble: .*needs an earlier adapt stage with method lora-dropout and merge: false/)]);
    expect(problems([{ stage: 'adapt', method: 'lora' , merge: false }, ens])).toEqual([expect.stringMatching(/^stages\[1\]\.ensemble: .*attached here is 'lora' \(stages\[0\]\)/)]);
    expect(problems([{ stage: 'adapt', method: 'lora-dropout' }, ens])).toEqual([expect.stringMatching(/^stages\[1\]\.ensemble: .*stages\[0\] merges it; set merge: false/)]);
    expect(problems([{ stage: 'adapt', method: 'lora-dropout', merge: false }, { stage: 'evaluate', ensemble: { samples: 0 } }])).toEqual([expect.stringMatching(/^stages\[1\]\.ensemble\.samples/)]);
    expect(problems([{ stage: 'adapt', method: 'lora-dropout', merge: false }, ens])).toEqual([]);
  });

  it('a recipe with an ensemble evaluation runs and reports its perplexity', async () => {
    const recipe = resolveRecipe({
      seed: 2,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'adapt', method: 'lora-dropout', config: { r: 2, p: 0.2 }, merge: false, steps: 2, batch: 4 },
        { stage: 'evaluate', name: 'single' },
        { stage: 'evaluate', name: 'ens', ensemble: { samples: 3, seed: 1 } },
      ],
    });
    const summary = await startRun(recipe, { dir: join(tmp, 'run'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const labels = summary.evaluations.map((e) => e.label);
    expect(labels).toEqual(['single', 'ens (ensemble of 3)']);
    for (const e of summary.evaluations) expect(Number.isFinite(e.perplexity) && e.perplexity > 1).toBe(true);
    expect(summary.stages.at(-1)!.summary).toMatch(/averaged over 3 LoRA Dropout masks \(seed 1\)/);
  }, 120_000);
});
