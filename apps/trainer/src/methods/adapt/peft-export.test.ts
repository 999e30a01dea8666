// An adapt stage's PEFT export end to end: Hugging Face module names and config fields, SQFT's sidecar,
// the unmerged pruned base beside the adapter (Hugging Face layout), and base + adapter = merged model.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getVariant } from '@sparse/lora-variants';
import { loadPEFTAdapter } from '@sparse/lora-variants/node';
import { tensor } from '@sparse/tensor';
import { openSafetensors } from '@sparse/tensor/node';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../model/checkpoint.js';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { EXPORT_CONTENTS_FILE, type ExportContents } from '../../stages/export-contents.js';
import { quiet } from '../../testing/resume.js';
import { ADAPTER_EXPORT_FILE, baseModelNameOrPath } from './adapter.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-peft-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('adapt stage PEFT export', () => {
  it('writes a GPT-2 PEFT folder, the sidecar, the pruned base, and base + adapter equals the merged export', async () => {
    const recipe = resolveRecipe({
      seed: 3,
      model: { architecture: 'gpt', d: 8, layers: 1, heads: 2, ctx: 8 },
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 2, batch: 2 },
        { stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } },
        { stage: 'adapt', name: 'ft', method: 'sqft', config: { r: 2 }, steps: 2, batch: 2, lr: 1e-2, merge: true },
        { stage: 'export', formats: ['dense', 'adapters'] },
      ],
    });
    const dir = join(tmp, 'run');
    const summary = await startRun(recipe, { dir, ...quiet });
    // the report's file list names the adapter folder and its base; the export counts one adapter folder
    expect(summary.files.map((f) => f.label)).toEqual(expect.arrayContaining(['adapter ft (PEFT)', 'base of adapter ft (unmerged, pruned: the adapter applies to this)']));
    expect(JSON.stringify(summary.stages)).toContain('1 adapter folder(s) in PEFT layout');
    // exports/contents.json says which file is which
    const contents = JSON.parse(readFileSync(join(dir, 'exports', EXPORT_CONTENTS_FILE), 'utf8')) as ExportContents;
    expect(contents.files.map((f) => f.path)).toEqual(expect.arrayContaining(['model.safetensors', 'adapters/ft', 'adapters/ft/base']));
    expect(contents.files.find((f) => f.path === 'adapters/ft/base')!.what).toMatch(/unmerged, pruned/);
    const [name] = readdirSync(join(dir, 'exports', 'adapters'));
    const ad = join(dir, 'exports', 'adapters', name!);
    expect(readdirSync(ad).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'base', ADAPTER_EXPORT_FILE, 'sparse_adapter_config.json'].sort());

    const cfg = JSON.parse(readFileSync(join(ad, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: null, fan_in_fan_out: true, r: 2 });
    expect(cfg).not.toHaveProperty('sqft_sparse_merge');
    expect(cfg.target_modules).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj']);
    const st = await openSafetensors(join(ad, 'adapter_model.safetensors'));
    expect([...st.names].every((n) => /^base_model\.model\.transformer\.h\.0\.(attn|mlp)\.c_\w+\.lora_[AB]\.weight$/.test(n))).toBe(true);
    await st.close();

    const a = await loadPEFTAdapter(ad);
    expect(a.variant).toBe('sqft');
    const base = await readCheckpoint(join(ad, 'base'));
    expect(base.source).toBe('hf-gpt2');
    const merged = await readCheckpoint(join(dir, 'exports', 'model.safetensors'));
    const info = JSON.parse(readFileSync(join(ad, ADAPTER_EXPORT_FILE), 'utf8')) as { base: { path: string } };
    expect(existsSync(join(ad, info.base.path, 'config.json'))).toBe(true);
    for (const [module, state] of Object.entries(a.modules)) {
      const ours = module.replace(/^transformer\./, '');
      const w = base.values.get(`${ours}.weight`)!;
      // the base is pruned 2:4: two zeros in every group of four along a row
      for (let g = 0; g < w.length; g += 4) expect(w.subarray(g, g + 4).filter((x) => x === 0).length).toBeGreaterThanOrEqual(2);
      // SQFT merges through the base's mask
      const m = getVariant('sqft').merge(tensor(w, state.shape), state).data as Float32Array;
      const want = merged.values.get(`${ours}.weight`)!;
      for (let k = 0; k < m.length; k++) expect(m[k]).toBeCloseTo(want[k]!, 5);
    }
    // the rest of the base is the merged model's (only adapted weights change)
    expect(Array.from(base.values.get('wte.weight')!)).toEqual(Array.from(merged.values.get('wte.weight')!));
  }, 120_000);

  it('writes Llama names, no fan_in_fan_out and no sidecar for a LoRA on a Llama model', async () => {
    const recipe = resolveRecipe({
      seed: 4,
      model: { architecture: 'llama', d: 8, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 16, ctx: 8 },
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 1, batch: 2 },
        { stage: 'adapt', name: 'ft', method: 'lora', config: { r: 2 }, targets: ['attn.q', 'attn.v'], steps: 1, batch: 2 },
      ],
    });
    const dir = join(tmp, 'llama');
    await startRun(recipe, { dir, ...quiet });
    const ad = join(dir, 'exports', 'adapters', readdirSync(join(dir, 'exports', 'adapters'))[0]!);
    expect(readdirSync(ad).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'base', ADAPTER_EXPORT_FILE].sort());
    const cfg = JSON.parse(readFileSync(join(ad, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ task_type: 'CAUSAL_LM', fan_in_fan_out: false, target_modules: ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj'] });
    const st = await openSafetensors(join(ad, 'adapter_model.safetensors'));
    expect([...st.names].sort()).toEqual([
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
    ]);
    await st.close();
    expect((await readCheckpoint(join(ad, 'base'))).source).toBe('hf-llama');
  }, 120_000);

  it('keeps our names and our checkpoint format for the base of a model without a Hugging Face equivalent (MoE)', async () => {
    const recipe = resolveRecipe({
      seed: 6,
      model: { architecture: 'gpt', d: 8, layers: 1, heads: 2, ctx: 8, moe: { experts: 2, topK: 1 } },
      eval: { windows: 2, batch: 2 },
      stages: [
        { stage: 'pretrain', steps: 1, batch: 2 },
        { stage: 'adapt', name: 'ft', method: 'lora', config: { r: 2 }, targets: ['attn.qkv'], steps: 1, batch: 2 },
      ],
    });
    const dir = join(tmp, 'moe');
    await startRun(recipe, { dir, ...quiet });
    const ad = join(dir, 'exports', 'adapters', readdirSync(join(dir, 'exports', 'adapters'))[0]!);
    const cfg = JSON.parse(readFileSync(join(ad, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ fan_in_fan_out: false, target_modules: ['h.0.attn.c_attn'] });
    const base = await readCheckpoint(join(ad, 'base', 'model.safetensors'));
    expect(base.source).toBe('sparse-train');
    expect(base.spec).toMatchObject({ moe: { experts: 2, topK: 1 } });
    expect(JSON.parse(readFileSync(join(ad, ADAPTER_EXPORT_FILE), 'utf8'))).toMatchObject({ base: { layout: 'sparse-train checkpoint (model.safetensors)' } });
  }, 120_000);

  it('base_model_name_or_path is the checkpoint folder the run started from, null from scratch', () => {
    const r = (model: unknown) => baseModelNameOrPath({ recipe: { model } as never });
    expect(r({ checkpoint: 'models/gpt2' })).toBe('models/gpt2');
    expect(r({ checkpoint: 'models/gpt2/model.safetensors' })).toBe('models/gpt2');
    expect(r({ checkpoint: 'models/llama/model.safetensors.index.json' })).toBe('models/llama');
    expect(r({ architecture: 'gpt' })).toBeNull();
  });
});
