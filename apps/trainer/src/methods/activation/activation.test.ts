// The activation stage: a method of @sparse/activation's registry calibrates on the run's calibration
// windows, its sparsifiers are active in every later forward pass (evaluate measures perplexity with
// them and the density they reach on held-out data), checkpoints carry them (a run stopped inside the
// stage's fine-tuning resumes to the same losses), the export writes them for generate; 'relu' swaps
// the MLP nonlinearity.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerActivationMethod, type ActivationMethod, type Site, type SiteSparsifier } from '@sparse/activation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createModel } from '../../model/index.js';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { loadRunData } from '../../run/data.js';
import { startRun } from '../../run/runner.js';
import { evaluatePerplexity } from '../../train/evaluate.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-activation-stage-'));
const MODEL = { architecture: 'gpt' as const, d: 16, layers: 2, heads: 2, ctx: 16 };

/** Zeroes |x| below a per-site threshold: the `fraction`-quantile of the calibration |x| (by sorting). */
function cut(site: string, t: number): SiteSparsifier {
  return {
    site,
    apply(x) {
      let kept = 0;
      for (let i = 0; i < x.length; i++) {
        if (Math.abs(x[i]!) < t) x[i] = 0;
        else kept++;
      }
      return kept;
    },
    state: () => ({ t }),
  };
}

const schema = z.strictObject({ fraction: z.number().min(0).max(1).default(0.5) });
const testMethod: ActivationMethod<typeof schema> = {
  kind: 'activation',
  name: 'test-cut',
  describe: 'test: magnitude cut at MLP activations',
  paper: "none (this library's own method): a test cut",
  differs: [],
  schema,
  needs: [],
  acts: (_c, site: Site) => site.kind === 'mlp-activation',
  calibrate: (c, samples) =>
    samples.map((s) => {
      const sorted = Float32Array.from(s.x, Math.abs).sort();
      return cut(s.site.name, sorted[Math.min(sorted.length - 1, Math.floor(c.fraction * sorted.length))]!);
    }),
  restore: (_c, site, state) => cut(site.name, (state as { t: number }).t),
};

let unregister: () => void;
beforeAll(() => {
  unregister = registerActivationMethod(testMethod);
});
afterAll(() => {
  unregister();
  rmSync(tmp, { recursive: true, force: true });
});

describe('activation stage', () => {
  it('calibrates, evaluates with the sparsifier active (perplexity and held-out density), exports activation.json', async () => {
    const recipe = resolveRecipe({
      seed: 4,
      model: MODEL,
      eval: { windows: 8, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 20, batch: 4 },
        { stage: 'evaluate', name: 'dense' },
        { stage: 'activation', method: 'test-cut', config: { fraction: 0.6 } },
        { stage: 'evaluate', name: 'sparse' },
        { stage: 'export', formats: ['dense'] },
        { stage: 'report' },
      ],
    });
    const dir = join(tmp, 'run');
    const summary = await startRun(recipe, { dir, ...quiet });
    const [dense, sparse] = summary.evaluations;
    expect(dense!.perplexity).not.toBe(sparse!.perplexity);
    // the same perplexity computed here: the exported model with every MLP activation cut at the saved thresholds
    const saved = JSON.parse(readFileSync(join(dir, 'exports', 'activation.json'), 'utf8')) as { method: string; states: Record<string, { t: number }> };
    expect(saved.method).toBe('test-cut');
    expect(Object.keys(saved.states).sort()).toEqual(['h.0.mlp.act', 'h.1.mlp.act']);
    const cp = await readCheckpoint(dir);
    const data = loadRunData(recipe.data);
    const model = createModel(cp.spec, { values: new Map([...cp.params].map(([k, v]) => [k, v.data])) });
    let kept = 0;
    let total = 0;
    const hooks = {
      activation: (site: Site, x: tf.Tensor2D) => {
        const s = saved.states[site.name];
        if (!s) return x;
        const v = x.dataSync();
        const m = Float32Array.from(v, (a) => (Math.abs(a) < s.t ? 0 : 1));
        kept += m.reduce((a, b) => a + b, 0);
        total += m.length;
        return tf.mul(x, tf.tensor2d(m, x.shape)) as tf.Tensor2D;
      },
    };
    const r = evaluatePerplexity(model, data.main.heldOut, { maxWindows: 8, batch: 4, hooks });
    model.dispose();
    expect(Math.abs(r.perplexity - sparse!.perplexity)).toBeLessThan(1e-4 * r.perplexity);
    // the held-out density the stage reported is the one counted here; the threshold was the 0.6-quantile of calibration data
    const density = events(dir).find((e) => e.event === 'activation-density') as unknown as { overall: number };
    expect(Math.abs(density.overall - kept / total)).toBeLessThan(1e-9);
    expect(density.overall).toBeGreaterThan(0.25);
    expect(density.overall).toBeLessThan(0.55);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('Activation sparsity');
    // the dense activations measured at every site of the model (5 per block), with histograms to fit thresholds from
    const measured = JSON.parse(readFileSync(join(dir, 'activations', 'activation_test-cut_2.json'), 'utf8')) as { sites: { site: string; tokens: number; histogram: unknown; zeros: { mean: number } }[] };
    expect(measured.sites.map((x) => x.site).sort()).toEqual(
      ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.act', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight', 'h.1.attn.c_attn.weight', 'h.1.attn.c_proj.weight', 'h.1.mlp.act', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.weight'],
    );
    for (const x of measured.sites) {
      expect(x.tokens).toBeGreaterThan(0);
      expect(x.histogram).toBeDefined();
      expect(x.zeros.mean).toBeLessThan(0.5);
    }
  }, 300_000);

  it('a run stopped inside the fine-tuning resumes with the same sparsifier and the same losses', async () => {
    const recipe = resolveRecipe({
      seed: 5,
      model: MODEL,
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 6, batch: 4 },
        { stage: 'activation', method: 'test-cut', config: { fraction: 0.5 }, steps: 8, batch: 4, checkpointEvery: 3 },
        { stage: 'evaluate' },
      ],
    });
    const whole = join(tmp, 'whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(recipe, broken, [{ stage: 1, step: 5, resumeAt: 3, state: 'batches' }], (_s, cp) => {
      expect(cp.activation?.method).toBe('test-cut');
      expect(Object.keys(cp.activation!.states)).toHaveLength(2);
    });
    await expectSameRun(whole, broken);
  }, 300_000);

  it("'relu' swaps the MLP nonlinearity, which the checkpoint's spec and the export keep", async () => {
    const recipe = resolveRecipe({
      seed: 2,
      model: { ...MODEL, architecture: 'llama' },
      stages: [
        { stage: 'pretrain', steps: 3, batch: 4 },
        { stage: 'activation', method: 'relu', config: { kind: 'relu2' }, steps: 3, batch: 4 },
        { stage: 'export', formats: ['dense'] },
      ],
    });
    const dir = join(tmp, 'relu');
    await startRun(recipe, { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    expect((cp.spec as { activation?: string }).activation).toBe('relu2');
    expect(existsSync(join(dir, 'exports', 'activation.json'))).toBe(false);
  }, 120_000);

  it('rotate: the model is rotated before calibrating (same perplexity; the checkpoint and export keep it); refused on masked layers and for relu', async () => {
    const recipe = resolveRecipe({
      seed: 6,
      model: MODEL,
      eval: { windows: 6, batch: 3 },
      stages: [
        { stage: 'pretrain', steps: 12, batch: 4 },
        { stage: 'evaluate', name: 'dense' },
        // fraction 0: the threshold is the smallest calibration |x|, so nothing is cut: only the rotation acts
        { stage: 'activation', method: 'test-cut', config: { fraction: 0 }, rotate: true },
        { stage: 'evaluate', name: 'rotated' },
        { stage: 'export', formats: ['dense'] },
      ],
    });
    const dir = join(tmp, 'rotate');
    const summary = await startRun(recipe, { dir, ...quiet });
    const [dense, rotated] = summary.evaluations;
    expect(Math.abs(rotated!.perplexity - dense!.perplexity)).toBeLessThan(1e-4 * dense!.perplexity);
    const cp = await readCheckpoint(dir);
    expect((cp.spec as { normRotation?: boolean }).normRotation).toBe(true);
    const rot = cp.params.get('h.1.ln_2.rotation')!;
    expect(rot.shape).toEqual([16, 16]);
    // not the identity it starts from
    let off = 0;
    for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) if (i !== j) off = Math.max(off, Math.abs(rot.data[i * 16 + j]!));
    expect(off).toBeGreaterThan(0.05);
    const ev = events(dir).find((e) => e.event === 'activation-rotate') as unknown as { norms: { rotation: string; singular: number[] }[] };
    expect(ev.norms.map((n) => n.rotation)).toEqual(['h.0.ln_1.rotation', 'h.0.ln_2.rotation', 'h.1.ln_1.rotation', 'h.1.ln_2.rotation']);
    expect(existsSync(join(dir, 'exports', 'model.safetensors'))).toBe(true);

    const pruned = resolveRecipe({
      seed: 6,
      model: MODEL,
      stages: [
        { stage: 'pretrain', steps: 2, batch: 4 },
        { stage: 'prune', method: 'magnitude', config: { sparsity: 0.5 } },
        { stage: 'activation', method: 'test-cut', rotate: true },
      ],
    });
    await expect(startRun(pruned, { dir: join(tmp, 'rotate-pruned'), ...quiet })).rejects.toThrow(/rotate would make the masked weights h\.0\.attn\.c_attn\.weight.*dense/);
    const relu = resolveRecipe({ seed: 6, model: MODEL, stages: [{ stage: 'pretrain', steps: 1, batch: 4 }, { stage: 'activation', method: 'relu', rotate: true }] });
    await expect(startRun(relu, { dir: join(tmp, 'rotate-relu'), ...quiet })).rejects.toThrow(/rotate applies to the activation sparsifiers/);
  }, 300_000);

  it('a recipe naming an unknown activation method fails with the nearest names', () => {
    expect(() => resolveRecipe({ stages: [{ stage: 'activation', method: 'tesst-cut' }] })).toThrow(/test-cut/);
  });
});
