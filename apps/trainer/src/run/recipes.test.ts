// Every shipped recipe runs end to end at a tiny size, and what each stage promises holds.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNM } from '@sparse/nm';
import { openSafetensors } from '@sparse/tensor/node';
import { listMethods, parseRecipeText, resolveRecipe, type ResolvedRecipe } from '../recipe/index.js';
import { DEFAULT_RECIPE } from '../recipe/default.js';
import { packageRoot } from '../testing/dist.js';
import { startRun } from './runner.js';
import { loadExportedModel } from '../stages/export.js';
import { expectExportedNM } from '../testing/export.js';

const recipesDir = join(packageRoot, 'recipes');
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-recipes-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The recipe at a size that runs in seconds: a 1-block model, a few steps per stage. */
export function tiny(raw: Record<string, unknown>): Record<string, unknown> {
  const r = structuredClone(raw);
  // a mixture-of-experts recipe keeps its experts (its prune stage needs them)
  const moe = (raw.model as { moe?: unknown } | undefined)?.moe;
  r.model = { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16, ...(moe === undefined ? {} : { moe }) };
  r.eval = { windows: 8, batch: 8 };
  for (const s of r.stages as Record<string, unknown>[]) {
    if (['pretrain', 'train', 'adapt', 'distill', 'activation', 'attention'].includes(s.stage as string)) {
      s.steps = Math.min((s.steps as number | undefined) ?? 4, 4);
      s.batch = 4;
    }
    if (s.stage === 'calibrate') s.windows = 8;
  }
  return r;
}

const silent = { write: () => true };

async function runTiny(name: string): Promise<{ recipe: ResolvedRecipe; dir: string; summary: Awaited<ReturnType<typeof startRun>> }> {
  const path = join(recipesDir, name);
  const recipe = resolveRecipe(tiny(parseRecipeText(readFileSync(path, 'utf8'), path) as Record<string, unknown>), { source: path, baseDir: recipesDir });
  const dir = join(tmp, name.replace(/\.ya?ml$/, ''));
  const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
  return { recipe, dir, summary };
}

describe('shipped recipes', () => {
  it('default.yaml is the embedded default recipe', () => {
    const file = parseRecipeText(readFileSync(join(recipesDir, 'default.yaml'), 'utf8'), 'default.yaml');
    expect(resolveRecipe(file)).toEqual(resolveRecipe(structuredClone(DEFAULT_RECIPE)));
  });

  const files = readdirSync(recipesDir).filter((f) => /\.ya?ml$/.test(f));
  it('ship at least the paper workflows the trainer promises', () => {
    for (const f of ['wanda-unstructured.yaml', 'wanda-2of4.yaml', 'sparsegpt-unstructured.yaml', 'sparsegpt-2of4.yaml', 'srste-2of4-scratch.yaml', 'permute-2of4.yaml', 'adams-2of4-finetune.yaml', 'lora-finetune.yaml', 'rosa-finetune.yaml', 'sft-finetune.yaml', 'lt-sft-compose.yaml', 'experts-task.yaml', 'sft-ist.yaml', 'lora-ist.yaml', 'spp-recovery.yaml', 'sqft-recovery.yaml', 'sparse-mezo.yaml', 'sensitive-mezo.yaml', 'squarehead-recovery.yaml', 'cfsp-neurons.yaml', 'gmp-unstructured.yaml', 'rigl-erk.yaml', 'set-erk.yaml', 'static-er.yaml', 'static-erk.yaml', 'exploration-erk.yaml', 'acdc-global.yaml', 'hypersparse-global.yaml', 'spdf.yaml', 'movement-finetune.yaml', 'imp-rewind.yaml', 'teal-decode.yaml', 'wina-decode.yaml', 'cats-finetune.yaml', 'relu-recovery.yaml', 'sparge-prefill.yaml', 'seer-gate.yaml', 'kv-prune.yaml']) {
      expect(files).toContain(f);
    }
  });

  for (const f of files) {
    it(`${f} runs at a tiny size`, async () => {
      const { recipe, dir, summary } = await runTiny(f);
      // every evaluate stage measured a finite perplexity
      const evals = recipe.stages.filter((s) => s.stage === 'evaluate').reduce((n, s) => n + (s as { data: string[] }).data.length, 0);
      expect(summary.evaluations).toHaveLength(evals);
      for (const e of summary.evaluations) expect(Number.isFinite(e.perplexity)).toBe(true);
      const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string });
      expect(metrics.at(-1)!.event).toBe('done');
      if (recipe.stages.some((s) => s.stage === 'report')) {
        expect(summary.report).toBeDefined();
        expect(readFileSync(summary.report!, 'utf8')).toContain('<html');
      }
      if (recipe.stages.some((s) => s.stage === 'export')) {
        const exp = recipe.stages.find((s) => s.stage === 'export') as { formats: string[] };
        if (exp.formats.includes('compressed')) {
          const path = join(dir, 'exports', 'model.compressed.safetensors');
          const model = await loadExportedModel(path);
          expect(model.numParams()).toBeGreaterThan(0);
          // a pruned model is smaller on disk compressed than dense
          const pruned = recipe.stages.some((s) => s.stage === 'prune' || (s.stage === 'train' && (s as { method: string }).method === 'nm'));
          if (pruned && exp.formats.includes('dense')) expect(statSync(path).size).toBeLessThan(statSync(join(dir, 'exports', 'model.safetensors')).size);
          // N:M recipes: every linear weight of the exported model is still N:M
          const nm = JSON.stringify(recipe.stages).match(/"n":(\d+),"m":(\d+)/);
          if (nm && pruned) {
            for (const l of model.linears()) {
              const w = model.params[l.name]!;
              const t = { data: w.dataSync() as Float32Array, shape: [...w.shape], stride: [w.shape[1]!, 1], offset: 0, dtype: 'float32' as const };
              expect(isNM(t, { n: Number(nm[1]), m: Number(nm[2]) }).valid, `${f}: ${l.name}`).toBe(true);
            }
          }
          model.dispose();
        }
      }
      expect(existsSync(join(dir, 'recipe.json'))).toBe(true);
    }, 120_000);
  }
});

describe('every registered adapt method runs from a recipe', () => {
  const names = listMethods('adapt').map((m) => m.name);
  it('includes the LoRA family, sparse + low-rank adapters, SFT and MeZO', () => {
    for (const n of ['lora', 'sqft', 'spp', 'lora-xs', 'corda', 'sft', 'mezo', 'sparse-mezo', 'sensitive-mezo']) expect(names).toContain(n);
  });
  for (const method of names) {
    it(`${method} adapts a pruned model with its default config and keeps the mask`, async () => {
      const recipe = resolveRecipe({
        name: method,
        model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
        eval: { windows: 4, batch: 4 },
        stages: [
          { stage: 'pretrain', steps: 3, batch: 4 },
          { stage: 'calibrate', windows: 8 },
          { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
          // block sizes that fit a 16-wide model
          { stage: 'adapt', method, steps: 3, batch: 4, lr: 1e-3, ...(method === 'smt' ? { config: { blockSize: 8 } } : {}) },
          { stage: 'evaluate' },
          { stage: 'export', formats: ['compressed'] },
        ],
      });
      const dir = join(tmp, `adapt-${method}`);
      const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
      expect(Number.isFinite(summary.evaluations[0]!.perplexity)).toBe(true);
      const model = await loadExportedModel(join(dir, 'exports', 'model.compressed.safetensors'));
      for (const l of model.linears()) {
        const w = model.params[l.name]!;
        const t = { data: w.dataSync() as Float32Array, shape: [...w.shape], stride: [w.shape[1]!, 1], offset: 0, dtype: 'float32' as const };
        expect(isNM(t, { n: 2, m: 4 }).valid, `${method}: ${l.name}`).toBe(true);
      }
      model.dispose();
    }, 120_000);
  }
});

describe('every registered activation method runs from a recipe', () => {
  const names = listMethods('activation').map((m) => m.name);
  it('includes ReLU substitution, top-k, CATS, TEAL, WINA, R-Sparse and N:M activations', () => {
    for (const n of ['relu', 'top-k', 'cats', 'teal', 'wina', 'r-sparse', 'nm']) expect(names).toContain(n);
  });
  // the methods whose config has no complete default: which selection (polar), which blocks and the sequence length (lemo)
  const configs: Record<string, Record<string, unknown>> = { polar: { mlp: {} }, lemo: { blocks: [1], window: 16, sink: 2, recent: 4 }, 'topk-sae': { steps: 5, k: 4 } };
  for (const method of names) {
    it(`${method} calibrates on a gpt and a gated llama with its default config, evaluates with it active and exports it`, async () => {
      for (const model of [
        { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 16 },
        { architecture: 'llama', d: 16, layers: 2, heads: 2, kvHeads: 1, ctx: 16, mlpHidden: 32 },
      ]) {
        const recipe = resolveRecipe({
          name: method,
          model,
          eval: { windows: 4, batch: 4 },
          stages: [
            { stage: 'pretrain', steps: 3, batch: 4 },
            { stage: 'calibrate', windows: 8 },
            { stage: 'activation', method, steps: 2, batch: 4, ...(configs[method] ? { config: configs[method] } : {}) },
            { stage: 'evaluate' },
            { stage: 'export', formats: ['dense'] },
          ],
        });
        const dir = join(tmp, `activation-${method}-${model.architecture}`);
        const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
        expect(Number.isFinite(summary.evaluations[0]!.perplexity), `${method} on ${model.architecture}`).toBe(true);
        const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; overall?: number });
        if (method === 'topk-sae') {
          // autoencoders trained and measured; the model is unchanged, nothing for generate to apply
          expect(metrics.some((e) => e.event === 'sae')).toBe(true);
          expect(existsSync(join(dir, 'exports', 'activation.json'))).toBe(false);
          continue;
        }
        // predictors report the recall of their predicted channels against the exact top set
        if (method === 'sparselora-svd' || method === 'polar') {
          const ev = metrics.find((e) => e.event === 'activation') as { recall?: Record<string, number> } | undefined;
          const r = Object.values(ev?.recall ?? {});
          expect(r.length, method).toBeGreaterThan(0);
          for (const x of r) expect(x).toBeGreaterThanOrEqual(0), expect(x).toBeLessThanOrEqual(1);
        }
        const density = metrics.find((e) => e.event === 'activation-density');
        expect(density, `${method} on ${model.architecture}`).toBeDefined();
        expect(density!.overall).toBeGreaterThan(0);
        expect(density!.overall).toBeLessThanOrEqual(1);
        // the ReLU substitution changes the model; every other method is a sparsifier generate can apply
        expect(existsSync(join(dir, 'exports', 'activation.json')), method).toBe(method !== 'relu');
      }
    }, 120_000);
  }
});

describe('every registered attention method runs from a recipe', () => {
  const names = listMethods('attention').map((m) => m.name);
  it('includes sparge, topk-blocks, seer and mustafar', () => {
    for (const n of ['sparge', 'topk-blocks', 'seer', 'mustafar']) expect(names).toContain(n);
  });
  // seer: a short gate training
  const configs: Record<string, Record<string, unknown>> = { sparge: { blockSize: 8 }, 'topk-blocks': { blockSize: 8, k: 1 }, seer: { blockSize: 8, steps: 10 } };
  for (const method of names) {
    it(`${method} is installed on a gpt and a grouped-query llama, evaluates with it active and exports it`, async () => {
      for (const model of [
        { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 32 },
        { architecture: 'llama', d: 16, layers: 2, heads: 2, kvHeads: 1, ctx: 32, mlpHidden: 32 },
      ]) {
        const recipe = resolveRecipe({
          name: method,
          model,
          eval: { windows: 4, batch: 4 },
          stages: [
            { stage: 'pretrain', steps: 3, batch: 4 },
            { stage: 'calibrate', windows: 4, batch: 4 },
            { stage: 'attention', method, steps: 2, batch: 4, ...(configs[method] ? { config: configs[method] } : {}) },
            { stage: 'evaluate' },
            { stage: 'export', formats: ['dense'] },
          ],
        });
        const dir = join(tmp, `attention-${method}-${model.architecture}`);
        const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
        expect(Number.isFinite(summary.evaluations[0]!.perplexity), `${method} on ${model.architecture}`).toBe(true);
        const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; density?: number; kSparsity?: number });
        const measured = metrics.find((e) => e.event === 'attention-density');
        expect(measured, `${method} on ${model.architecture}`).toBeDefined();
        const file = JSON.parse(readFileSync(join(dir, 'exports', 'attention.json'), 'utf8')) as { format: string; method: string };
        expect(file.format).toBe('sparse-attention/1');
        expect(file.method).toBe(method);
      }
    }, 120_000);
  }
});

describe('architectures', () => {
  it('a Llama with a mixture of experts pretrains, loses experts by routing, prunes 2:4 with SparseGPT and recovers with SQFT', async () => {
    const recipe = resolveRecipe({
      model: { architecture: 'llama', d: 16, layers: 2, heads: 4, kvHeads: 2, ctx: 16, mlpHidden: 32, moe: { experts: 4, topK: 2 } },
      eval: { windows: 4, batch: 4 },
      stages: [
        { stage: 'pretrain', steps: 4, batch: 4 },
        { stage: 'calibrate', windows: 8 },
        { stage: 'prune', method: 'experts', config: { keep: 2 } },
        { stage: 'evaluate', name: 'two experts' },
        { stage: 'prune', method: 'sparsegpt', config: { n: 2, m: 4 } },
        { stage: 'adapt', method: 'sqft', steps: 3, batch: 4 },
        { stage: 'evaluate', name: 'recovered' },
        { stage: 'export', formats: ['compressed'] },
      ],
    });
    const dir = join(tmp, 'llama-moe');
    const summary = await startRun(recipe, { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
    expect(summary.evaluations.map((e) => e.label)).toEqual(['two experts', 'recovered']);
    const model = await loadExportedModel(join(dir, 'exports', 'model.compressed.safetensors'));
    expect(model.spec.moe).toEqual({ experts: 2, topK: 2 });
    expect(Object.keys(model.params).some((n) => n.includes('experts.2.'))).toBe(false);
    for (const l of model.linears()) {
      const w = model.params[l.name]!;
      const t = { data: w.dataSync() as Float32Array, shape: [...w.shape], stride: [w.shape[1]!, 1], offset: 0, dtype: 'float32' as const };
      expect(isNM(t, { n: 2, m: 4 }).valid, l.name).toBe(true);
    }
    model.dispose();
  }, 120_000);

  it('starts from a checkpoint file', async () => {
    const first = resolveRecipe({ model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 }, eval: { windows: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'evaluate' }, { stage: 'export', formats: ['dense'] }] });
    const a = await startRun(first, { dir: join(tmp, 'ckpt-a'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const second = resolveRecipe({ model: { checkpoint: join(tmp, 'ckpt-a', 'exports', 'model.safetensors') }, eval: { windows: 4 }, stages: [{ stage: 'evaluate' }] });
    const b = await startRun(second, { dir: join(tmp, 'ckpt-b'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    expect(b.evaluations[0]!.perplexity).toBeCloseTo(a.evaluations[0]!.perplexity, 4);
  }, 120_000);

  it('keeps the N:M pattern of a pruned checkpoint through recovery', async () => {
    const first = resolveRecipe({ model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 }, eval: { windows: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } }, { stage: 'export', formats: ['dense'] }] });
    await startRun(first, { dir: join(tmp, 'nm-a'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const second = resolveRecipe({ model: { checkpoint: join(tmp, 'nm-a', 'exports', 'model.safetensors') }, eval: { windows: 4 }, stages: [{ stage: 'adapt', method: 'lora', steps: 3, batch: 4 }, { stage: 'export', formats: ['compressed'] }] });
    await startRun(second, { dir: join(tmp, 'nm-b'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    // the run adopted the checkpoint's 2:4 pattern: the export stores the linear weights as N:M layouts
    const file = await openSafetensors(join(tmp, 'nm-b', 'exports', 'model.compressed.safetensors'));
    expect(JSON.parse(file.metadata['sparse.h.0.mlp.c_fc.weight']!).format).toBe('nm');
    await file.close();
    await expectExportedNM(join(tmp, 'nm-b', 'exports', 'model.compressed.safetensors'));
  }, 120_000);

  it('dynamic-rank prunes rank-1 components to its budget while training', async () => {
    const recipe = resolveRecipe({
      model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
      eval: { windows: 4 },
      stages: [{ stage: 'adapt', method: 'dynamic-rank', config: { r: 4, rankBudget: { target: 1, start: 0, end: 0.5, every: 2 } }, steps: 12, batch: 4, merge: false }],
    });
    await startRun(recipe, { dir: join(tmp, 'dynrank'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const ranks = readFileSync(join(tmp, 'dynrank', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; ranks?: Record<string, number> }).find((e) => e.event === 'ranks')!.ranks!;
    expect(Object.values(ranks).reduce((a, b) => a + b, 0)).toBe(4); // 4 layers x target 1
    expect(() => resolveRecipe({ stages: [{ stage: 'adapt', method: 'lora', config: { rankBudget: { target: 1 } } }] })).toThrow(/stages\[0\]\.config: .*rankBudget/);
  }, 120_000);

  it('selective-lora with a strong gate penalty switches its blocks off and reports the active count', async () => {
    const recipe = resolveRecipe({
      model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
      eval: { windows: 4 },
      stages: [{ stage: 'adapt', method: 'selective-lora', config: { r: 4, blocks: 2, lambda: 1000 }, steps: 20, batch: 4, lr: 0.5, merge: false }],
    });
    await startRun(recipe, { dir: join(tmp, 'selective'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const events = readFileSync(join(tmp, 'selective', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; on?: number; total?: number; summary?: string });
    const blocks = events.find((e) => e.event === 'blocks')!;
    expect(blocks.total).toBe(8); // 4 layers x 2 blocks
    expect(blocks.on).toBe(0);
    expect(events.find((e) => e.event === 'stage-end')!.summary).toMatch(/^selective-lora, \d+ trainable, 0 of 8 blocks active, final loss/);
  }, 120_000);

  it('roselora re-selects its supports from the smoothed sensitivity on the cubic schedule while training', async () => {
    const recipe = resolveRecipe({
      model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 },
      eval: { windows: 4 },
      stages: [{ stage: 'adapt', method: 'roselora', config: { r: 2, densityA: 0.25, densityB: 0.5 }, steps: 10, batch: 4, merge: false }],
    });
    await startRun(recipe, { dir: join(tmp, 'roselora'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const events = readFileSync(join(tmp, 'roselora', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number; densityA?: number; densityB?: number });
    const support = events.filter((e) => e.event === 'roselora-support');
    // scheduleStart 0.1, scheduleEnd 0.7 of 10 steps: re-selected before steps 2..7, the last at the targets
    expect(support.map((e) => e.step)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(support.at(-1)).toMatchObject({ densityA: 0.25, densityB: 0.5 });
    expect(support[0]!.densityA).toBeCloseTo(0.25 + 0.75 * (1 - 1 / 6) ** 3, 12);
  }, 120_000);
});

describe('multi-layer pruning methods', () => {
  const base = { model: { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 16 }, eval: { windows: 4 } };
  const run = async (name: string, stages: Record<string, unknown>[]) => {
    const dir = join(tmp, name);
    await startRun(resolveRecipe({ ...base, stages: [{ stage: 'pretrain', steps: 4, batch: 4 }, ...stages, { stage: 'export', formats: ['dense'] }] }), { dir, mode: 'quiet', io: { stdout: silent, stderr: silent } });
    return loadExportedModel(join(dir, 'exports', 'model.safetensors'));
  };

  it('global magnitude keeps exactly the largest |W| across all layers (sort-based brute force)', async () => {
    const dense = await run('gm-dense', []);
    const pruned = await run('gm', [{ stage: 'prune', method: 'global-magnitude', config: { sparsity: 0.6 } }]);
    const all = dense.linears().flatMap((l) => Array.from(dense.params[l.name]!.dataSync() as Float32Array, Math.abs));
    const keep = all.length - Math.round(0.6 * all.length);
    const threshold = [...all].sort((a, b) => b - a)[keep - 1]!;
    let kept = 0;
    for (const l of pruned.linears()) {
      const w = pruned.params[l.name]!.dataSync() as Float32Array;
      const w0 = dense.params[l.name]!.dataSync() as Float32Array;
      w.forEach((x, k) => {
        if (x !== 0) {
          kept++;
          expect(Math.abs(w0[k]!)).toBeGreaterThanOrEqual(threshold);
          expect(x).toBe(w0[k]);
        } else expect(Math.abs(w0[k]!)).toBeLessThanOrEqual(threshold);
      });
    }
    expect(kept).toBe(keep);
    const sparsities = pruned.linears().map((l) => (pruned.params[l.name]!.dataSync() as Float32Array).filter((x) => x === 0).length / (l.out * l.in));
    expect(new Set(sparsities.map((s) => s.toFixed(3))).size).toBeGreaterThan(1); // layers lose different fractions
    dense.dispose();
    pruned.dispose();
  }, 120_000);

  it('CFSP removes whole MLP neurons (down columns with their up rows) to the requested total', async () => {
    const m = await run('cfsp', [{ stage: 'calibrate', windows: 8 }, { stage: 'prune', method: 'cfsp', config: { sparsity: 0.25 } }]);
    let pruned = 0;
    let total = 0;
    for (let b = 0; b < 2; b++) {
      const down = m.params[`h.${b}.mlp.c_proj.weight`]!;
      const up = m.params[`h.${b}.mlp.c_fc.weight`]!;
      const bias = m.params[`h.${b}.mlp.c_fc.bias`]!.dataSync() as Float32Array;
      const [dOut, hidden] = down.shape as [number, number];
      const dw = down.dataSync() as Float32Array;
      const uw = up.dataSync() as Float32Array;
      for (let j = 0; j < hidden; j++) {
        const colZero = Array.from({ length: dOut }, (_, r) => dw[r * hidden + j]).every((x) => x === 0);
        const rowZero = uw.subarray(j * up.shape[1]!, (j + 1) * up.shape[1]!).every((x) => x === 0) && bias[j] === 0;
        expect(colZero).toBe(rowZero);
        if (colZero) pruned++;
        total++;
      }
    }
    expect(Math.abs(pruned / total - 0.25)).toBeLessThanOrEqual(2 / total);
    m.dispose();
  }, 120_000);

  it('DSnoT (from its initial Wanda mask) prunes to the requested sparsity', async () => {
    const ds = await run('dsnot', [{ stage: 'prune', method: 'dsnot', config: { sparsity: 0.5 } }]);
    for (const l of ds.linears()) {
      const c = ds.params[l.name]!.dataSync() as Float32Array;
      expect(c.filter((x) => x === 0).length).toBe(Math.round(0.5 * c.length));
    }
    ds.dispose();
  }, 120_000);
});

describe('bias-aware adapters', () => {
  it("SSF's shift trains through the layer biases and merges into them", async () => {
    const model = { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 };
    const a = resolveRecipe({ model, eval: { windows: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'export', formats: ['dense'] }] });
    await startRun(a, { dir: join(tmp, 'ssf-a'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    const b = resolveRecipe({ model, eval: { windows: 4 }, stages: [{ stage: 'pretrain', steps: 3, batch: 4 }, { stage: 'adapt', method: 'ssf', steps: 5, batch: 4, lr: 0.01 }, { stage: 'export', formats: ['dense'] }] });
    const run = await startRun(b, { dir: join(tmp, 'ssf-b'), mode: 'quiet', io: { stdout: silent, stderr: silent } });
    expect(run.adapters[0]!.trainable).toBe(2 * (48 + 16 + 64 + 16)); // 2·out over c_attn, attn.c_proj, c_fc, mlp.c_proj
    const before = await loadExportedModel(join(tmp, 'ssf-a', 'exports', 'model.safetensors'));
    const after = await loadExportedModel(join(tmp, 'ssf-b', 'exports', 'model.safetensors'));
    for (const l of before.linears()) {
      const b0 = before.params[l.bias!]!.dataSync() as Float32Array;
      const b1 = after.params[l.bias!]!.dataSync() as Float32Array;
      expect(Array.from(b1).some((x, k) => x !== b0[k]), l.bias).toBe(true);
    }
    before.dispose();
    after.dispose();
  }, 120_000);
});
