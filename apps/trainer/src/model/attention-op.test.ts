import * as tf from '@tensorflow/tfjs-core';
import { Random } from '@sparse/tensor';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chooseBackend } from '../backend.js';
import { additiveMask, causalLayout, denseMaskedAttention, layoutAllows, layoutFromPredicate, maskedAttention, type AttentionLayout, type BatchAttention } from './attention-op.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseRecipeText, resolveRecipe } from '../recipe/load.js';
import { readCheckpoint } from '../run/checkpoint.js';
import { packageRoot } from '../testing/dist.js';
import { startRun } from '../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../testing/resume.js';
import { Decoder } from './decode.js';
import { ModelSpecError } from './errors.js';
import { createModel, resolveSpec } from './index.js';
import type { ForwardHooks, LanguageModel, ModelSpec } from './types.js';

// The models call maskedAttention through this module; `flag.dense` swaps in the plain tfjs version
// (scores + additive mask), the reference the kernel op must match.
const flag = vi.hoisted(() => ({ dense: false }));
vi.mock('./attention-op.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./attention-op.js')>();
  return { ...orig, maskedAttention: (...a: Parameters<typeof orig.maskedAttention>) => (flag.dense ? orig.denseMaskedAttention : orig.maskedAttention)(...a) };
});

beforeAll(async () => {
  await chooseBackend();
});

function randn(shape: [number, number, number], rng: Random, std = 1): tf.Tensor3D {
  const a = new Float32Array(shape[0] * shape[1] * shape[2]);
  rng.fillNormal(a, 0, std);
  return tf.tensor3d(a, shape);
}

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return w;
}

const window = (w: number, sinks: number) => (i: number, j: number) => j <= i && (i - j < w || j < sinks);

describe('layouts', () => {
  it('classify tiles from the element mask and answer element queries', () => {
    const l = layoutFromPredicate(10, 4, window(3, 1));
    expect(l.nb).toBe(3);
    for (let i = 0; i < 10; i++) for (let j = 0; j < 10; j++) expect(layoutAllows(l, i, j)).toBe(window(3, 1)(i, j));
    // the tile of queries 4..7 and keys 8..9 is empty (causal); that of queries 0..3 and keys 0..3 partial
    expect(l.tiles[1 * 3 + 2]).toBe(0);
    expect(l.tiles[0]).toBe(2);
    expect(additiveMask(l)[0 * 10 + 1]).toBe(-1e9);
    expect(additiveMask(causalLayout(5, 2))[4 * 5 + 4]).toBe(0);
  });
});

describe('maskedAttention', () => {
  it('matches scores + additive mask, forward and gradients, per-sequence layouts', () => {
    const rng = new Random(3);
    const heads = 2;
    const [b, t, hd] = [3, 11, 4];
    const layouts: AttentionLayout[] = [layoutFromPredicate(t, 4, window(4, 2)), causalLayout(t, 3), layoutFromPredicate(t, 5, (i, j) => j <= i && (j < 3 || Math.floor(j / 4) === Math.floor(i / 4)))];
    const [q, k, v] = [randn([b * heads, t, hd], rng), randn([b * heads, t, hd], rng), randn([b * heads, t, hd], rng)];
    const dy = randn([b * heads, t, hd], rng);
    const loss = (f: typeof maskedAttention) => (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(f(qq as tf.Tensor3D, kk as tf.Tensor3D, vv as tf.Tensor3D, heads, layouts), dy));
    const got = maskedAttention(q, k, v, heads, layouts).dataSync();
    const want = denseMaskedAttention(q, k, v, heads, layouts).dataSync();
    expect(worst(got, want)).toBeLessThan(1e-5);
    const gk = tf.grads(loss(maskedAttention))([q, k, v]);
    const gd = tf.grads(loss(denseMaskedAttention))([q, k, v]);
    for (let i = 0; i < 3; i++) expect(worst(gk[i]!.dataSync(), gd[i]!.dataSync())).toBeLessThan(1e-5);
  });

  it('refuses layouts that do not fit the batch', () => {
    const q = tf.zeros([4, 6, 2]) as tf.Tensor3D;
    expect(() => maskedAttention(q, q, q, 2, [causalLayout(5)])).toThrow(/layout for 5 tokens/);
    expect(() => maskedAttention(q, q, q, 2, [causalLayout(6), causalLayout(6), causalLayout(6)])).toThrow(/3 layouts for a batch of 2/);
  });
});

/** Logits and the gradient of every parameter for one batch, with the kernel op or the dense reference. */
function logitsAndGrads(model: LanguageModel, ids: number[][], hooks: ForwardHooks, dense: boolean): { logits: Float32Array; grads: Map<string, Float32Array> } {
  flag.dense = dense;
  try {
    let out: { logits: Float32Array; grads: Map<string, Float32Array> } | undefined;
    tf.tidy(() => {
      const [b, t] = [ids.length, ids[0]!.length];
      const x = tf.tensor2d(ids.flat(), [b, t], 'int32');
      const targets = tf.tensor2d(ids.map((r) => [...r.slice(1), r[0]!]).flat(), [b, t], 'int32');
      const logits = Float32Array.from(model.logits2d(x, hooks).dataSync());
      const { grads } = tf.variableGrads(() => model.loss(x, targets, hooks), model.variables());
      out = { logits, grads: new Map(Object.entries(grads).map(([k, g]) => [k, Float32Array.from(g.dataSync())])) };
    });
    return out!;
  } finally {
    flag.dense = false;
  }
}

const ids = [
  [1, 5, 2, 7, 3, 12, 0, 4, 9, 9],
  [0, 10, 4, 4, 9, 8, 6, 1, 2, 3],
];

const SPECS: [string, Omit<ModelSpec, 'vocab'>][] = [
  ['gpt', { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 16, mlpRatio: 2 }],
  ['gpt with experts', { architecture: 'gpt', d: 16, layers: 1, heads: 4, ctx: 16, mlpRatio: 2, moe: { experts: 3, topK: 2 } }],
  ['llama (grouped-query)', { architecture: 'llama', d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24, ctx: 16 }],
  ['llama with experts', { architecture: 'llama', d: 16, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 24, ctx: 16, moe: { experts: 2, topK: 1 } }],
];

describe('the models with per-batch attention (hooks.attention)', () => {
  for (const [label, spec] of SPECS) {
    it(`${label}: logits and gradients through the kernels equal the additive-mask forward`, () => {
      const model = createModel({ ...spec, vocab: 13 } as ModelSpec, { seed: 5 });
      const attention: BatchAttention = {
        layouts: [layoutFromPredicate(10, 4, window(3, 2)), layoutFromPredicate(10, 3, (i, j) => j <= i && (j < 4 || (i >= 7) === (j >= 7)))],
        positions: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 4, 5, 6]),
      };
      const a = logitsAndGrads(model, ids, { attention }, false);
      const b = logitsAndGrads(model, ids, { attention }, true);
      expect(worst(a.logits, b.logits)).toBeLessThan(1e-4);
      for (const [name, g] of b.grads) expect(worst(a.grads.get(name)!, g), name).toBeLessThan(1e-4);
      // and the pattern matters: plain causal attention gives other logits
      const causal = logitsAndGrads(model, ids, {}, false);
      expect(worst(a.logits, causal.logits)).toBeGreaterThan(1e-3);
      model.dispose();
    });
  }

  it('causal layouts with the default positions reproduce the dense causal forward', () => {
    for (const [label, spec] of SPECS) {
      const model = createModel({ ...spec, vocab: 13 } as ModelSpec, { seed: 6 });
      const a = logitsAndGrads(model, ids, { attention: { layouts: [causalLayout(10, 4)] } }, false);
      const b = logitsAndGrads(model, ids, {}, false);
      expect(worst(a.logits, b.logits), label).toBeLessThan(1e-4);
      for (const [name, g] of b.grads) expect(worst(a.grads.get(name)!, g), `${label} ${name}`).toBeLessThan(1e-4);
      model.dispose();
    }
  });
});

const WINDOW = { pattern: 'sliding-window', window: 3, sinks: 2, blockSize: 4 };

describe('a model spec with an attention pattern', () => {
  for (const [label, spec] of SPECS) {
    it(`${label}: logits and gradients equal the dense forward with the pattern's element mask added`, () => {
      const model = createModel({ ...spec, vocab: 13, attention: WINDOW } as unknown as ModelSpec, { seed: 7 });
      const a = logitsAndGrads(model, ids, {}, false);
      const b = logitsAndGrads(model, ids, {}, true);
      expect(worst(a.logits, b.logits)).toBeLessThan(1e-4);
      for (const [name, g] of b.grads) expect(worst(a.grads.get(name)!, g), name).toBeLessThan(1e-4);
      // the same weights without the pattern: dense causal, other logits
      const plain = createModel({ ...spec, vocab: 13 } as ModelSpec, { values: new Map(Object.entries(model.params).map(([k, v]) => [k, Float32Array.from(v.dataSync())])) });
      expect(worst(logitsAndGrads(plain, ids, {}, false).logits, a.logits)).toBeGreaterThan(1e-3);
      model.dispose();
      plain.dispose();
    });

    it(`${label}: the decoder's cached steps and chunked prefill equal the full forward with the pattern`, () => {
      const model = createModel({ ...spec, vocab: 13, attention: WINDOW } as unknown as ModelSpec, { seed: 8 });
      const seq = [...ids[0]!, ...ids[1]!].slice(0, 14);
      const all = tf.tidy(() => model.logits2d(tf.tensor2d(seq, [1, seq.length], 'int32')).arraySync() as number[][]);
      const dec = Decoder.fromModel(model);
      for (let t = 0; t < seq.length; t++) expect(worst(dec.step(seq[t]!), all[t]!), `step ${t}`).toBeLessThan(1e-4);
      const chunked = Decoder.fromModel(model, { prefillChunk: 5 });
      expect(worst(chunked.prefill(seq), all[seq.length - 1]!)).toBeLessThan(1e-4);
      model.dispose();
    });
  }

  it('is validated: the pattern is parsed with its defaults, bad fields and non-causal patterns are named', () => {
    const base = { architecture: 'gpt', vocab: 5 } as ModelSpec;
    expect(resolveSpec({ ...base, attention: { pattern: 'sliding-window', window: 4 } }).attention).toEqual({ pattern: 'sliding-window', window: 4, sinks: 0, causal: true });
    const field = (attention: unknown) => {
      try {
        resolveSpec({ ...base, attention });
      } catch (e) {
        expect(e).toBeInstanceOf(ModelSpecError);
        return (e as ModelSpecError).field;
      }
      return undefined;
    };
    expect(field({ pattern: 'sliding-windw', window: 4 })).toBe('attention.pattern');
    expect(field({ pattern: 'sliding-window', window: 0 })).toBe('attention.window');
    expect(field({ pattern: 'full' })).toBe('attention');
    expect(field({ pattern: 'prefix-sharing', prompt: 3, responses: [2] })).toBe('attention');
    expect(field('window')).toBe('attention');
    expect(field({ pattern: 'sliding-window', window: 4 })).toBeUndefined();
    // llama too
    expect(() => resolveSpec({ architecture: 'llama', vocab: 5, attention: { pattern: 'sliding-window', window: 2, causal: false } } as unknown as ModelSpec)).toThrow(/must be causal/);
  });
});

describe('training with a pattern', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sparse-attention-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const recipe = resolveRecipe({
    seed: 3,
    model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16, attention: { pattern: 'sliding-window', window: 4, sinks: 2, blockSize: 4 } },
    eval: { windows: 4, batch: 4 },
    stages: [{ stage: 'pretrain', steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 3 }, { stage: 'evaluate' }],
  });

  it('the loss falls, and a run stopped inside the stage resumes to the same losses and weights', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const losses = events(whole).filter((e) => e.event === 'step').map((e) => e.loss!);
    expect(losses).toHaveLength(12);
    expect(losses.slice(-3).reduce((a, b) => a + b, 0) / 3).toBeLessThan(losses.slice(0, 3).reduce((a, b) => a + b, 0) / 3 - 0.1);
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 0, step: 8, resumeAt: 6, state: 'batches' }]);
    await expectSameRun(whole, broken);
  }, 120_000);

  it('recipes/sliding-window.yaml runs with its pattern at a small size; the checkpoint keeps it and the decoder of the checkpoint matches the model', async () => {
    const path = join(packageRoot, 'recipes', 'sliding-window.yaml');
    const raw = parseRecipeText(readFileSync(path, 'utf8'), path) as { model: Record<string, unknown>; stages: Record<string, unknown>[]; eval?: unknown };
    expect(raw.model.attention).toEqual({ pattern: 'sliding-window', window: 8, sinks: 2, blockSize: 8 });
    raw.model = { ...raw.model, d: 16, layers: 1, heads: 2, ctx: 24 };
    raw.eval = { windows: 4, batch: 4 };
    for (const st of raw.stages) if (st.stage === 'pretrain') Object.assign(st, { steps: 6, batch: 4 });
    const dir = join(tmp, 'shipped');
    const summary = await startRun(resolveRecipe(raw, { source: path, baseDir: join(packageRoot, 'recipes') }), { dir, ...quiet });
    expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
    const cp = await readCheckpoint(dir);
    expect(cp.spec.attention).toEqual({ pattern: 'sliding-window', window: 8, sinks: 2, causal: true, blockSize: 8 });
    const values = new Map([...cp.params].map(([k, v]) => [k, v.data as Float32Array]));
    const model = createModel(cp.spec, { values });
    const seq = Array.from({ length: 20 }, (_, i) => (i * 7) % cp.spec.vocab);
    const all = tf.tidy(() => model.logits2d(tf.tensor2d(seq, [1, 20], 'int32')).arraySync() as number[][]);
    const dec = Decoder.fromValues(cp.spec, values);
    expect(worst(dec.prefill(seq), all[19]!)).toBeLessThan(1e-4);
    model.dispose();
  }, 120_000);
});
